"""Per-stem classification from its channels: how percussive, melodic, harmonic or textural it is.

Confidences in [0, 1], each from a documented feature (not a trained model):
- percussive: energy-weighted HPSS percussive ratio (0.75) and onset density (0.25, 4/s = 1);
- harmonic: 1 - the energy-weighted percussive ratio;
- melody: share of active frames with a confident pitch;
- harmony: how many pitch classes sound together (chroma bins > 0.5; 1 -> 0, 4+ -> 1), times harmonic;
- texture: spectral flatness (noise-likeness) of active frames, doubled and clipped, times (1 - melody).
"""

from __future__ import annotations

import numpy as np


def classify(rms_db: np.ndarray, percussive_ratio: np.ndarray, energy: np.ndarray, transient: np.ndarray,
             pitch_confidence: np.ndarray, chroma: np.ndarray, flatness: np.ndarray, frame_rate_hz: float,
             harmonic_features: bool) -> dict[str, float]:
    active = rms_db > -50.0
    weight = energy * active
    ratio = float(np.sum(percussive_ratio * weight) / np.sum(weight)) if np.sum(weight) > 0 else 0.0
    active_s = max(active.sum() / frame_rate_hz, 1e-9)
    density = float(transient[active].sum() / active_s) if active.any() else 0.0
    percussive = 0.75 * ratio + 0.25 * min(1.0, density / 4.0)
    harmonic = 1.0 - ratio
    if active.any() and harmonic_features:
        melody = float(np.mean(pitch_confidence[active] >= 0.5))
        voices = (chroma[active] > 0.5).sum(axis=1)
        harmony = float(np.clip((np.mean(voices) - 1.0) / 3.0, 0.0, 1.0)) * harmonic
    else:
        melody, harmony = 0.0, 0.0
    texture = float(np.clip(2.0 * np.mean(flatness[active]), 0.0, 1.0)) * (1.0 - melody) if active.any() else 0.0
    out = {"percussive": percussive, "melody": melody, "harmony": harmony, "texture": texture, "harmonic": harmonic}
    return {k: round(float(np.clip(v, 0.0, 1.0)), 4) for k, v in out.items()} | {"percussive_ratio": round(ratio, 4)}
