// The stage: the generated image, large and central; the four flower orbs floating around it
// (WebGL, Matter.js physics); tendrils from each orb to the crystal heart below the image
// (Canvas2D). One requestAnimationFrame loop draws everything.

import { OrbRenderer } from "./orbs_gl.js";
import { OrbPhysics } from "./orb_physics.js";
import { TendrilLayer } from "./tendrils.js";

const PETALS = [6, 5, 8, 7];
const FLUTTER_DECAY_S = 0.45;   // slow decay of the transient flutter
const ENERGY_SMOOTH_S = 0.06;

export class Stage {
  /**
   * root: the stage element holding #tendrils, #frame-wrap, #orbs, #orb-labels, #stage-input.
   * blocks: [{name, role}], one orb each. onPick(index): an orb was pressed.
   */
  constructor(root, blocks, { onPick } = {}) {
    this.root = root;
    this.blocks = blocks;
    this.frameWrap = root.querySelector("#frame-wrap");
    this.tendrilCanvas = root.querySelector("#tendrils");
    this.orbCanvas = root.querySelector("#orbs");
    this.labelsEl = root.querySelector("#orb-labels");
    this.inputEl = root.querySelector("#stage-input");
    this.tendrils = new TendrilLayer(this.tendrilCanvas);
    this.startOrbRenderer();
    // A lost GPU context (driver reset, too many contexts) comes back without a reload.
    this.orbCanvas.addEventListener("webglcontextlost", (e) => {
      e.preventDefault();
      this.orbRenderer = null;
    });
    this.orbCanvas.addEventListener("webglcontextrestored", () => this.startOrbRenderer());
    this.physics = new OrbPhysics(this.inputEl, { onPick: (id) => onPick && onPick(Number(id)) });
    this.selected = 0;
    this.hover = null;
    this.orbs = blocks.map((b, i) => ({
      id: String(i),
      name: b.name,
      color: "#8a8fa3",
      source: null,
      caption: "",
      enabled: true,
      bloom: 1,
      energy: 0,
      envelope: 0,
      flash: 0,
      flutter: 0,
      strength: 0,
      seed: 1.7 * i + 0.3,
      petals: PETALS[i % PETALS.length],
      target: { energy: 0, envelope: 0, flash: 0, strength: 0 },
    }));
    this.beatPhase = null;
    this.tempoBpm = 120;
    this.mediaTimeS = 0;
    this.labels = this.orbs.map((orb) => {
      const el = document.createElement("div");
      el.className = "orb-label";
      el.innerHTML = `<span class="orb-name"></span><span class="orb-caption"></span>`;
      this.labelsEl.appendChild(el);
      return el;
    });
    this.inputEl.addEventListener("mousemove", (e) => {
      const r = this.inputEl.getBoundingClientRect();
      this.hover = this.physics.hit(e.clientX - r.left, e.clientY - r.top);
      this.inputEl.style.cursor = this.hover != null ? (this.physics.dragging ? "grabbing" : "grab") : "default";
    });
    this.lastT = performance.now();
    this.resizeObserver = new ResizeObserver(() => this.layout());
    this.resizeObserver.observe(root);
    this.layout();
  }

  startOrbRenderer() {
    try {
      this.orbRenderer = new OrbRenderer(this.orbCanvas);
    } catch (err) {
      this.orbRenderer = null;
      console.warn(`flower orbs off: ${err.message}`);
    }
  }

  /** Recompute the image rectangle, canvas sizes, physics walls and obstacles. */
  layout() {
    const w = this.root.clientWidth;
    const h = this.root.clientHeight;
    if (w < 10 || h < 10) return;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    this.dpr = dpr;
    for (const c of [this.tendrilCanvas, this.orbCanvas]) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    const output = document.body.classList.contains("output-mode");
    const gutter = Math.max(130, Math.min(200, w * 0.165));
    const heartSpace = Math.max(110, Math.min(170, h * 0.17));
    const size = output
      ? Math.min(w, h)
      : Math.max(220, Math.floor(Math.min(w - 2 * gutter, h - heartSpace - 36)));
    const left = Math.round((w - size) / 2);
    const top = output ? Math.round((h - size) / 2) : Math.max(18, Math.round((h - size - heartSpace) / 2));
    this.imageRect = { x: left, y: top, w: size, h: size };
    Object.assign(this.frameWrap.style, { left: `${left}px`, top: `${top}px`, width: `${size}px`, height: `${size}px` });
    const below = h - (top + size);
    this.heart = { x: w / 2, y: top + size + Math.max(46, below * 0.5), size: Math.max(18, Math.min(30, size * 0.042)) };
    this.orbRadius = Math.max(28, Math.min(50, gutter * 0.3, h * 0.05));
    this.physics.layout(w, h, [
      { kind: "rect", x: left - 6, y: top - 6, w: size + 12, h: size + 12 },
      { kind: "circle", x: this.heart.x, y: this.heart.y, r: this.heart.size * 1.6 },
    ]);
    const gx = Math.max(this.orbRadius + 12, left / 2);
    const homes = [
      [gx, top + size * 0.28],
      [gx, top + size * 0.74],
      [w - gx, top + size * 0.74],
      [w - gx, top + size * 0.28],
    ];
    this.orbs.forEach((orb, i) => this.physics.ensureOrb(orb.id, homes[i][0], homes[i][1], this.orbRadius * 1.15));
  }

  /** Update what an orb shows: its colour (linked stem), whether it blooms, its caption. */
  setOrb(index, { color, enabled, caption, source }) {
    const orb = this.orbs[index];
    if (color !== undefined) orb.color = color;
    if (enabled !== undefined) orb.enabled = enabled;
    if (caption !== undefined) orb.caption = caption;
    if (source !== undefined) orb.source = source;
    const label = this.labels[index];
    label.querySelector(".orb-name").textContent = orb.name;
    label.querySelector(".orb-caption").textContent = orb.caption;
    label.style.setProperty("--orb-color", orb.color);
    label.classList.toggle("off", !orb.enabled);
  }

  select(index) {
    this.selected = index;
  }

  /**
   * Per-frame audio meters from the server (the `meters` message of the shown frame, see
   * README.md): {beat_phase, blocks: [{energy_smooth, envelope, flash, transient, strength}]};
   * spans[i]: the block's largest |stage bound|, to bring strength to 0..1.
   */
  setMeters(meters, spans = []) {
    if (!meters) return;
    if (typeof meters.beat_phase === "number") this.beatPhase = meters.beat_phase;
    (meters.blocks || []).forEach((m, i) => {
      const orb = this.orbs[i];
      if (!orb || !m) return;
      orb.target.energy = clamp01(m.energy_smooth);
      orb.target.envelope = clamp01(m.envelope ?? m.energy_smooth);
      orb.target.flash = clamp01(Math.max(m.flash || 0, m.transient || 0));
      orb.target.strength = clamp01(Math.abs(m.strength || 0) / (spans[i] || 30));
      // A hit kicks the orb once, on the transient's rising edge (a paused frame repeats it).
      const hit = m.transient > 0.5;
      if (hit && !orb.lastHit && orb.enabled) this.physics.kick(orb.id, 0.6 + 1.2 * orb.target.energy);
      orb.lastHit = hit;
    });
  }

  setClock(mediaTimeS, tempoBpm) {
    this.mediaTimeS = mediaTimeS;
    if (tempoBpm) this.tempoBpm = tempoBpm;
  }

  /** The track's beat grid (seconds), from the analysis; downbeats pulse harder. */
  setBeats(beatsS, downbeatsS) {
    this.beatsS = Array.isArray(beatsS) && beatsS.length ? beatsS : null;
    this.downbeats = new Set((downbeatsS || []).map((t) => t.toFixed(3)));
  }

  /** The first frame is on screen (the frame worker draws into #frame). */
  markHasFrame() {
    this.frameWrap.classList.add("has-frame");
  }

  /** 1 on a beat, decaying until the next: from the beat grid, else the meters, else the tempo. */
  beatPulse() {
    const t = this.mediaTimeS;
    if (this.beatsS) {
      const i = lastAtOrBefore(this.beatsS, t);
      if (i < 0) return 0;
      const beat = this.beatsS[i];
      const strength = this.downbeats.has(beat.toFixed(3)) ? 1 : 0.72;
      return strength * Math.exp(-(t - beat) * (this.tempoBpm / 60) * 5.5);
    }
    const phase = this.beatPhase ?? ((t * this.tempoBpm) / 60) % 1;
    return Math.exp(-phase * 5.5);
  }

  /** One animation step: physics, smoothing, then tendrils and orbs. */
  tick(nowMs) {
    const dt = Math.min(0.05, Math.max(0.001, (nowMs - this.lastT) / 1000));
    this.lastT = nowMs;
    const timeS = nowMs / 1000;
    if (document.body.classList.contains("output-mode")) return; // projection: the image only
    this.physics.step(dt * 1000);
    const k = 1 - Math.exp(-dt / ENERGY_SMOOTH_S);
    const decay = Math.exp(-dt / FLUTTER_DECAY_S);
    for (const orb of this.orbs) {
      orb.energy += (orb.target.energy - orb.energy) * k;
      orb.envelope += (orb.target.envelope - orb.envelope) * k;
      orb.strength += (orb.target.strength - orb.strength) * k;
      orb.flash = orb.target.flash;
      orb.flutter = Math.max(orb.flutter * decay, orb.target.flash); // fast attack, slow decay
      orb.target.flash *= Math.exp(-dt / 0.08);
      orb.bloom += ((orb.enabled ? 1 : 0) - orb.bloom) * (1 - Math.exp(-dt / 0.35));
      const p = this.physics.position(orb.id);
      orb.x = p.x;
      orb.y = p.y;
    }
    const drawn = this.orbs.map((orb, i) => ({
      ...orb,
      radius: this.orbRadius,
      selected: i === this.selected,
      hover: this.hover === orb.id,
    }));
    const heart = {
      ...this.heart,
      beatPulse: this.beatPulse(),
      colors: this.orbs.filter((o) => o.enabled).map((o) => o.color),
    };
    this.tendrils.draw(drawn, heart, timeS, this.dpr);
    if (this.orbRenderer) this.orbRenderer.draw(drawn, timeS, this.dpr);
    drawn.forEach((orb, i) => {
      this.labels[i].style.transform = `translate(${orb.x}px, ${orb.y + this.orbRadius * 1.3}px)`;
      this.labels[i].classList.toggle("selected", i === this.selected);
    });
  }
}

/** Index of the last element <= x in a sorted array, or -1. */
function lastAtOrBefore(sorted, x) {
  let lo = 0, hi = sorted.length - 1, ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

function clamp01(x) {
  return Math.min(1, Math.max(0, Number(x) || 0));
}
