"""Track-level channel steps that need the whole track: normalisation, transients, tonal distance,
multi-timescale novelty and layer entries. Inputs and outputs are frame arrays on the common grid.
"""

from __future__ import annotations

import numpy as np

NORM_PERCENTILE = 99.0
SILENCE_DB = -60.0


def to_db(rms: np.ndarray) -> np.ndarray:
    """Linear RMS -> dBFS, floored at -120."""
    return np.maximum(20.0 * np.log10(np.maximum(rms, 1e-6)), -120.0).astype(np.float32)


def normalize(x: np.ndarray, reference: float | None = None) -> np.ndarray:
    """x / (its 99th percentile, or `reference`), clipped to [0, 1]; all-zero stays zero."""
    ref = float(np.percentile(x, NORM_PERCENTILE)) if reference is None else reference
    if ref <= 1e-12:
        ref = float(np.max(x)) if np.max(x) > 1e-12 else 1.0
    return np.clip(x / ref, 0.0, 1.0).astype(np.float32)


def moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average (edges use the available samples)."""
    width = max(1, int(width))
    if width == 1:
        return np.asarray(x, dtype=np.float64)
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    n = len(x)
    i = np.arange(n)
    lo = np.clip(i - width // 2, 0, n)
    hi = np.clip(i - width // 2 + width, 0, n)
    return (c[hi] - c[lo]) / np.maximum(hi - lo, 1)


def transients(flux_norm: np.ndarray, frame_rate_hz: float, delta: float = 0.07) -> np.ndarray:
    """1.0 at onset peaks: local maxima above the local mean (+/- 0.2 s) by `delta`, >= 60 ms apart."""
    import librosa

    out = np.zeros(len(flux_norm), np.float32)
    if len(flux_norm) < 3 or flux_norm.max() <= 0:
        return out
    w = max(1, int(round(0.2 * frame_rate_hz)))
    peaks = librosa.util.peak_pick(
        np.asarray(flux_norm, dtype=np.float64), pre_max=2, post_max=2, pre_avg=w, post_avg=w, delta=delta,
        wait=max(1, int(round(0.06 * frame_rate_hz))),
    )
    out[peaks] = 1.0
    return out


def tonal_distance(chroma: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of each frame's chroma vs the track mean."""
    p = chroma / np.maximum(chroma.sum(axis=1, keepdims=True), 1e-12)
    active = chroma.sum(axis=1) > 1e-6
    if not active.any():
        return np.zeros(len(chroma), np.float32)
    q = p[active].mean(axis=0)
    m = 0.5 * (p + q[None, :])

    def kl(a, b):
        return np.where(a > 0, a * np.log2(np.maximum(a, 1e-12) / np.maximum(b, 1e-12)), 0.0).sum(axis=1)

    js = 0.5 * kl(p, m) + 0.5 * kl(q[None, :], m)
    return np.where(active, np.clip(js, 0.0, 1.0), 0.0).astype(np.float32)


def two_window_novelty(features: np.ndarray, half_window: int) -> np.ndarray:
    """Distance between the mean feature vector of the `half_window` frames before and after each frame.

    Foote's checkerboard novelty with a box kernel on a Euclidean embedding, in O(frames * dims).
    """
    n = len(features)
    half_window = max(1, int(half_window))
    c = np.concatenate([np.zeros((1, features.shape[1])), np.cumsum(features, axis=0, dtype=np.float64)])
    i = np.arange(n)
    lo, hi = np.clip(i - half_window, 0, n), np.clip(i + half_window, 0, n)
    before = (c[i] - c[lo]) / np.maximum(i - lo, 1)[:, None]
    after = (c[hi] - c[i]) / np.maximum(hi - i, 1)[:, None]
    valid = (i - lo > 0) & (hi - i > 0)
    return np.where(valid, np.linalg.norm(after - before, axis=1), 0.0)


def novelty_curves(timbre: np.ndarray, chroma: np.ndarray, frame_rate_hz: float, beat_s: float,
                   pool: int = 5) -> dict[str, np.ndarray]:
    """novelty_short/phrase/section at 1, 8 and 32 beats (~0.5, 4, 16 s at 120 BPM), on the full grid."""
    n = len(timbre)
    std = timbre.std(axis=0)
    z = (timbre - timbre.mean(axis=0)) / np.where(std > 1e-6, std, 1.0)
    feats = np.hstack([z / np.sqrt(z.shape[1]), chroma / np.sqrt(12.0)])
    m = (n // pool) * pool
    pooled = feats[:m].reshape(-1, pool, feats.shape[1]).mean(axis=1) if m >= pool else feats
    step = pool if m >= pool else 1
    coarse_t = (np.arange(len(pooled)) * step + (step - 1) / 2.0)
    out = {}
    for name, beats in (("novelty_short", 1), ("novelty_phrase", 8), ("novelty_section", 32)):
        half = max(1, int(round(beats * beat_s * frame_rate_hz / step)))
        nov = two_window_novelty(pooled, half)
        out[name] = normalize(np.interp(np.arange(n), coarse_t, nov))
    return out


def layer_entries(energy_norm: np.ndarray, rms_db: np.ndarray, flux_norm: np.ndarray, flatness: np.ndarray,
                  frame_rate_hz: float, debounce_ms: float = 500.0) -> np.ndarray:
    """1.0 where a new layer enters: activity after >= 1 s of quiet, or a strong flux burst with a
    change of spectral flatness (a new timbre); entries closer than debounce_ms are merged."""
    n = len(energy_norm)
    out = np.zeros(n, np.float32)
    active = (energy_norm > 0.1) & (rms_db > -50.0)
    quiet_frames = int(round(1.0 * frame_rate_hz))
    quiet_run = np.zeros(n, np.int64)
    run = quiet_frames  # the track start counts as quiet
    for i in range(n):
        quiet_run[i] = run
        run = 0 if active[i] else run + 1
    starts = active & (quiet_run >= quiet_frames)
    half = max(1, int(round(0.5 * frame_rate_hz)))
    flat_change = np.abs(moving_average(flatness, half)[np.minimum(np.arange(n) + half, n - 1)]
                         - moving_average(flatness, half)[np.maximum(np.arange(n) - half, 0)])
    bursts = active & (flux_norm > 0.6) & (flat_change > 0.15)
    candidates = np.flatnonzero(starts | bursts)
    gap = int(round(debounce_ms / 1000.0 * frame_rate_hz))
    last = -gap - 1
    for i in candidates:
        if i - last > gap:
            out[i] = 1.0
            last = i
    return out
