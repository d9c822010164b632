// The 16x16 spatial-mask painter: left button paints, right button erases, each stroke's new
// cells go to the server as they are painted; presets floor / ceiling / center / fill / clear.
// The latest frame shows faintly underneath, so the performer paints onto the image itself.

import { MASK_SIZE } from "../blocks.js";
import { MASK_PRESETS, pitchMask, presetMask } from "../masks.js";
import { h } from "../ui/dom.js";
import { rgba } from "../palette.js";

const PX = 22; // backing pixels per cell (crisp grid at 2x)

export class MaskPainter {
  /**
   * onStroke(cells [[row, col, value]...]): new cells of the stroke in progress.
   * onPreset(name): a preset button. backdrop(): a canvas/bitmap to show under the grid, or null.
   */
  constructor({ onStroke, onPreset, backdrop }) {
    this.onStroke = onStroke;
    this.onPreset = onPreset;
    this.backdrop = backdrop;
    this.mask = presetMask("fill");
    this.preset = "fill";
    this.color = "#b18cff";
    this.enabled = true;
    this.hover = null;
    this.canvas = h("canvas", { class: "mask-canvas", width: MASK_SIZE * PX, height: MASK_SIZE * PX, "aria-label": "spatial mask, 16 by 16" });
    this.ctx = this.canvas.getContext("2d");
    this.presetButtons = {};
    const presets = MASK_PRESETS.map((name) => {
      const label = name[0].toUpperCase() + name.slice(1);
      const b = h("button", {
        type: "button",
        class: "btn",
        dataset: { preset: name },
        title: `${label} preset`,
        onclick: () => {
          if (!this.enabled) return;
          this.setMask(presetMask(name), name);
          this.onPreset(name);
        },
      }, h("span", { class: `glyph ${name}` }), label);
      this.presetButtons[name] = b;
      return b;
    });
    this.help = h("div", { class: "mask-help" }, "Left button paints, right button erases.");
    this.el = h("div", { class: "mask-area" }, this.canvas, h("div", {}, h("div", { class: "mask-presets" }, presets), this.help));
    this.bindPointer();
    this.draw();
    this.backdropTimer = setInterval(() => this.backdrop && this.draw(), 250);
  }

  bindPointer() {
    const cv = this.canvas;
    cv.addEventListener("contextmenu", (e) => e.preventDefault());
    const cellAt = (e) => {
      const r = cv.getBoundingClientRect();
      const col = Math.floor(((e.clientX - r.left) / r.width) * MASK_SIZE);
      const row = Math.floor(((e.clientY - r.top) / r.height) * MASK_SIZE);
      if (row < 0 || col < 0 || row >= MASK_SIZE || col >= MASK_SIZE) return null;
      return [row, col];
    };
    let painting = null; // {value, last: [row, col]}
    const paintTo = (cell) => {
      const cells = [];
      const [r1, c1] = cell;
      const [r0, c0] = painting.last || cell;
      // Every cell on the straight line from the previous cell, so fast strokes have no gaps.
      const n = Math.max(Math.abs(r1 - r0), Math.abs(c1 - c0), 1);
      for (let i = painting.last ? 1 : 0; i <= n; i++) {
        const r = Math.round(r0 + ((r1 - r0) * i) / n);
        const c = Math.round(c0 + ((c1 - c0) * i) / n);
        if (this.mask[r][c] !== painting.value) {
          this.mask[r][c] = painting.value;
          cells.push([r, c, painting.value]);
        }
      }
      painting.last = cell;
      if (cells.length) {
        this.preset = "custom";
        this.markPreset();
        this.draw();
        this.onStroke(cells);
      }
    };
    cv.addEventListener("pointerdown", (e) => {
      if (!this.enabled) return;
      const cell = cellAt(e);
      if (!cell) return;
      cv.setPointerCapture(e.pointerId);
      painting = { value: e.button === 2 ? 0 : 1, last: null };
      paintTo(cell);
      e.preventDefault();
    });
    cv.addEventListener("pointermove", (e) => {
      const cell = cellAt(e);
      const key = cell ? cell.join(",") : null;
      if (key !== (this.hover && this.hover.join(","))) {
        this.hover = cell;
        this.draw();
      }
      if (painting && cell) paintTo(cell);
    });
    const end = () => (painting = null);
    cv.addEventListener("pointerup", end);
    cv.addEventListener("pointercancel", end);
    cv.addEventListener("pointerleave", () => {
      this.hover = null;
      this.draw();
    });
  }

  /** Show a mask (from the settings) and which preset it came from. */
  setMask(mask, preset) {
    this.mask = mask.map((row) => row.slice());
    this.preset = preset || "custom";
    this.markPreset();
    this.draw();
  }

  setColor(color) {
    this.color = color;
    this.draw();
  }

  /** Pitch-aligned mode: show the band the bridge applies for this pitch (read-only). */
  showPitch(pitchNormalized, spread) {
    this.mask = pitchMask(pitchNormalized, spread);
    this.draw();
  }

  setEnabled(enabled, note) {
    this.enabled = enabled;
    this.canvas.classList.toggle("readonly", !enabled);
    Object.values(this.presetButtons).forEach((b) => {
      b.disabled = !enabled;
      if (!enabled) b.classList.remove("on");
    });
    this.help.textContent = note || "Left button paints, right button erases.";
    this.draw();
  }

  markPreset() {
    for (const [name, b] of Object.entries(this.presetButtons)) b.classList.toggle("on", name === this.preset);
  }

  draw() {
    const { ctx } = this;
    const S = MASK_SIZE * PX;
    ctx.clearRect(0, 0, S, S);
    ctx.fillStyle = "#0b0b11";
    ctx.fillRect(0, 0, S, S);
    const bd = this.backdrop && this.backdrop();
    if (bd) {
      ctx.globalAlpha = 0.35;
      ctx.drawImage(bd, 0, 0, S, S);
      ctx.globalAlpha = 1;
    }
    for (let r = 0; r < MASK_SIZE; r++) {
      for (let c = 0; c < MASK_SIZE; c++) {
        const v = this.mask[r][c];
        if (v > 0) {
          ctx.fillStyle = rgba(this.color, 0.18 + 0.55 * v);
          ctx.fillRect(c * PX + 1, r * PX + 1, PX - 2, PX - 2);
        }
      }
    }
    ctx.strokeStyle = "rgba(255,255,255,0.07)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let i = 1; i < MASK_SIZE; i++) {
      ctx.moveTo(i * PX + 0.5, 0);
      ctx.lineTo(i * PX + 0.5, S);
      ctx.moveTo(0, i * PX + 0.5);
      ctx.lineTo(S, i * PX + 0.5);
    }
    ctx.stroke();
    ctx.strokeStyle = "rgba(255,255,255,0.16)";
    ctx.beginPath();
    ctx.moveTo(S / 2 + 0.5, 0);
    ctx.lineTo(S / 2 + 0.5, S);
    ctx.moveTo(0, S / 2 + 0.5);
    ctx.lineTo(S, S / 2 + 0.5);
    ctx.stroke();
    if (this.hover && this.enabled) {
      const [r, c] = this.hover;
      ctx.strokeStyle = "rgba(255,255,255,0.85)";
      ctx.lineWidth = 2;
      ctx.strokeRect(c * PX + 1, r * PX + 1, PX - 2, PX - 2);
    }
  }
}
