// Link targets (the audio sources a block can follow), grouped the way a performer thinks of
// them, and the human names of the settings' enumerations.

import { sourceColor } from "./palette.js";

// The analysis layer's link targets (sonosteer.audio.channels): separated stems, Linkwitz-Riley
// sub-bands, HPSS components, derived signals. Used until a track's analysis lists its own.
const STANDARD_TARGETS = [
  "bass", "drums", "vocals", "other",
  "drums_low", "drums_mid", "drums_high", "other_mid", "other_high",
  "bass_harmonic", "drums_percussive",
  "tension", "global",
];

const GROUPS = [
  ["Stems", (n) => ["bass", "drums", "vocals", "other"].includes(n)],
  ["Sub-bands", (n) => /_(low|mid|high)$/.test(n)],
  ["Components", (n) => /_(harmonic|percussive)$/.test(n)],
  ["Derived", () => true],
];

/** The link targets a track offers (`track.stems` from the server), else the standard set. */
export function linkTargets(track) {
  const a = track && track.analysis;
  let names = track && Array.isArray(track.stems) ? [...track.stems] : null;
  if (!names && a) {
    const raw = a.link_targets || a.stems;
    if (Array.isArray(raw)) names = raw.map((s) => (typeof s === "string" ? s : s.name)).filter(Boolean);
    else if (raw && typeof raw === "object") names = Object.keys(raw);
  }
  if (!names || !names.length) names = STANDARD_TARGETS;
  // The full mix reads best last, with the derived signals.
  return [...names.filter((n) => n !== "global"), ...names.filter((n) => n === "global")];
}

/** [{group, targets: [{name, label, color}]}] in display order. */
export function groupedTargets(names) {
  const left = [...names];
  const out = [];
  for (const [group, test] of GROUPS) {
    const mine = left.filter(test);
    for (const n of mine) left.splice(left.indexOf(n), 1);
    if (mine.length) out.push({ group, targets: mine.map((n) => ({ name: n, label: targetLabel(n), color: sourceColor(n) })) });
  }
  return out;
}

export function targetLabel(name) {
  if (!name) return "None";
  return name.replace(/_/g, " ");
}

export const LABELS = {
  intensity_source: { energy_smooth: "Energy", transient: "Transient", flux: "Flux", envelope: "Envelope" },
  position_source: { fixed: "Fixed", pitch: "Pitch", chroma: "Chroma", brightness: "Bright", tension: "Tension" },
  rank: { R1: "R1", R2: "R2", R3: "R3", R4: "R4", auto: "Auto" },
  mode: { auto: "Auto", manual: "Manual" },
  curve: { linear: "Linear", gamma: "Gamma", clip: "Clip 1.5×" },
  physics_preset: { drums: "Drums", vocals: "Vocals", linear: "Linear", ambient: "Ambient" },
  physics_model: { blended: "Blended", spring: "Spring", pitch: "Pitch follow", oscillator: "Oscillator", drift: "Perlin drift" },
  response_layer: { direct: "Direct", flash: "Flash", sustain: "Sustain" },
  spatial_mode: { draw: "Draw", pitch: "Pitch-aligned" },
  silence: { hold: "Hold", drift_home: "Drift home" },
  prompt_mode: { slider: "Slider", reactive: "Reactive", linked: "Linked" },
  composition_mode: { auto: "Auto", pulse: "Pulse", continuous: "Continuous" },
};

export const TITLES = {
  intensity_source: {
    energy_smooth: "asymmetric-envelope RMS: fast attack, slow release (most musical)",
    transient: "fires only on detected hits: sharp, staccato",
    flux: "spectral change: timbre, not just loudness",
    envelope: "raw RMS: direct and jittery",
  },
  rank: {
    R1: "Lead: base weight 1.0",
    R2: "Support: 0.65",
    R3: "Background: 0.40",
    R4: "Subtle: 0.25",
    auto: "Auto: 0.05, promoted when the stem does something new",
  },
  physics_preset: {
    drums: "bouncy, damping ratio 0.45",
    vocals: "soft overshoot, damping ratio 0.70",
    linear: "critically damped, no overshoot",
    ambient: "slow and weighty, damping ratio 1.25",
  },
};

/** Segmented-control options for an enumeration, in the schema's order when it is known. */
export function options(kind, values) {
  const labels = LABELS[kind];
  const titles = TITLES[kind] || {};
  return (values || Object.keys(labels)).map((v) => ({ value: v, label: labels[v] || v, title: titles[v] }));
}

/** The dominant character of a stem from the analysis's classification, e.g. "percussive 95%". */
export function stemCharacter(track, name) {
  const stems = track && track.analysis && track.analysis.stems;
  const c = stems && !Array.isArray(stems) && stems[name] && stems[name].classification;
  if (!c) return "";
  const kinds = ["percussive", "melody", "harmony", "texture"].filter((k) => typeof c[k] === "number");
  if (!kinds.length) return "";
  const best = kinds.reduce((a, b) => (c[b] > c[a] ? b : a));
  return `${best} ${Math.round(c[best] * 100)}%`;
}
