// A synthetic groove for the mock server: kick, snare, hats, a bass line, a pad and a lead,
// rendered to a WAV blob, plus the per-stem meters (energy_smooth, flash, transient) computed
// from the same note schedule, so the orbs move with what is heard. A development tool.

export const SYNTH_BPM = 124;
export const SYNTH_SECONDS = 32;
const SR = 22050;

const BASS_NOTES = [41, 41, 44, 46, 41, 41, 48, 46]; // MIDI, one per eighth, looping
const LEAD_NOTES = [65, 68, 70, 72, 70, 68, 65, 63];
const hz = (m) => 440 * 2 ** ((m - 69) / 12);

/** Every note of the groove: {stem, t (s), dur (s), level, midi?}. */
export function schedule() {
  const beat = 60 / SYNTH_BPM;
  const events = [];
  const beats = Math.floor(SYNTH_SECONDS / beat);
  for (let b = 0; b < beats; b++) {
    const t = b * beat;
    const bar = Math.floor(b / 4);
    const intro = bar < 2;
    events.push({ stem: "drums", kind: "kick", t, dur: 0.25, level: 1 });
    if (!intro && b % 2 === 1) events.push({ stem: "drums", kind: "snare", t, dur: 0.18, level: 0.7 });
    for (let k = 0; k < 2; k++) events.push({ stem: "drums", kind: "hat", t: t + k * beat / 2, dur: 0.05, level: intro ? 0.25 : 0.4 });
    if (!intro) {
      for (let k = 0; k < 2; k++) {
        const i = (b * 2 + k) % BASS_NOTES.length;
        events.push({ stem: "bass", t: t + (k * beat) / 2, dur: beat * 0.45, level: 0.9, midi: BASS_NOTES[i] });
      }
    }
    if (b % 8 === 0) events.push({ stem: "other", t, dur: beat * 8, level: 0.5, midi: 57 + ((b / 8) % 2 ? 3 : 0) });
    if (bar >= 4 && bar % 4 >= 2) events.push({ stem: "vocals", t, dur: beat * 0.9, level: 0.55, midi: LEAD_NOTES[b % LEAD_NOTES.length] });
  }
  return events;
}

/** Render the groove to a 16-bit mono WAV Blob. */
export function renderWav() {
  const n = Math.floor(SYNTH_SECONDS * SR);
  const out = new Float32Array(n);
  let seed = 12345;
  const noise = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  for (const e of schedule()) {
    const i0 = Math.floor(e.t * SR);
    const len = Math.min(n - i0, Math.floor(e.dur * SR));
    for (let i = 0; i < len; i++) {
      const t = i / SR;
      let x = 0;
      if (e.kind === "kick") x = Math.sin(2 * Math.PI * (50 * t + 90 * (1 - Math.exp(-t * 30)) / 30)) * Math.exp(-t * 9) * 0.9;
      else if (e.kind === "snare") x = (noise() * 0.6 + Math.sin(2 * Math.PI * 190 * t) * 0.4) * Math.exp(-t * 22) * 0.5;
      else if (e.kind === "hat") x = noise() * Math.exp(-t * 80) * 0.25;
      else if (e.stem === "bass") {
        const f = hz(e.midi);
        x = (Math.sin(2 * Math.PI * f * t) + 0.3 * Math.sin(4 * Math.PI * f * t)) * Math.min(1, t * 200) * Math.exp(-t * 3) * 0.45;
      } else if (e.stem === "other") {
        const f = hz(e.midi);
        const env = Math.min(1, t / 0.8) * Math.min(1, (e.dur - t) / 0.8);
        x = (Math.sin(2 * Math.PI * f * t) + Math.sin(2 * Math.PI * f * 1.2599 * t) + Math.sin(2 * Math.PI * f * 1.4983 * t)) * env * 0.07;
      } else if (e.stem === "vocals") {
        const f = hz(e.midi) * (1 + 0.006 * Math.sin(2 * Math.PI * 5.5 * t));
        const env = Math.min(1, t / 0.04) * Math.min(1, (e.dur - t) / 0.08);
        x = (Math.sin(2 * Math.PI * f * t) + 0.25 * Math.sin(6 * Math.PI * f * t)) * env * 0.18;
      }
      out[i0 + i] += x * e.level;
    }
  }
  const buf = new ArrayBuffer(44 + n * 2);
  const v = new DataView(buf);
  const str = (o, s) => [...s].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
  str(0, "RIFF");
  v.setUint32(4, 36 + n * 2, true);
  str(8, "WAVEfmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, 1, true);
  v.setUint32(24, SR, true);
  v.setUint32(28, SR * 2, true);
  v.setUint16(32, 2, true);
  v.setUint16(34, 16, true);
  str(36, "data");
  v.setUint32(40, n * 2, true);
  for (let i = 0; i < n; i++) v.setInt16(44 + i * 2, Math.max(-1, Math.min(1, out[i] * 0.8)) * 32767, true);
  return new Blob([buf], { type: "audio/wav" });
}

/**
 * Meters of one stem at time t from the schedule: energy_smooth (attack/release envelope),
 * flash (fast layer), transient (1 within 30 ms of an onset).
 */
export class SynthMeters {
  constructor() {
    this.byStem = {};
    for (const e of schedule()) (this.byStem[e.stem] ||= []).push(e);
  }

  sample(stem, t) {
    const parent = stem ? stem.split("_")[0] : null;
    const evs = this.byStem[parent] || [];
    let energy = 0, flash = 0, transient = 0, pitch = null;
    for (const e of evs) {
      const dt = t - e.t;
      if (dt < 0 || dt > e.dur + 0.6) continue;
      const held = dt <= e.dur ? 1 : Math.exp(-(dt - e.dur) / 0.15);
      energy = Math.max(energy, e.level * held * (parent === "drums" ? Math.exp(-dt / 0.18) : 1));
      flash = Math.max(flash, e.level * Math.exp(-dt / 0.05));
      if (dt < 0.03 && e.level > 0.45) transient = 1;
      if (e.midi && dt <= e.dur) pitch = Math.log2(440 * 2 ** ((e.midi - 69) / 12) / 80) / Math.log2(2000 / 80);
    }
    if (stem === "tension") energy = 0.5 + 0.5 * Math.sin(t / 4);
    const out = { energy_smooth: Math.min(1, energy), envelope: Math.min(1, energy), flash: Math.min(1, flash), transient };
    if (pitch !== null) out.pitch_normalized = Math.min(1, Math.max(0, pitch));
    return out;
  }
}
