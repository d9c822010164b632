// The transport bar: play/pause, time, a seek bar with the beat grid, tempo with a beat light,
// playback rate.

import { formatTime, h } from "../ui/dom.js";

const PLAY = "M4 2.5 L13.5 8 L4 13.5 Z";
const PAUSE = "M3.5 2.5 H6.5 V13.5 H3.5 Z M9.5 2.5 H12.5 V13.5 H9.5 Z";

export class TransportBar {
  constructor(root, transport, session) {
    this.transport = transport;
    this.session = session;
    this.iconPath = h("svg:path", { d: PLAY });
    this.playBtn = h("button", { type: "button", class: "play-btn", id: "play-button", title: "Play / pause (space)", onclick: () => transport.toggle() },
      h("svg:svg", { viewBox: "0 0 16 16" }, this.iconPath));
    this.timeEl = h("span", { class: "time", id: "time" }, "0:00");
    this.totalEl = h("span", { class: "total" }, " / 0:00");
    this.beatLed = h("span", { class: "beat-led" });
    this.tempoEl = h("span", {}, "— BPM");
    this.hint = h("span", { class: "join-hint" });
    this.seekCanvas = h("canvas");
    this.hoverEl = h("div", { class: "seek-hover", hidden: true });
    this.seekEl = h("div", { class: "seek", id: "seek", title: "seek" }, this.seekCanvas, this.hoverEl);
    this.rate = h("select", { class: "select rate-select", title: "playback rate", "aria-label": "playback rate" },
      [0.5, 0.75, 1, 1.25, 1.5, 2].map((r) => h("option", { value: String(r) }, `${r}×`)));
    this.rate.value = "1";
    this.rate.addEventListener("change", () => transport.setRate(Number(this.rate.value)));
    root.replaceChildren(
      h("div", { class: "transport-left" }, this.playBtn, h("span", { class: "time" }, this.timeEl, this.totalEl)),
      this.seekEl,
      h("div", { class: "transport-right" }, this.hint, h("span", { class: "tempo" }, this.beatLed, this.tempoEl), this.rate),
    );
    this.bindSeek();
    transport.addEventListener("change", () => this.refresh());
    transport.addEventListener("blocked", () => this.refresh());
    session.addEventListener("track", () => this.refresh());
    new ResizeObserver(() => this.sizeCanvas()).observe(this.seekEl);
    this.refresh();
  }

  bindSeek() {
    const frac = (e) => {
      const r = this.seekEl.getBoundingClientRect();
      return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    };
    let dragging = false;
    this.seekEl.addEventListener("pointerdown", (e) => {
      if (!this.transport.durationS) return;
      dragging = true;
      this.seekEl.setPointerCapture(e.pointerId);
      this.dragFrac = frac(e);
    });
    this.seekEl.addEventListener("pointermove", (e) => {
      const d = this.transport.durationS;
      if (!d) return;
      const f = frac(e);
      this.hoverEl.hidden = false;
      this.hoverEl.style.left = `${f * 100}%`;
      this.hoverEl.textContent = formatTime(f * d);
      if (dragging) this.dragFrac = f;
    });
    this.seekEl.addEventListener("pointerleave", () => (this.hoverEl.hidden = true));
    const end = (e) => {
      if (!dragging) return;
      dragging = false;
      this.transport.seek(frac(e) * this.transport.durationS);
      this.dragFrac = null;
    };
    this.seekEl.addEventListener("pointerup", end);
    this.seekEl.addEventListener("pointercancel", () => {
      dragging = false;
      this.dragFrac = null;
    });
  }

  sizeCanvas() {
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    this.seekCanvas.width = Math.max(1, Math.round(this.seekEl.clientWidth * dpr));
    this.seekCanvas.height = Math.max(1, Math.round(this.seekEl.clientHeight * dpr));
    this.dpr = dpr;
  }

  refresh() {
    const t = this.session.track;
    this.playBtn.disabled = !t;
    this.iconPath.setAttribute("d", this.transport.playing ? PAUSE : PLAY);
    this.playBtn.setAttribute("aria-label", this.transport.playing ? "pause" : "play");
    this.totalEl.textContent = ` / ${formatTime(this.transport.durationS)}`;
    this.tempoEl.textContent = t && t.tempo_bpm ? `${t.tempo_bpm.toFixed(1)} BPM` : "— BPM";
    this.hint.textContent = this.transport.blocked ? "Another page started playback: press play to join" : "";
    this.rate.value = String(this.transport.audio.playbackRate);
  }

  /** Per animation frame: time readout, progress, beat light. */
  tick(beatPulse) {
    const d = this.transport.durationS;
    const now = this.transport.mediaTime();
    const text = formatTime(now);
    if (text !== this.timeEl.textContent) this.timeEl.textContent = text;
    const pulse = Math.round(beatPulse * 8) / 8;
    const cv = this.seekCanvas;
    // Redraw only when something visible changed (a pixel of progress, a beat-light step).
    const key = `${cv.width}|${d}|${Math.round(((this.dragFrac ?? now / (d || 1)) * cv.width))}|${pulse}`;
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    this.beatLed.style.opacity = String(0.2 + 0.8 * pulse);
    beatPulse = pulse;
    const ctx = cv.getContext("2d");
    const dpr = this.dpr || 1;
    const w = cv.width / dpr;
    const hgt = cv.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const y = hgt / 2;
    ctx.fillStyle = "#1c1c29";
    roundRect(ctx, 0, y - 2, w, 4, 2);
    const t = this.session.track;
    const analysis = (t && t.analysis) || {};
    const beats = Array.isArray(analysis.beats_s) && analysis.beats_s.length ? analysis.beats_s : null;
    if (d > 0 && (beats || (t && t.tempo_bpm))) {
      // Beat grid (the analysis's beats, else the tempo): bars brighter than beats, thinned out
      // when too dense to read.
      const grid = beats || Array.from({ length: Math.floor((d * t.tempo_bpm) / 60) + 1 }, (_, i) => (i * 60) / t.tempo_bpm);
      const downbeats = new Set((analysis.downbeats_s || []).map((x) => x.toFixed(3)));
      const perBar = analysis.beats_per_bar || 4;
      const px = w / Math.max(1, grid.length);
      const every = px < 3 ? Math.ceil(12 / px / perBar) * perBar : 1;
      grid.forEach((b, i) => {
        if (i % every) return;
        const bar = downbeats.size ? downbeats.has(b.toFixed(3)) : i % perBar === 0;
        ctx.fillStyle = bar ? "rgba(255,255,255,0.16)" : "rgba(255,255,255,0.06)";
        ctx.fillRect(Math.round((b / d) * w), y - (bar ? 8 : 5), 1, bar ? 16 : 10);
      });
    }
    if (d > 0) {
      const f = this.dragFrac ?? now / d;
      const g = ctx.createLinearGradient(0, 0, w, 0);
      g.addColorStop(0, "#8f6bff");
      g.addColorStop(1, "#36e0ff");
      ctx.fillStyle = g;
      roundRect(ctx, 0, y - 2, Math.max(4, f * w), 4, 2);
      ctx.fillStyle = "#f4f2fb";
      ctx.beginPath();
      ctx.arc(f * w, y, 6, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillStyle = `rgba(177,140,255,${0.25 + 0.4 * beatPulse})`;
      ctx.beginPath();
      ctx.arc(f * w, y, 10, 0, Math.PI * 2);
      ctx.fill();
    }
  }
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.roundRect(x, y, w, h, r);
  ctx.fill();
}
