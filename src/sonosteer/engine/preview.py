"""The preview renderer: draws FrameControls truthfully with numpy, for machines without a GPU or weights.

It does not generate images; it shows what each control does, so the instrument can be designed,
played and tested anywhere:
- each block lays its own colour over the image inside its mask (16x16 upsampled smoothly), in
  block order, with opacity from |strength|; positive strength: the colour, textured by a
  grating chosen by the feature id; negative strength: hard stripes of the colour and black;
- the background wipes from prompt A's colour to prompt B's (colours from hashes of the prompt
  texts) as the blend goes from 0 to 1, with a crossfader bar at the bottom;
- the noise texture is cos(angle) * field(seed_a) + sin(angle) * field(seed_b), the engine's
  circular walk, with a dial in the top-right corner showing the angle;
- "PREVIEW" in the top-left corner, the media time and per-block feature and strength as text.
"""

from __future__ import annotations

import colorsys
import hashlib
import time
from collections import OrderedDict

import numpy as np
from threadpoolctl import ThreadpoolController

from sonosteer.blocks import BLOCKS, MASK_SIZE, SAE_N_FEATURES
from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.preview_font import GLYPH_H, draw_text
from sonosteer.engine.renderer import FeatureInfo, ProgressFn

BLOCK_COLORS_RGB: tuple[tuple[float, float, float], ...] = (
    (255.0, 120.0, 30.0),  # down.2.1: orange
    (60.0, 220.0, 90.0),  # mid.0: green
    (40.0, 150.0, 255.0),  # up.0.0: blue
    (240.0, 60.0, 200.0),  # up.0.1: magenta
)
STRENGTH_SCALE = 20.0
"""|strength| -> opacity is MAX_OPACITY * tanh(|strength| / STRENGTH_SCALE): 0.41 at 10, 0.82 at 30."""
MAX_OPACITY = 0.9
NEGATIVE_SHADE = 0.08
"""Negative strength lays stripes of the block's colour and this fraction of it (near black)."""
NOISE_CONTRAST = 0.35
BACKGROUND_LEVEL = 0.45
_WIPE_SOFTNESS = 0.3
_CACHE_ENTRIES = 32


def smooth_upsample_matrix(n_out: int, n_in: int = MASK_SIZE) -> np.ndarray:
    """(n_out, n_in) interpolation weights: cell-centred, smoothstep between neighbours (C1-smooth)."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    frac = frac * frac * (3.0 - 2.0 * frac)
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m.astype(np.float32)


def prompt_color(prompt) -> np.ndarray:
    """A stable RGB colour (0..255 floats) for a prompt; an empty prompt is neutral grey.

    A frozen blend of two prompts (anything with `a`, `b`, `t`, such as the bridge's PromptBlend)
    gets the mix of its ends' colours at `t`, as its embedding is the SLERP of theirs.
    """
    if not isinstance(prompt, str):
        col_a, col_b = prompt_color(prompt.a), prompt_color(prompt.b)
        return col_a + (col_b - col_a) * np.float32(prompt.t)
    text = prompt.strip()
    if not text:
        return np.array([90.0, 90.0, 95.0], dtype=np.float32)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    hue = int.from_bytes(digest[:4], "little") / 2**32
    light = 0.45 + 0.2 * digest[4] / 255.0
    r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
    return np.array([r * 255.0, g * 255.0, b * 255.0], dtype=np.float32)


def prompt_text(prompt) -> str:
    """A prompt as overlay text; a frozen blend reads `(A>B 0.40)`."""
    if isinstance(prompt, str):
        return prompt
    return f"({prompt_text(prompt.a)}>{prompt_text(prompt.b)} {prompt.t:.2f})"


class PreviewRenderer:
    """Renderer protocol implementation (kind "preview") drawing the controls with numpy."""

    kind = "preview"

    def __init__(self, height: int = 512, width: int = 512, reason: str = ""):
        if height < 16 or width < 16:
            raise ValueError(f"preview frames must be at least 16x16, got {height}x{width}")
        self.height = int(height)
        self.width = int(width)
        self.label = "preview renderer, draws the controls" + (f" ({reason})" if reason else "")
        self.ring_size = 3
        self.last_timings_ms: dict[str, float] = {}
        self._ring = [np.zeros((self.height, self.width, 3), dtype=np.uint8) for _ in range(self.ring_size)]
        self._ring_index = 0
        self._up_y = smooth_upsample_matrix(self.height)
        self._up_x_t = np.ascontiguousarray(smooth_upsample_matrix(self.width).T)
        yy, xx = np.mgrid[0 : self.height, 0 : self.width]
        self._stripes = np.where(((xx + yy) // 8) % 2 == 0, 1.0, NEGATIVE_SHADE).astype(np.float32)
        self._u = (np.arange(self.width, dtype=np.float32) + 0.5) / self.width
        self._seed_fields: OrderedDict[int, np.ndarray] = OrderedDict()
        self._patterns: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        # Planar working buffers: per-channel ops on (H, W) planes are far faster than on (H, W, 3).
        self._img = np.empty((3, self.height, self.width), dtype=np.float32)
        self._planes_u8 = np.empty((3, self.height, self.width), dtype=np.uint8)
        self._lum = np.empty((self.height, self.width), dtype=np.float32)
        self._alpha = np.empty((self.height, self.width), dtype=np.float32)
        self._scratch = np.empty((self.height, self.width), dtype=np.float32)
        self._controls = FrameControls()
        self._closed = False
        # The upsampling matmuls are tiny (512x16x512): one BLAS thread does them in ~0.15 ms,
        # while several threads on a busy machine wait on each other for milliseconds.
        self._blas = ThreadpoolController()

    # -- Renderer protocol -------------------------------------------------------------

    def warmup(self, progress: ProgressFn | None = None) -> None:
        """Build the caches the first frame needs, then render once."""
        if progress:
            progress(0.0, "preparing the preview renderer")
        self.apply(self._controls)
        self.render()
        if progress:
            progress(1.0, "preview renderer ready")

    def apply(self, controls: FrameControls) -> None:
        """Take the controls of the next frame (validated; the renderer keeps a reference)."""
        controls.validate()
        for bc in controls.blocks:
            if not 0 <= bc.feature_id < SAE_N_FEATURES:
                raise ValueError(f"feature id must be in [0, {SAE_N_FEATURES - 1}], got {bc.feature_id}")
        self._controls = controls

    def render(self) -> np.ndarray:
        if self._closed:
            raise RuntimeError("the preview renderer was closed")
        t0 = time.perf_counter()
        with self._blas.limit(limits=1, user_api="blas"):
            out = self._render(self._controls)
        self.last_timings_ms = {"render": (time.perf_counter() - t0) * 1000.0}
        return out

    def _render(self, fc: FrameControls) -> np.ndarray:
        img, lum = self._img, self._lum

        # Prompt blend: B's colour wipes in from the right (like the crossfader) as the blend rises.
        edge = fc.prompt_blend * (1.0 + _WIPE_SOFTNESS) - _WIPE_SOFTNESS / 2.0
        wipe = np.clip((self._u - 1.0 + edge) / _WIPE_SOFTNESS + 0.5, 0.0, 1.0)
        col_a, col_b = prompt_color(fc.prompt_a), prompt_color(fc.prompt_b)
        rows = ((col_a[:, None] + (col_b - col_a)[:, None] * wipe) * BACKGROUND_LEVEL).astype(np.float32)  # (3, W)

        # Noise: the circular walk between the two seeds' fields, as luminance texture.
        c, s = np.cos(fc.noise_angle_rad), np.sin(fc.noise_angle_rad)
        np.multiply(self._seed_field(fc.seed_a), NOISE_CONTRAST * c, out=lum)
        lum += self._seed_field(fc.seed_b) * np.float32(NOISE_CONTRAST * s)
        lum += 1.0
        np.multiply(lum[None, :, :], rows[:, None, :], out=img)

        # Blocks, in order: each lays its colour over the image inside its mask, opacity from
        # |strength|; positive strength: the block's colour, textured by its feature's grating;
        # negative strength: hard diagonal stripes of the colour and black.
        alpha, target = self._alpha, self._scratch
        for index, bc in enumerate(fc.blocks):
            level = MAX_OPACITY * float(np.tanh(abs(bc.strength) / STRENGTH_SCALE))
            if level < 1e-3 or not bc.mask.any():
                continue
            np.matmul(self._up_y @ bc.mask.astype(np.float32, copy=False), self._up_x_t, out=alpha)
            alpha *= np.float32(level)
            texture = self._pattern(index, bc.feature_id) if bc.strength > 0 else self._stripes
            for plane, c in zip(img, BLOCK_COLORS_RGB[index]):
                np.multiply(texture, np.float32(c), out=target)
                target -= plane
                target *= alpha
                plane += target

        np.clip(img, 0.0, 255.0, out=img)
        np.copyto(self._planes_u8, img, casting="unsafe")
        out = self._ring[self._ring_index]
        self._ring_index = (self._ring_index + 1) % self.ring_size
        np.stack(tuple(self._planes_u8), axis=-1, out=out)
        self._draw_overlay(out, fc)
        return out

    def features(self) -> dict[str, FeatureInfo]:
        return {block.short_name: FeatureInfo(n_features=SAE_N_FEATURES) for block in BLOCKS}

    def close(self) -> None:
        self._closed = True
        self._seed_fields.clear()
        self._patterns.clear()

    # -- cached fields -----------------------------------------------------------------

    def _seed_field(self, seed: int) -> np.ndarray:
        """A smooth zero-mean, unit-std field for a noise seed (cached)."""
        field = self._seed_fields.get(seed)
        if field is None:
            grid = np.random.default_rng(seed & 0xFFFFFFFFFFFFFFFF).standard_normal((MASK_SIZE, MASK_SIZE))
            field = (self._up_y @ grid.astype(np.float32)) @ self._up_x_t
            field -= field.mean()
            field /= max(float(field.std()), 1e-6)
            self._seed_fields[seed] = field
            if len(self._seed_fields) > _CACHE_ENTRIES:
                self._seed_fields.popitem(last=False)
        else:
            self._seed_fields.move_to_end(seed)
        return field

    def _pattern(self, block_index: int, feature_id: int) -> np.ndarray:
        """The feature's texture in [0.35, 1]: two gratings whose angles and periods come from its id."""
        key = (block_index, feature_id)
        pattern = self._patterns.get(key)
        if pattern is None:
            rng = np.random.default_rng([block_index, feature_id])
            angles = rng.uniform(0.0, np.pi, 2)
            periods = rng.uniform(10.0, 48.0, 2) * max(self.height, self.width) / 512.0
            ys = np.arange(self.height, dtype=np.float32)[:, None]
            xs = np.arange(self.width, dtype=np.float32)[None, :]
            waves = [np.cos((xs * np.cos(a) + ys * np.sin(a)) * (2 * np.pi / p)) for a, p in zip(angles, periods)]
            pattern = (0.675 + 0.1625 * (waves[0] + waves[1])).astype(np.float32)
            self._patterns[key] = pattern
            if len(self._patterns) > _CACHE_ENTRIES:
                self._patterns.popitem(last=False)
        else:
            self._patterns.move_to_end(key)
        return pattern

    # -- overlay -----------------------------------------------------------------------

    def _draw_overlay(self, out: np.ndarray, fc: FrameControls) -> None:
        h, w = out.shape[:2]
        scale = 2 if w >= 320 else 1
        line = (GLYPH_H + 3) * scale
        char = 6 * scale
        # Text sits on darkened panels, so it reads over any picture.
        _shade(out, 0, 6 + (GLYPH_H + 4) * (scale + 1) + line, 0, 10 + 7 * 6 * (scale + 1))
        draw_text(out, "PREVIEW", 6, 6, (255, 255, 255), scale=scale + 1)
        draw_text(out, f"T {fc.media_time_s:7.2f} S", 6 + (GLYPH_H + 4) * (scale + 1), 6, (230, 230, 230), scale)

        # Crossfader: a bar at the bottom with a marker at the blend position.
        bar_y0, bar_y1 = h - 4 * scale - 4, h - 4
        x0, x1 = 6, w - 6
        out[bar_y0:bar_y1, x0:x1] = (30, 30, 30)
        marker = int(round(x0 + fc.prompt_blend * (x1 - x0 - 1)))
        out[bar_y0 - 2 * scale : bar_y1, max(x0, marker - scale) : marker + scale + 1] = (255, 255, 255)
        text_y = bar_y0 - 3 * scale - line
        max_chars = max(4, (w // 2 - 12) // char)
        blocks_y = text_y - len(BLOCKS) * line - 2 * scale
        _shade(out, blocks_y - 3, text_y - 2 * scale, 0, 10 + 23 * char)
        _shade(out, text_y - 3, bar_y0 - 2 * scale, 0, w)
        draw_text(out, f"A: {prompt_text(fc.prompt_a)}"[:max_chars], text_y, 6, tuple(int(v) for v in prompt_color(fc.prompt_a)), scale)
        text_b = f"B: {prompt_text(fc.prompt_b)}"[:max_chars]
        draw_text(out, text_b, text_y, w - 6 - len(text_b) * 6 * scale, tuple(int(v) for v in prompt_color(fc.prompt_b)), scale)

        # Per block: name, feature id, signed strength, in the block's colour.
        for index, (block, bc) in enumerate(zip(BLOCKS, fc.blocks)):
            y = blocks_y + index * line
            color = tuple(int(v) for v in BLOCK_COLORS_RGB[index])
            draw_text(out, f"{block.short_name:8s} #{bc.feature_id:<4d} {bc.strength:+6.1f}", y, 6, color, scale)

        self._draw_noise_dial(out, fc.noise_angle_rad, scale)

    def _draw_noise_dial(self, out: np.ndarray, angle_rad: float, scale: int) -> None:
        """A ring with a needle at the noise angle (0 points right, counter-clockwise positive)."""
        radius = 9 * scale
        cy, cx = 6 + radius, out.shape[1] - 6 - radius
        _shade(out, 0, cy + radius + 5 + GLYPH_H * scale, out.shape[1] - 10 - 29 * scale, out.shape[1])
        ring = np.linspace(0.0, 2 * np.pi, 16 * scale * 4, endpoint=False)
        ys = np.round(cy - radius * np.sin(ring)).astype(int)
        xs = np.round(cx + radius * np.cos(ring)).astype(int)
        out[ys, xs] = (200, 200, 200)
        steps = np.linspace(0.0, radius - 1, radius * 2)
        ys = np.round(cy - steps * np.sin(angle_rad)).astype(int)
        xs = np.round(cx + steps * np.cos(angle_rad)).astype(int)
        for d in range(max(1, scale)):
            out[np.clip(ys + d, 0, out.shape[0] - 1), xs] = (255, 255, 255)
        draw_text(out, "NOISE", cy + radius + 3, out.shape[1] - 6 - 29 * scale, (220, 220, 220), scale)


def _shade(out: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> None:
    """Halve the brightness of a rectangle (clipped to the image), as a backing for text."""
    region = out[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)]
    np.right_shift(region, 1, out=region)
