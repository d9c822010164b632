// The ensemble: all four dancers at a glance, with each block's stem, rank, live energy and the
// signed steering strength the frame on screen was rendered with. Click a row to edit it.

import { BLOCKS } from "../blocks.js";
import { sourceColor } from "../palette.js";
import { targetLabel } from "../sources.js";
import { h, section } from "../ui/dom.js";

export class EnsemblePanel {
  constructor(root, { session, onSelect }) {
    this.session = session;
    this.rows = BLOCKS.map((b, i) => {
      const dot = h("span", { class: "dot" });
      const stem = h("span", { class: "ens-stem" });
      const rank = h("span", { class: "ens-rank" });
      const energy = h("div", { class: "ens-energy" });
      const strengthPos = h("div", { class: "ens-strength pos" });
      const strengthNeg = h("div", { class: "ens-strength neg" });
      const value = h("span", { class: "ens-value", title: "strength of the frame on screen" }, "—");
      const el = h("div", { class: "ens-row", dataset: { block: b.name }, onclick: () => onSelect(i) },
        dot,
        h("div", { class: "ens-id" }, h("span", { class: "ens-name" }, b.name), stem),
        rank,
        h("div", { class: "ens-bars" },
          h("div", { class: "ens-track" }, energy),
          h("div", { class: "ens-track signed" }, h("span", { class: "ens-zero" }), strengthNeg, strengthPos)),
        value);
      return { el, dot, stem, rank, energy, strengthPos, strengthNeg, value };
    });
    this.el = section("Ensemble", h("span", { class: "hint" }, "energy · strength"), h("div", { class: "ens-list" }, this.rows.map((r) => r.el)));
    root.appendChild(this.el);
    const render = () => this.render();
    session.addEventListener("state", render);
    session.addEventListener("settings", render);
    this.render();
  }

  render() {
    const s = this.session.settings;
    if (!s || !s.blocks) return;
    BLOCKS.forEach((b, i) => {
      const bs = s.blocks[b.name];
      const r = this.rows[i];
      const color = bs.link_target ? sourceColor(bs.link_target) : "#9a93b8";
      r.el.style.setProperty("--c", color);
      r.el.classList.toggle("off", !bs.enabled);
      r.stem.textContent = bs.link_target ? targetLabel(bs.link_target) : "unlinked";
      r.rank.textContent = bs.rank === "auto" ? "A" : bs.rank;
    });
  }

  /** Meters of the frame on screen: per block energy_smooth and strength (signed). */
  setMeters(meters) {
    const s = this.session.settings;
    (meters.blocks || []).forEach((m, i) => {
      const r = this.rows[i];
      if (!r || !m) return;
      r.energy.style.transform = `scaleX(${clamp01(m.energy_smooth)})`;
      const bs = s && s.blocks && s.blocks[BLOCKS[i].name];
      const span = bs ? Math.max(Math.abs(bs.stage.left), Math.abs(bs.stage.right), 1e-6) : 30;
      const f = Math.max(-1, Math.min(1, (m.strength || 0) / span));
      r.strengthPos.style.transform = `scaleX(${Math.max(0, f)})`;
      r.strengthNeg.style.transform = `scaleX(${Math.max(0, -f)})`;
      const text = (m.strength >= 0 ? "+" : "") + (m.strength || 0).toFixed(1);
      if (r.value.textContent !== text) r.value.textContent = text;
    });
  }
}

function clamp01(x) {
  return Math.min(1, Math.max(0, Number(x) || 0));
}
