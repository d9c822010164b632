// The block config panel: tabs for the four blocks, then for the selected one its link target,
// auto/manual, rank, SAE feature, stage bounds, sources, the manual-only advanced controls and
// the spatial mask painter. Every control reads from and writes to the session's settings.

import { BLOCKS } from "../blocks.js";
import { pointer } from "../net/session.js";
import { sourceColor } from "../palette.js";
import { enumAt, rangeAt } from "../schema.js";
import { groupedTargets, linkTargets, options, stemCharacter, targetLabel } from "../sources.js";
import { dismissOnOutside, h, row, section } from "../ui/dom.js";
import { segmented, slider, stageSlider, throttle, toggleSwitch } from "../ui/controls.js";
import { FeaturePicker } from "./feature_picker.js";
import { presetMask } from "../masks.js";
import { MaskPainter } from "./mask_painter.js";

export class BlockPanel {
  constructor(root, { session, api, categories, getSchema, backdrop, onSelect }) {
    this.root = root;
    this.session = session;
    this.getSchema = getSchema;
    this.onSelect = onSelect;
    this.index = 0;
    this.targets = linkTargets(null);
    this.livePitch = [null, null, null, null];

    this.tabs = BLOCKS.map((b, i) =>
      h("button", { type: "button", class: "block-tab", dataset: { block: b.name }, onclick: () => this.select(i) },
        h("span", { class: "tab-name" }, b.name),
        h("span", { class: "tab-src" }, "—")));
    const tabBar = h("div", { class: "block-tabs", role: "tablist" }, this.tabs);

    // Head: name, role, enabled.
    this.nameEl = h("div", { class: "name" });
    this.roleEl = h("div", { class: "role" });
    this.enabled = toggleSwitch((on) => this.set("enabled", on), "block on / off (bloom or bud)");
    const head = h("div", { class: "block-head" }, h("div", { class: "block-title" }, this.nameEl, this.roleEl), this.enabled.el);

    // Link section.
    this.linkButton = h("button", { type: "button", class: "link-current", onclick: () => this.openLinkMenu() });
    this.linkPicker = h("div", { class: "link-picker" }, this.linkButton);
    this.mode = segmented(options("mode"), (v) => this.set("mode", v));
    this.rank = segmented(options("rank"), (v) => this.set("rank", v), { compact: true });
    const linkSection = section("Link", null,
      row("Source", this.linkPicker),
      row("Config", this.mode.el),
      row("Rank", this.rank.el));

    // Feature section.
    this.picker = new FeaturePicker({ api, categories, onPick: (id) => this.set("feature_id", id) });
    this.featureHint = h("span", { class: "hint" });
    const featureSection = section("SAE feature", this.featureHint, this.picker.el);

    // Dance section.
    const sendStage = throttle((v) => this.session.setMany(["left", "home", "right"].map((k) => ({ path: this.path("stage", k), value: v[k] }))), 40);
    this.stage = stageSlider({ min: -60, max: 60, step: 0.5, onInput: sendStage, onChange: sendStage });
    this.intensity = segmented(options("intensity_source"), (v) => this.set("intensity_source", v), { compact: true });
    this.position = segmented(options("position_source"), (v) => this.set("position_source", v), { compact: true });
    this.curve = segmented(options("curve"), (v) => this.set("intensity_curve", "kind", v), { compact: true });
    const sendGamma = throttle((v) => this.set("intensity_curve", "gamma", Math.round(v * 100) / 100), 60);
    this.gammaVal = h("span", { class: "val" });
    this.gamma = slider({ min: 0.2, max: 4, step: 0.05, value: 1, label: "gamma exponent", onInput: (v) => { this.gammaVal.textContent = v.toFixed(2); sendGamma(v); } });
    this.gammaRow = row("Exponent", h("div", { class: "slider-line" }, this.gamma.el, this.gammaVal));
    this.physics = segmented(options("physics_preset"), (v) => this.set("physics", "preset", v), { compact: true });
    this.physicsModel = h("select", { class: "select", "aria-label": "physics model" });
    this.physicsModel.addEventListener("change", () => this.set("physics", "model", this.physicsModel.value));
    this.response = segmented(options("response_layer"), (v) => this.set("response_layer", v), { compact: true });
    this.silence = segmented(options("silence"), (v) => this.set("silence", v), { compact: true });
    this.lockNote = h("div", { class: "lock-note" });
    this.advanced = h("div", { class: "advanced" },
      row("Curve", this.curve.el),
      this.gammaRow,
      row("Physics", this.physics.el),
      row("Model", this.physicsModel),
      row("Response", this.response.el),
      row("Silence", this.silence.el),
      this.lockNote);
    const danceSection = section("Dance", h("span", { class: "hint" }, "strength: left · home · right"),
      this.stage.el,
      row("Intensity", this.intensity.el),
      row("Position", this.position.el),
      this.advanced);

    // Space section.
    this.spatialMode = segmented(options("spatial_mode"), (v) => this.set("spatial", "mode", v));
    this.painter = new MaskPainter({
      backdrop,
      onStroke: (cells) => {
        this.ensureManual();
        this.session.mask(BLOCKS[this.index].name, { cells }, { mask: this.painter.mask.map((r) => r.slice()), preset: "custom" });
      },
      onPreset: (name) => {
        this.ensureManual();
        this.session.mask(BLOCKS[this.index].name, { preset: name }, { preset: name });
      },
    });
    const spaceSection = section("Space", null, row("Mask", this.spatialMode.el), h("div", { style: { marginTop: "10px" } }, this.painter.el));

    this.body = h("div", { class: "block-body" }, head, linkSection, featureSection, danceSection, spaceSection);
    root.replaceChildren(tabBar, this.body);
    session.addEventListener("state", () => this.render());
    session.addEventListener("track", () => {
      this.targets = linkTargets(session.track);
      this.render();
    });
    session.addEventListener("settings", (e) => {
      if (e.detail.paths.some((p) => p.startsWith("/blocks/"))) this.render();
    });
    this.render();
  }

  path(...keys) {
    return pointer("blocks", BLOCKS[this.index].name, ...keys);
  }

  get(...keys) {
    return this.session.get(this.path(...keys));
  }

  set(...keysAndValue) {
    const value = keysAndValue.pop();
    this.session.set(this.path(...keysAndValue), value);
  }

  /** Painting or choosing a preset is a manual decision: an auto block switches to manual. */
  ensureManual() {
    if (this.get("mode") === "auto") this.set("mode", "manual");
  }

  /** Meters of the frame on screen: pitch-aligned masks follow each block's stem pitch. */
  setMeters(meters) {
    (meters.blocks || []).forEach((m, i) => {
      if (m && typeof m.pitch_normalized === "number") this.livePitch[i] = m.pitch_normalized;
    });
    const b = this.session.get(this.path());
    if (b && b.spatial.mode === "pitch" && this.livePitch[this.index] !== null) {
      this.painter.showPitch(this.livePitch[this.index], b.spatial.pitch_spread);
    }
  }

  select(index) {
    this.index = index;
    this.render();
    this.onSelect && this.onSelect(index);
  }

  blockColor(i) {
    const s = this.session.settings;
    const name = BLOCKS[i].name;
    const target = s && s.blocks && s.blocks[name] && s.blocks[name].link_target;
    return target ? sourceColor(target) : "#b18cff";
  }

  openLinkMenu() {
    if (this.linkMenu) return;
    const current = this.get("link_target");
    const item = (name, label, color, group) =>
      h("div", {
        class: `menu-item${name === current ? " current" : ""}`,
        dataset: { target: name ?? "" },
        onclick: () => {
          this.set("link_target", name);
          close();
        },
      },
      h("span", { class: name ? "dot" : "dot hollow", style: { "--c": color } }),
      h("span", { class: "grow" }, label),
      group ? h("span", { class: "meta" }, group) : null);
    const groups = groupedTargets(this.targets);
    const menu = h("div", { class: "menu link-menu", role: "listbox" },
      item(null, "None · constant at home", null, ""),
      groups.map((g) => [
        h("div", { class: "menu-title" }, g.group),
        g.targets.map((t) => item(t.name, t.label, t.color, stemCharacter(this.session.track, t.name))),
      ]));
    this.linkPicker.appendChild(menu);
    this.linkMenu = menu;
    const close = dismissOnOutside(menu, this.linkButton, () => {
      menu.remove();
      this.linkMenu = null;
    });
  }

  render() {
    const s = this.session.settings;
    const block = BLOCKS[this.index];
    this.tabs.forEach((t, i) => {
      const b = s && s.blocks && s.blocks[BLOCKS[i].name];
      t.classList.toggle("active", i === this.index);
      t.classList.toggle("off", !!b && !b.enabled);
      t.style.setProperty("--tab-color", this.blockColor(i));
      t.querySelector(".tab-src").textContent = b ? (b.link_target ? targetLabel(b.link_target) : "unlinked") : "—";
    });
    const color = this.blockColor(this.index);
    this.root.style.setProperty("--block", color);
    this.nameEl.textContent = block.name;
    this.roleEl.textContent = block.role;
    const b = s && s.blocks && s.blocks[block.name];
    this.body.classList.toggle("disabled", !b);
    if (!b) return;
    const schema = this.getSchema();
    const keys = (...k) => ["blocks", block.name, ...k];

    this.enabled.set(b.enabled);
    const target = b.link_target;
    this.linkButton.replaceChildren(
      h("span", { class: target ? "dot" : "dot hollow", style: { "--c": sourceColor(target) } }),
      h("span", { class: "name" }, target ? targetLabel(target) : "None"),
      h("span", { class: "group" }, target ? "" : "constant at home"),
      h("svg:svg", { class: "chev", viewBox: "0 0 12 12" }, h("svg:path", { d: "M3 4.5 L6 7.5 L9 4.5" })));
    this.mode.set(b.mode);
    this.rank.set(b.rank);

    this.picker.show(block.name, b.feature_id);
    this.featureHint.textContent = `${block.name} · ${block.role.split(" (")[0]}`;

    const bound = rangeAt(schema, keys("stage", "left"), { min: -200, max: 200 });
    const extent = Math.min(bound.max, Math.max(60, Math.ceil(Math.max(Math.abs(b.stage.left), Math.abs(b.stage.right)) / 10) * 10));
    if (this.stageExtent !== extent) {
      // Rebuild the slider for a wider range when the values outgrow the default view.
      this.stageExtent = extent;
      const sendStage = throttle((v) => this.session.setMany(["left", "home", "right"].map((k) => ({ path: this.path("stage", k), value: v[k] }))), 40);
      const fresh = stageSlider({ min: -extent, max: extent, step: 0.5, onInput: sendStage, onChange: sendStage });
      this.stage.el.replaceWith(fresh.el);
      this.stage = fresh;
    }
    this.stage.set(b.stage);
    this.intensity.set(b.intensity_source);
    this.position.set(b.position_source);

    const manual = b.mode === "manual";
    this.curve.set(b.intensity_curve.kind);
    this.gamma.set(b.intensity_curve.gamma);
    this.gammaVal.textContent = Number(b.intensity_curve.gamma).toFixed(2);
    this.gammaRow.hidden = b.intensity_curve.kind !== "gamma";
    this.physics.set(b.physics.preset);
    const models = enumAt(schema, keys("physics", "model"), ["blended", "spring", "pitch", "oscillator", "drift"]);
    if (this.physicsModel.options.length !== models.length) {
      this.physicsModel.replaceChildren(...options("physics_model", models).map((o) => h("option", { value: o.value }, o.label)));
    }
    this.physicsModel.value = b.physics.model;
    this.response.set(b.response_layer);
    this.silence.set(b.silence);
    for (const c of [this.curve, this.physics, this.response, this.silence]) c.setDisabled(!manual);
    this.gamma.el.style.pointerEvents = manual ? "" : "none";
    this.physicsModel.disabled = !manual;
    this.advanced.classList.toggle("locked", !manual);
    this.lockNote.textContent = manual
      ? "Manual: every control is yours."
      : "Auto derives physics, response and mask from the stem. Switch to Manual to edit.";

    this.spatialMode.set(b.spatial.mode);
    this.spatialMode.setDisabled(!manual);
    // A preset shows its own cells; the drawn mask (kept by the server) shows under "custom".
    const mask = b.spatial.preset === "custom" && b.spatial.mask ? b.spatial.mask : presetMask(b.spatial.preset);
    this.painter.setColor(color);
    this.painter.setMask(mask, b.spatial.preset);
    if (b.spatial.mode === "pitch") {
      this.painter.showPitch(this.livePitch[this.index] ?? 0.5, b.spatial.pitch_spread);
      this.painter.setEnabled(false, "Pitch-aligned: the band follows the stem's pitch, low notes at the bottom, high at the top.");
    } else {
      this.painter.setEnabled(true, manual
        ? "Left button paints, right button erases. Each stroke is live."
        : "Left button paints, right erases. Painting switches this block to Manual.");
    }
  }
}
