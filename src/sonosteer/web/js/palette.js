// Colours of the instrument: one per link target (stems, sub-bands derived from their parent),
// 27 feature-category colours, and small colour helpers shared by the orbs, tendrils and panels.

export const STEM_COLORS = {
  bass: "#ff8a3d",    // warm orange
  drums: "#ff3dbd",   // magenta
  vocals: "#36e0ff",  // cyan
  other: "#5cf08c",   // green
};

const DERIVED_COLORS = {
  tension: "#b18cff",
  global: "#f4ead8",
};

// How a sub-band or component shifts its parent stem's colour: hue (deg), saturation and
// lightness (in [0,1] units). Low bands sit darker and warmer, high bands lighter and cooler.
const SUFFIX_SHIFTS = {
  low: { dh: -14, ds: 0.0, dl: -0.12 },
  mid: { dh: 0, ds: -0.08, dl: 0.02 },
  high: { dh: 16, ds: -0.05, dl: 0.16 },
  harmonic: { dh: 18, ds: -0.1, dl: 0.1 },
  percussive: { dh: -18, ds: 0.05, dl: -0.04 },
};

export function hexToRgb(hex) {
  const h = hex.replace("#", "");
  return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16) / 255);
}

export function rgbToHex([r, g, b]) {
  const c = (x) => Math.round(Math.min(1, Math.max(0, x)) * 255).toString(16).padStart(2, "0");
  return `#${c(r)}${c(g)}${c(b)}`;
}

function rgbToHsl([r, g, b]) {
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const l = (max + min) / 2;
  if (max === min) return [0, 0, l];
  const d = max - min;
  const s = l > 0.5 ? d / (2 - max - min) : d / (max + min);
  let h;
  if (max === r) h = (g - b) / d + (g < b ? 6 : 0);
  else if (max === g) h = (b - r) / d + 2;
  else h = (r - g) / d + 4;
  return [h * 60, s, l];
}

function hslToRgb([h, s, l]) {
  const k = (n) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [f(0), f(8), f(4)];
}

/** Shift a colour in HSL space: dh degrees of hue, ds/dl added to saturation/lightness. */
export function shiftColor(hex, { dh = 0, ds = 0, dl = 0 }) {
  const [h, s, l] = rgbToHsl(hexToRgb(hex));
  const clamp = (x) => Math.min(1, Math.max(0, x));
  return rgbToHex(hslToRgb([(h + dh + 360) % 360, clamp(s + ds), clamp(l + dl)]));
}

function hashHue(name) {
  let h = 2166136261;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return (h >>> 0) % 360;
}

/** Colour of a link target: a stem's own colour, a sub-band derived from its parent stem. */
export function sourceColor(name) {
  if (!name) return "#5b5f6e";
  if (STEM_COLORS[name]) return STEM_COLORS[name];
  if (DERIVED_COLORS[name]) return DERIVED_COLORS[name];
  const cut = name.indexOf("_");
  if (cut > 0) {
    const parent = name.slice(0, cut);
    const suffix = name.slice(cut + 1);
    const base = STEM_COLORS[parent] || DERIVED_COLORS[parent];
    if (base) return shiftColor(base, SUFFIX_SHIFTS[suffix] || { dl: 0.08 });
  }
  return rgbToHex(hslToRgb([hashHue(name), 0.7, 0.62]));
}

// 27 category colours, spread around the hue circle in three lightness rings so neighbours
// in the list stay distinguishable.
export const CATEGORY_PALETTE = Array.from({ length: 27 }, (_, i) => {
  const ring = i % 3;
  const hue = (i * 360 * 10) / 27 % 360;
  return rgbToHex(hslToRgb([hue, [0.72, 0.6, 0.5][ring], [0.62, 0.72, 0.52][ring]]));
});

/**
 * Colour of a feature category. `categories` is the server's ordered category list (up to 27);
 * a category not in it gets a stable colour from its name.
 */
export function categoryColor(category, categories = []) {
  if (!category) return "#4a4d5a";
  const i = categories.indexOf(category);
  if (i >= 0) return CATEGORY_PALETTE[i % CATEGORY_PALETTE.length];
  return CATEGORY_PALETTE[hashHue(category) % CATEGORY_PALETTE.length];
}

/** CSS rgba() of a hex colour with alpha. */
export function rgba(hex, alpha) {
  const [r, g, b] = hexToRgb(hex);
  return `rgba(${Math.round(r * 255)},${Math.round(g * 255)},${Math.round(b * 255)},${alpha})`;
}
