// The mock server's renderer, in a worker: draws what the controls say (prompt blend as colour,
// the noise walk as orbiting lights, each block's colour inside its mask as bright as its
// strength) and encodes JPEG. Message in: {t, meters, settings, frameNumber, size}; out: bytes.

import { BLOCK_NAMES, MASK_SIZE } from "../blocks.js";
import { presetMask } from "../masks.js";
import { hexToRgb, sourceColor } from "../palette.js";

let canvas, ctx, maskCanvas, maskCtx, softCanvas, softCtx;

function setup(size) {
  canvas = new OffscreenCanvas(size, size);
  ctx = canvas.getContext("2d");
  maskCanvas = new OffscreenCanvas(MASK_SIZE, MASK_SIZE);
  maskCtx = maskCanvas.getContext("2d");
  softCanvas = new OffscreenCanvas(64, 64);
  softCtx = softCanvas.getContext("2d");
}

function hue(value) {
  let h = 7;
  for (const ch of JSON.stringify(value)) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

function draw({ t, meters, settings: s, frameNumber, size: SIZE }) {
  const ha = hue(s.prompt.a), hb = hue(s.prompt.b);
  const mixHue = ha + (((hb - ha + 540) % 360) - 180) * meters.prompt_blend;
  const g = ctx.createLinearGradient(0, 0, SIZE, SIZE);
  g.addColorStop(0, `hsl(${mixHue}, 45%, 16%)`);
  g.addColorStop(1, `hsl(${mixHue + 40}, 55%, 8%)`);
  ctx.globalCompositeOperation = "source-over";
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, SIZE, SIZE);
  const a = meters.noise_angle_rad;
  for (let k = 0; k < 5; k++) {
    const seed = (s.composition.seed_a * 7 + s.composition.seed_b * 13 + k * 101) % 997;
    const r = 90 + (seed % 140);
    const x = SIZE / 2 + Math.cos(a + k * 1.3 + seed) * r;
    const y = SIZE / 2 + Math.sin(a * 0.7 + k * 2.1 + seed) * r;
    const gg = ctx.createRadialGradient(x, y, 0, x, y, 150);
    gg.addColorStop(0, `hsla(${mixHue + k * 30}, 70%, 60%, 0.35)`);
    gg.addColorStop(1, `hsla(${mixHue + k * 30}, 70%, 50%, 0)`);
    ctx.fillStyle = gg;
    ctx.fillRect(0, 0, SIZE, SIZE);
  }
  ctx.globalCompositeOperation = "lighter";
  ctx.imageSmoothingEnabled = true;
  BLOCK_NAMES.forEach((name, i) => {
    const b = s.blocks[name];
    if (!b.enabled) return;
    const mask = b.spatial.preset === "custom" && b.spatial.mask ? b.spatial.mask : presetMask(b.spatial.preset);
    const [r, gC, bC] = hexToRgb(sourceColor(b.link_target));
    const amt = Math.min(1, Math.abs(meters.blocks[i].strength) / 40);
    const img = maskCtx.createImageData(MASK_SIZE, MASK_SIZE);
    for (let y = 0; y < MASK_SIZE; y++) {
      for (let x = 0; x < MASK_SIZE; x++) {
        const v = mask[y][x] * amt * (0.55 + 0.45 * Math.sin(x * 0.9 + y * 0.7 + b.feature_id * 0.37 + t));
        const o = (y * MASK_SIZE + x) * 4;
        img.data[o] = r * 255 * v;
        img.data[o + 1] = gC * 255 * v;
        img.data[o + 2] = bC * 255 * v;
        img.data[o + 3] = 255;
      }
    }
    maskCtx.putImageData(img, 0, 0);
    // Two bilinear upscales (16 -> 64 -> size) give a soft field without a blur filter.
    softCtx.clearRect(0, 0, 64, 64);
    softCtx.drawImage(maskCanvas, 0, 0, 64, 64);
    ctx.drawImage(softCanvas, 0, 0, SIZE, SIZE);
  });
  ctx.globalCompositeOperation = "source-over";
  ctx.fillStyle = "rgba(255,255,255,0.55)";
  ctx.font = "600 13px monospace";
  ctx.fillText(`MOCK  ${t.toFixed(2)} s  #${frameNumber}`, 12, SIZE - 14);
}

self.onmessage = async (e) => {
  if (!canvas || canvas.width !== e.data.size) setup(e.data.size);
  draw(e.data);
  const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.85 });
  const bytes = await blob.arrayBuffer();
  self.postMessage(bytes, [bytes]);
};
