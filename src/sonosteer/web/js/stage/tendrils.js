// Tendrils from each orb to the crystal heart, drawn with Canvas2D: a cubic bezier displaced by
// an envelope-driven travelling wave plus simplex noise, tapered (thick at the orb), in four
// layers (glow, main stem, bright core, travelling pulses); transient dots run orb -> heart.

import { createNoise2D } from "../../vendor/simplex-noise/simplex-noise.js";
import { rgba, shiftColor } from "../palette.js";

const SAMPLES = 56;
const DOT_TRAVEL_S = 0.75;

function bezier(p0, p1, p2, p3, t) {
  const u = 1 - t;
  const a = u * u * u, b = 3 * u * u * t, c = 3 * u * t * t, d = t * t * t;
  return [a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]];
}

function bezierTangent(p0, p1, p2, p3, t) {
  const u = 1 - t;
  const a = 3 * u * u, b = 6 * u * t, c = 3 * t * t;
  return [
    a * (p1[0] - p0[0]) + b * (p2[0] - p1[0]) + c * (p3[0] - p2[0]),
    a * (p1[1] - p0[1]) + b * (p2[1] - p1[1]) + c * (p3[1] - p2[1]),
  ];
}

/** One tendril's animated state: its pulses and transient dots. */
class TendrilState {
  constructor(seed) {
    this.seed = seed;
    this.dots = [];        // [{t0 (s)}] transient dots on their way to the heart
    this.armed = true;     // re-armed when flash falls below the threshold
  }
}

export class TendrilLayer {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.noise = createNoise2D(mulberry32(0x5eed));
    this.states = new Map();
  }

  state(id, seed) {
    if (!this.states.has(id)) this.states.set(id, new TendrilState(seed));
    return this.states.get(id);
  }

  /**
   * Sample the displaced centre line of one tendril: points, normals and the taper per sample.
   * The wave travels from the orb toward the heart; its amplitude follows the envelope.
   */
  centreLine(orb, heart, timeS, st) {
    const p0 = [orb.x, orb.y];
    const p3 = [heart.x, heart.y];
    const dx = p3[0] - p0[0], dy = p3[1] - p0[1];
    const dist = Math.hypot(dx, dy) || 1;
    const nx = -dy / dist, ny = dx / dist;
    const bow = 0.22 * dist * (orb.x < heart.x ? 1 : -1);
    const sway = this.noise(st.seed, timeS * 0.15) * 0.12 * dist;
    const p1 = [p0[0] + dx * 0.3 + nx * (bow + sway), p0[1] + dy * 0.05 + ny * (bow + sway) + 40];
    const p2 = [p0[0] + dx * 0.75 - nx * bow * 0.4, p3[1] + 30 + ny * sway * 0.5];
    const pts = [];
    const amp = 3 + 16 * orb.envelope;
    for (let i = 0; i <= SAMPLES; i++) {
      const t = i / SAMPLES;
      const [x, y] = bezier(p0, p1, p2, p3, t);
      const [tx, ty] = bezierTangent(p0, p1, p2, p3, t);
      const tl = Math.hypot(tx, ty) || 1;
      const ux = -ty / tl, uy = tx / tl;
      const fade = Math.sin(Math.PI * t); // pinned at both ends
      const wave = Math.sin(t * 14 - timeS * 6.5 + st.seed) * amp * fade;
      const drift = this.noise(t * 2.2 + st.seed * 10, timeS * 0.6) * (4 + 10 * orb.envelope) * fade;
      const d = wave + drift;
      pts.push({ x: x + ux * d, y: y + uy * d, ux, uy, t });
    }
    return pts;
  }

  /** Fill a ribbon whose half-width at sample t is widthAt(t). */
  ribbon(pts, widthAt) {
    const ctx = this.ctx;
    ctx.beginPath();
    for (let i = 0; i < pts.length; i++) {
      const p = pts[i];
      const w = widthAt(p.t);
      if (i === 0) ctx.moveTo(p.x + p.ux * w, p.y + p.uy * w);
      else ctx.lineTo(p.x + p.ux * w, p.y + p.uy * w);
    }
    for (let i = pts.length - 1; i >= 0; i--) {
      const p = pts[i];
      const w = widthAt(p.t);
      ctx.lineTo(p.x - p.ux * w, p.y - p.uy * w);
    }
    ctx.closePath();
    ctx.fill();
  }

  pointAt(pts, t) {
    const f = Math.min(pts.length - 1.001, Math.max(0, t * (pts.length - 1)));
    const i = Math.floor(f);
    const k = f - i;
    return [pts[i].x + (pts[i + 1].x - pts[i].x) * k, pts[i].y + (pts[i + 1].y - pts[i].y) * k];
  }

  /**
   * Draw every tendril and the heart. orbs: [{id, x, y, radius, color, envelope, flash,
   * energy, enabled, seed}], heart: {x, y, size, beatPulse, colors}; dpr: device pixel ratio.
   */
  draw(orbs, heart, timeS, dpr) {
    const ctx = this.ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width / dpr, this.canvas.height / dpr);
    ctx.globalCompositeOperation = "lighter";
    for (const orb of orbs) {
      const st = this.state(orb.id, orb.seed);
      const pts = this.centreLine(orb, heart, timeS, st);
      const base = orb.radius * (orb.enabled ? 0.2 : 0.11);
      const taper = (t) => base * Math.pow(1 - t, 0.85) + 0.8;
      const live = orb.enabled ? 1 : 0.35;
      const color = orb.color;
      const bright = shiftColor(color, { dl: 0.25, ds: -0.1 });

      // 1. glow
      ctx.fillStyle = rgba(color, (0.06 + 0.1 * orb.envelope) * live);
      this.ribbon(pts, (t) => taper(t) * 3.2 + 3);
      // 2. main stem
      const grad = ctx.createLinearGradient(orb.x, orb.y, heart.x, heart.y);
      grad.addColorStop(0, rgba(color, 0.75 * live));
      grad.addColorStop(1, rgba(color, 0.25 * live));
      ctx.fillStyle = grad;
      this.ribbon(pts, taper);
      // 3. bright core
      ctx.fillStyle = rgba(bright, (0.35 + 0.5 * orb.envelope) * live);
      this.ribbon(pts, (t) => taper(t) * 0.32);
      // 4. travelling pulses: soft beads moving toward the heart, speed with energy.
      const speed = 0.18 + 0.5 * orb.energy;
      for (let k = 0; k < 3; k++) {
        const t = (timeS * speed + k / 3 + st.seed * 0.13) % 1;
        const [x, y] = this.pointAt(pts, t);
        const r = taper(t) * 1.6 + 2;
        const g = ctx.createRadialGradient(x, y, 0, x, y, r * 2.5);
        g.addColorStop(0, rgba(bright, 0.55 * live * (0.3 + orb.energy)));
        g.addColorStop(1, rgba(color, 0));
        ctx.fillStyle = g;
        ctx.fillRect(x - r * 2.5, y - r * 2.5, r * 5, r * 5);
      }
      // Transient dots: spawned on a rising flash above 0.5, travel orb -> heart.
      if (orb.enabled && orb.flash > 0.5 && st.armed) {
        st.dots.push({ t0: timeS });
        st.armed = false;
      } else if (orb.flash < 0.35) {
        st.armed = true;
      }
      st.dots = st.dots.filter((d) => timeS - d.t0 < DOT_TRAVEL_S);
      for (const d of st.dots) {
        const u = (timeS - d.t0) / DOT_TRAVEL_S;
        const t = u * u * (3 - 2 * u);
        const [x, y] = this.pointAt(pts, t);
        const r = 9 * (1 - 0.5 * t);
        const g = ctx.createRadialGradient(x, y, 0, x, y, r * 2.2);
        g.addColorStop(0, "rgba(255,255,255,0.95)");
        g.addColorStop(0.25, rgba(bright, 0.85));
        g.addColorStop(1, rgba(color, 0));
        ctx.fillStyle = g;
        ctx.fillRect(x - r * 2.2, y - r * 2.2, r * 4.4, r * 4.4);
      }
    }
    ctx.globalCompositeOperation = "source-over";
    drawHeart(ctx, heart, timeS);
  }
}

/**
 * The crystal heart: a slowly turning hexagonal bipyramid projected to 2D, faces shaded by a
 * fixed light and tinted with the linked stems' colours; it swells on every beat.
 */
function drawHeart(ctx, heart, timeS) {
  const n = 6;
  const size = heart.size * (1 + 0.16 * heart.beatPulse);
  const yaw = timeS * 0.45;
  const tilt = 0.38;
  const ring = [];
  for (let i = 0; i < n; i++) {
    const a = yaw + (i * 2 * Math.PI) / n;
    ring.push([Math.cos(a), 0, Math.sin(a)]);
  }
  const top = [0, -1.35, 0];
  const bottom = [0, 1.05, 0];
  const project = ([x, y, z]) => {
    const y2 = y * Math.cos(tilt) - z * Math.sin(tilt);
    const z2 = y * Math.sin(tilt) + z * Math.cos(tilt);
    return [heart.x + x * size, heart.y + y2 * size * 0.9, z2];
  };
  const light = [-0.4, -0.8, -0.45];
  const faces = [];
  const colors = heart.colors.length ? heart.colors : ["#ffffff"];
  for (let i = 0; i < n; i++) {
    const a = ring[i], b = ring[(i + 1) % n];
    for (const apex of [top, bottom]) {
      const u = [a[0] - apex[0], a[1] - apex[1], a[2] - apex[2]];
      const v = [b[0] - apex[0], b[1] - apex[1], b[2] - apex[2]];
      let nrm = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
      const cx = (a[0] + b[0] + apex[0]) / 3, cy = (a[1] + b[1] + apex[1]) / 3, cz = (a[2] + b[2] + apex[2]) / 3;
      if (nrm[0] * cx + nrm[1] * cy + nrm[2] * cz < 0) nrm = nrm.map((x) => -x);
      const len = Math.hypot(...nrm) || 1;
      nrm = nrm.map((x) => x / len);
      // Only faces turned toward the viewer (negative z after the tilt) are drawn.
      const facing = nrm[1] * Math.sin(tilt) + nrm[2] * Math.cos(tilt);
      if (facing > 0.02) continue;
      const pa = project(apex), pb = project(a), pc = project(b);
      const lambert = Math.max(0, -(nrm[0] * light[0] + nrm[1] * light[1] + nrm[2] * light[2]));
      faces.push({ pts: [pa, pb, pc], z: (pa[2] + pb[2] + pc[2]) / 3, lambert, color: colors[i % colors.length] });
    }
  }
  faces.sort((f, g) => g.z - f.z);
  // Halo behind the crystal, breathing with the beat.
  const halo = ctx.createRadialGradient(heart.x, heart.y, size * 0.2, heart.x, heart.y, size * 3.2);
  halo.addColorStop(0, `rgba(255,240,255,${0.22 + 0.35 * heart.beatPulse})`);
  halo.addColorStop(0.4, `rgba(170,140,255,${0.08 + 0.12 * heart.beatPulse})`);
  halo.addColorStop(1, "rgba(120,100,255,0)");
  ctx.fillStyle = halo;
  ctx.fillRect(heart.x - size * 3.2, heart.y - size * 3.2, size * 6.4, size * 6.4);
  for (const f of faces) {
    const [pa, pb, pc] = f.pts;
    const g = ctx.createLinearGradient(pa[0], pa[1], (pb[0] + pc[0]) / 2, (pb[1] + pc[1]) / 2);
    const lit = 0.35 + 0.65 * f.lambert;
    g.addColorStop(0, rgba(shiftColor(f.color, { dl: 0.3 * lit }), 0.92));
    g.addColorStop(1, rgba(shiftColor(f.color, { dl: -0.35 + 0.3 * lit }), 0.88));
    ctx.fillStyle = g;
    ctx.beginPath();
    ctx.moveTo(pa[0], pa[1]);
    ctx.lineTo(pb[0], pb[1]);
    ctx.lineTo(pc[0], pc[1]);
    ctx.closePath();
    ctx.fill();
    ctx.strokeStyle = `rgba(255,255,255,${0.18 + 0.3 * f.lambert})`;
    ctx.lineWidth = 0.8;
    ctx.stroke();
  }
  // Specular glint.
  const gx = heart.x - size * 0.25, gy = heart.y - size * 0.55;
  const glint = ctx.createRadialGradient(gx, gy, 0, gx, gy, size * 0.45);
  glint.addColorStop(0, `rgba(255,255,255,${0.55 + 0.4 * heart.beatPulse})`);
  glint.addColorStop(1, "rgba(255,255,255,0)");
  ctx.globalCompositeOperation = "lighter";
  ctx.fillStyle = glint;
  ctx.fillRect(gx - size * 0.45, gy - size * 0.45, size * 0.9, size * 0.9);
  ctx.globalCompositeOperation = "source-over";
}

/** Small seeded PRNG so the noise field is the same on every load. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
