// Prompt destinations (A, B, crossfader, slider / reactive / linked, loading a new destination)
// and noise composition (two seeds, distance, auto / pulse / continuous, the circular walk).

import { sourceColor } from "../palette.js";
import { enumAt } from "../schema.js";
import { linkTargets, options, targetLabel } from "../sources.js";
import { h, icon, row, section } from "../ui/dom.js";
import { segmented, slider, throttle } from "../ui/controls.js";

/** Human text of a destination: a prompt, or a frozen blend of earlier destinations. */
export function describeDestination(d) {
  if (typeof d === "string") return d || "(empty prompt)";
  if (d && typeof d === "object") return `${describeDestination(d.a)} → ${d.b || "(empty)"} at ${Math.round(d.t * 100)}%`;
  return "";
}

export class GlobalPanel {
  constructor(root, { session, getSchema }) {
    this.session = session;
    this.getSchema = getSchema;
    this.liveBlend = null;
    this.liveAngle = null;

    // Prompt destinations.
    this.aText = h("textarea", { class: "input", rows: 2, placeholder: "Prompt A", spellcheck: false, id: "prompt-a" });
    this.aFrozen = h("div", { class: "frozen-chip", hidden: true, title: "Click to replace A with a new prompt" });
    this.aFrozen.addEventListener("click", () => {
      this.editingA = true;
      this.render();
      this.aText.value = "";
      this.aText.focus();
    });
    this.aText.addEventListener("blur", () => {
      this.editingA = false;
      setTimeout(() => this.render());
    });
    this.bText = h("textarea", { class: "input", rows: 2, placeholder: "Prompt B", spellcheck: false, id: "prompt-b" });
    commitOnEnter(this.aText, (v) => session.set("/prompt/a", v));
    commitOnEnter(this.bText, (v) => session.set("/prompt/b", v));
    this.mode = segmented(options("prompt_mode"), (v) => session.set("/prompt/mode", v));
    const sendBlend = throttle((v) => session.set("/prompt/blend", Math.round(v * 1000) / 1000), 40);
    this.blend = slider({ min: 0, max: 1, step: 0.001, value: 0, label: "crossfader A to B", onInput: sendBlend, onChange: sendBlend, fill: false });
    this.blendNote = h("span", { class: "hint" });
    this.linkSelect = h("select", { class: "select", "aria-label": "linked source" });
    this.linkSelect.addEventListener("change", () => session.set("/prompt/linked/link_target", this.linkSelect.value || null));
    this.linkPosition = segmented(options("position_source"), (v) => session.set("/prompt/linked/position_source", v), { compact: true });
    this.linkIntensity = segmented(options("intensity_source"), (v) => session.set("/prompt/linked/intensity_source", v), { compact: true });
    this.linkPhysics = segmented(options("physics_preset"), (v) => session.set("/prompt/linked/physics_preset", v), { compact: true });
    this.linkedBox = h("div", { class: "advanced" },
      row("Source", this.linkSelect),
      row("Position", this.linkPosition.el),
      row("Intensity", this.linkIntensity.el),
      row("Physics", this.linkPhysics.el));
    this.newDest = h("input", { class: "input", placeholder: "Travel to a new destination…", spellcheck: false, id: "new-destination" });
    const go = () => {
      const prompt = this.newDest.value.trim();
      if (!prompt) return;
      session.destination(prompt);
      this.newDest.value = "";
    };
    this.newDest.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if (e.key === "Enter") go();
    });
    const promptSection = section("Prompt destinations", this.blendNote,
      h("div", { class: "dest" }, h("span", { class: "dest-tag a" }, "A"), h("div", {}, this.aFrozen, this.aText)),
      h("div", { class: "dest" }, h("span", { class: "dest-tag b" }, "B"), this.bText),
      h("div", { class: "crossfader" }, this.blend.el, h("div", { class: "xf-ends" }, h("span", {}, "A"), h("span", {}, "B"))),
      row("Mode", this.mode.el),
      this.linkedBox,
      h("div", { class: "load-dest" }, this.newDest, h("button", { type: "button", class: "btn primary", onclick: go, title: "The current blend freezes as A; the new prompt becomes B" }, "Go")),
      h("div", { class: "hint", style: { marginTop: "6px" } }, "Loading a destination freezes the current blend as A."));

    // Composition.
    const seed = (key, label) => {
      const input = h("input", { class: "input mono", type: "number", min: 0, max: 4294967295, step: 1, id: `seed-${key}` });
      input.addEventListener("change", () => {
        const v = Math.max(0, Math.min(4294967295, Math.floor(Number(input.value) || 0)));
        session.set(`/composition/${key}`, v);
      });
      input.addEventListener("keydown", (e) => e.stopPropagation());
      const dice = h("button", { type: "button", class: "icon-btn", style: { width: "26px", height: "28px" }, title: "random seed", onclick: () => session.set(`/composition/${key}`, Math.floor(Math.random() * 2 ** 31)) },
        icon("M2 5 H5 L11 11 H14 M2 11 H5 L11 5 H14 M12 3 L14 5 L12 7 M12 9 L14 11 L12 13"));
      return { input, el: h("div", { class: "seed" }, h("span", { class: "label" }, label), input, dice) };
    };
    this.seedA = seed("seed_a", "Seed A");
    this.seedB = seed("seed_b", "Seed B");
    this.distanceVal = h("span", { class: "val" });
    const sendDistance = throttle((v) => session.set("/composition/distance", Math.round(v * 1000) / 1000), 40);
    this.distance = slider({ min: 0, max: 1, step: 0.01, value: 0.5, label: "distance", onInput: (v) => { this.distanceVal.textContent = v.toFixed(2); sendDistance(v); } });
    this.compMode = segmented(options("composition_mode"), (v) => session.set("/composition/mode", v));
    this.dial = h("canvas", { class: "noise-dial", width: 584, height: 148 });
    const compSection = section("Composition", h("span", { class: "hint" }, "noise walk"),
      h("div", { class: "seed-row" }, this.seedA.el, this.seedB.el),
      row("Distance", h("div", { class: "slider-line" }, this.distance.el, this.distanceVal)),
      row("Mode", this.compMode.el),
      this.dial);

    root.append(promptSection, compSection);
    session.addEventListener("state", () => this.render());
    session.addEventListener("track", () => this.render());
    session.addEventListener("settings", (e) => {
      if (e.detail.paths.some((p) => p.startsWith("/prompt") || p.startsWith("/composition"))) this.render();
    });
    this.render();
  }

  /** Live values from the frame meters: where the blend and the noise walk are now. */
  setLive({ blend, angle }) {
    if (typeof blend === "number") this.liveBlend = blend;
    if (typeof angle === "number") this.liveAngle = angle;
  }

  render() {
    const s = this.session.settings;
    if (!s) return;
    const p = s.prompt;
    const frozen = p.a && typeof p.a === "object" && !this.editingA;
    this.aFrozen.hidden = !frozen;
    this.aText.hidden = frozen;
    if (frozen) this.aFrozen.replaceChildren(h("b", {}, "Frozen blend"), h("br"), describeDestination(p.a));
    if (document.activeElement !== this.aText && !frozen && typeof p.a === "string") this.aText.value = p.a;
    if (document.activeElement !== this.bText) this.bText.value = p.b || "";
    this.mode.set(p.mode);
    this.blend.set(p.blend);
    const byHand = p.mode === "slider";
    this.blend.el.style.pointerEvents = byHand ? "" : "none";
    this.blend.el.style.opacity = byHand ? "1" : "0.55";
    this.blendNote.textContent = byHand ? `${Math.round(p.blend * 100)}% B` : p.mode === "reactive" ? "energy drives A→B" : "a stem drives A→B";
    this.linkedBox.hidden = p.mode !== "linked";
    const targets = linkTargets(this.session.track);
    if (this.linkSelect.options.length !== targets.length + 1) {
      this.linkSelect.replaceChildren(h("option", { value: "" }, "None"), ...targets.map((t) => h("option", { value: t }, targetLabel(t))));
    }
    this.linkSelect.value = p.linked.link_target || "";
    this.linkSelect.style.borderColor = p.linked.link_target ? sourceColor(p.linked.link_target) : "";
    this.linkPosition.set(p.linked.position_source);
    this.linkIntensity.set(p.linked.intensity_source);
    this.linkPhysics.set(p.linked.physics_preset);

    const c = s.composition;
    if (document.activeElement !== this.seedA.input) this.seedA.input.value = c.seed_a;
    if (document.activeElement !== this.seedB.input) this.seedB.input.value = c.seed_b;
    this.distance.set(c.distance);
    this.distanceVal.textContent = Number(c.distance).toFixed(2);
    this.compMode.set(c.mode);
    const modes = enumAt(this.getSchema(), ["composition", "mode"], null);
    if (modes) this.compMode.el.querySelectorAll("button").forEach((b) => (b.hidden = !modes.includes(b.dataset.value)));
  }

  /** Per animation frame: the noise walk dial (A at 0°, B at 90°) and the live blend. */
  tick(timeS) {
    const s = this.session.settings;
    if (!s) return;
    if (s.prompt.mode !== "slider" && this.liveBlend !== null) this.blend.set(this.liveBlend);
    const key = `${(this.liveAngle ?? -1).toFixed(3)}|${s.composition.distance}|${s.composition.mode}`;
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    const cv = this.dial;
    const ctx = cv.getContext("2d");
    const w = cv.width, hgt = cv.height;
    ctx.clearRect(0, 0, w, hgt);
    const cx = 74, cy = hgt / 2, r = 52;
    ctx.strokeStyle = "rgba(255,255,255,0.09)";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, Math.PI * 2);
    ctx.stroke();
    const angle = this.liveAngle ?? 0;
    const dist = s.composition.distance;
    // Swept arc: how far one energetic beat may turn the walk.
    ctx.strokeStyle = "rgba(177,140,255,0.45)";
    ctx.lineWidth = 6;
    ctx.beginPath();
    ctx.arc(cx, cy, r, -angle, -angle - dist * Math.PI * 2, true);
    ctx.stroke();
    const mark = (a, label, color) => {
      const x = cx + Math.cos(-a) * r, y = cy + Math.sin(-a) * r;
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, Math.PI * 2);
      ctx.fill();
      ctx.font = "600 20px 'Inter Variable', system-ui";
      ctx.fillText(label, x + (a === 0 ? 12 : -6), y + (a === 0 ? 7 : -12));
    };
    mark(0, "A", "#36e0ff");
    mark(Math.PI / 2, "B", "#ff6fd0");
    const x = cx + Math.cos(-angle) * r, y = cy + Math.sin(-angle) * r;
    const g = ctx.createRadialGradient(x, y, 0, x, y, 18);
    g.addColorStop(0, "rgba(255,255,255,0.95)");
    g.addColorStop(1, "rgba(177,140,255,0)");
    ctx.fillStyle = g;
    ctx.beginPath();
    ctx.arc(x, y, 18, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = "#8a879e";
    ctx.font = "500 21px 'Inter Variable', system-ui";
    ctx.fillText("noise = cos θ · A + sin θ · B", 160, cy - 12);
    ctx.fillStyle = "#ebe9f4";
    ctx.font = "500 22px 'JetBrains Mono Variable', monospace";
    const deg = ((angle * 180) / Math.PI) % 360;
    ctx.fillText(this.liveAngle === null ? "θ —" : `θ ${deg.toFixed(0)}°`, 160, cy + 22);
    ctx.fillStyle = "#5f5c72";
    ctx.font = "500 19px 'Inter Variable', system-ui";
    ctx.fillText(`${s.composition.mode} · distance ${dist.toFixed(2)}`, 300, cy + 22);
  }
}

function commitOnEnter(textarea, commit) {
  let before = "";
  textarea.addEventListener("focus", () => (before = textarea.value));
  textarea.addEventListener("keydown", (e) => {
    e.stopPropagation();
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      textarea.blur();
    }
    if (e.key === "Escape") {
      textarea.value = before;
      textarea.blur();
    }
  });
  textarea.addEventListener("blur", () => {
    if (textarea.value !== before) commit(textarea.value.trim());
  });
}
