// The spatial-mask presets, as the bridge defines them (16x16, rows top to bottom).

import { MASK_SIZE } from "./blocks.js";

export const MASK_PRESETS = ["floor", "ceiling", "center", "fill", "clear"];

/** floor: bottom half; ceiling: top half; center: the middle band; fill: all; clear: none. */
export function presetMask(preset) {
  const rows = [];
  for (let r = 0; r < MASK_SIZE; r++) {
    const row = [];
    for (let c = 0; c < MASK_SIZE; c++) {
      let v = 0;
      if (preset === "fill") v = 1;
      else if (preset === "floor") v = r >= MASK_SIZE / 2 ? 1 : 0;
      else if (preset === "ceiling") v = r < MASK_SIZE / 2 ? 1 : 0;
      else if (preset === "center") v = r >= MASK_SIZE / 4 && r < (3 * MASK_SIZE) / 4 ? 1 : 0;
      row.push(v);
    }
    rows.push(row);
  }
  return rows;
}

export const N_PITCH_MASKS = 12;

/**
 * The pitch-aligned mask the bridge uses for a normalised pitch (0 low .. 1 high): a horizontal
 * Gaussian band of std `spread` image heights, centred low for low notes and high for high ones.
 */
export function pitchMask(pitchNormalized, spread = 0.25, n = N_PITCH_MASKS) {
  const index = Math.min(n - 1, Math.max(0, Math.floor(pitchNormalized * (n - 1) + 0.5)));
  const centre = 1 - index / (n - 1);
  const rows = [];
  for (let r = 0; r < MASK_SIZE; r++) {
    const y = (r + 0.5) / MASK_SIZE;
    const v = Math.exp(-0.5 * ((y - centre) / spread) ** 2);
    rows.push(new Array(MASK_SIZE).fill(v));
  }
  return rows;
}
