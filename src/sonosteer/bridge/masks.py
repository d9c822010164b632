"""Spatial masks on the 16x16 steering grid: presets, drawn masks, pitch-aligned Gaussians.

Row 0 is the top of the image. Masks handed to the engine are read-only shared arrays: the
engine copies them into its buffer.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from sonosteer.blocks import MASK_SIZE

N_PITCH_MASKS = 12
PITCH_SPREAD = 0.25
MASK_PRESETS = ("floor", "ceiling", "center", "fill", "clear")


def _frozen(mask: np.ndarray) -> np.ndarray:
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    mask.setflags(write=False)
    return mask


def preset_mask(name: str) -> np.ndarray:
    """floor: bottom half; ceiling: top half; center: the middle band; fill: all; clear: none."""
    mask = np.zeros((MASK_SIZE, MASK_SIZE), dtype=np.float32)
    half = MASK_SIZE // 2
    if name == "floor":
        mask[half:] = 1.0
    elif name == "ceiling":
        mask[:half] = 1.0
    elif name == "center":
        mask[MASK_SIZE // 4 : MASK_SIZE - MASK_SIZE // 4] = 1.0
    elif name == "fill":
        mask[:] = 1.0
    elif name != "clear":
        raise ValueError(f"unknown mask preset {name!r}; presets are {', '.join(MASK_PRESETS)}")
    return _frozen(mask)


def drawn_mask(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """A drawn mask from nested rows (as stored in the scene), checked for shape and range."""
    mask = np.asarray(rows, dtype=np.float32)
    if mask.shape != (MASK_SIZE, MASK_SIZE):
        raise ValueError(f"a drawn mask must be {MASK_SIZE}x{MASK_SIZE}, got {mask.shape}")
    if not (np.all(mask >= 0.0) and np.all(mask <= 1.0)):
        raise ValueError("drawn mask values must be in [0, 1]")
    return _frozen(mask)


@lru_cache(maxsize=32)
def pitch_masks(spread: float = PITCH_SPREAD, n: int = N_PITCH_MASKS) -> tuple[np.ndarray, ...]:
    """n horizontal Gaussian bands, peak 1, std `spread` image heights; index 0 at the bottom, n-1 at the top.

    Cached: the same (read-only) arrays are returned for the same arguments.
    """
    if not spread > 0:
        raise ValueError(f"pitch mask spread must be positive, got {spread}")
    y = (np.arange(MASK_SIZE) + 0.5) / MASK_SIZE  # row centres, 0 = top, 1 = bottom
    centres = 1.0 - np.arange(n) / (n - 1)
    out = []
    for c in centres:
        column = np.exp(-0.5 * ((y - c) / spread) ** 2)
        out.append(_frozen(np.repeat(column[:, None], MASK_SIZE, axis=1)))
    return tuple(out)


def pitch_mask_index(pitch_normalized: float, n: int = N_PITCH_MASKS) -> int:
    """Index of the pitch-aligned mask for a normalised pitch in [0, 1] (clipped)."""
    i = int(pitch_normalized * (n - 1) + 0.5)
    return 0 if i < 0 else (n - 1 if i > n - 1 else i)
