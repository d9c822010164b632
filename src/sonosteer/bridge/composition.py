"""Noise composition: the circular-walk angle, pre-computed once per track on the channel grid.

noise(angle) = cos(angle) noise_a + sin(angle) noise_b. The angle combines
- beat angles: each beat turns the circle by 2 pi x (the mix's energy at that beat), with a
  cubic ease-in-out centred on the beat (fastest on the beat, still between beats);
- drift angles: tonal distance from the track's home key x pi/2 (home key = no drift);
- beat weight: the percussive share of the mix's energy (HPSS), smoothed over 2 s: percussive
  passages follow the beats, sustained ones the drift.
Modes: pulse = beat angles, continuous = drift angles, auto = their increments mixed by the beat
weight (increments, so a changing weight never spins the noise). The arrays hold the angle at
distance 1; the planner multiplies by the scene's distance (0 = static noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from sonosteer.audio.bundle import AnalysisBundle
from sonosteer.audio.channels import GLOBAL_STEM

DRIFT_MAX_RAD = np.pi / 2
DRIFT_SMOOTH_S = 1.0
BEAT_WEIGHT_SMOOTH_S = 2.0
BEAT_WEIGHT_LOW = 0.2
BEAT_WEIGHT_HIGH = 0.6
"""Percussive share at which the beat weight is 0 and 1 (smoothstep between)."""
MODES = ("pulse", "continuous", "auto")


def ease_in_out_cubic(x: np.ndarray) -> np.ndarray:
    """0 -> 1 on [0, 1], slow at both ends: 4x^3 below 1/2, 1 - (2 - 2x)^3 / 2 above."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x < 0.5, 4.0 * x**3, 1.0 - (2.0 - 2.0 * x) ** 3 / 2.0)


def beat_angles(times_s: np.ndarray, beats_s: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Cumulative beat angle on the grid: 2 pi x energy per beat, eased across a window centred on the beat."""
    times_s = np.asarray(times_s, dtype=np.float64)
    beats = np.unique(np.asarray(beats_s, dtype=np.float64))
    if beats.size == 0:
        return np.zeros_like(times_s)
    gaps = np.diff(beats)
    typical = float(np.median(gaps)) if gaps.size else 0.5
    left_gap = np.concatenate([[typical], gaps])
    right_gap = np.concatenate([gaps, [typical]])
    half = 0.5 * np.minimum(left_gap, right_gap)
    starts = beats - half
    ends = beats + half
    # Energy of each beat: the loudest frame inside its window.
    i0 = np.clip(np.searchsorted(times_s, starts), 0, len(times_s) - 1)
    i1 = np.clip(np.searchsorted(times_s, ends), 1, len(times_s))
    i1 = np.maximum(i1, i0 + 1)
    peak = np.array([energy[a:b].max() for a, b in zip(i0, i1)], dtype=np.float64)
    turn = 2.0 * np.pi * np.clip(peak, 0.0, 1.0)
    before = np.concatenate([[0.0], np.cumsum(turn)[:-1]])
    k = np.searchsorted(starts, times_s, side="right") - 1
    inside = k >= 0
    kk = np.clip(k, 0, len(beats) - 1)
    progress = ease_in_out_cubic((times_s - starts[kk]) / (2.0 * half[kk]))
    return np.where(inside, before[kk] + turn[kk] * progress, 0.0)


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    u = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


@dataclass(frozen=True)
class CompositionTrack:
    """Per-grid-frame angles at distance 1 for each mode, and the beat weight used by auto."""

    pulse: np.ndarray
    continuous: np.ndarray
    auto: np.ndarray
    beat_weight: np.ndarray

    def angles(self, mode: str) -> np.ndarray:
        if mode not in MODES:
            raise ValueError(f"unknown composition mode {mode!r}; expected {', '.join(MODES)}")
        return getattr(self, mode)


def compose_track(
    times_s: np.ndarray,
    frame_rate_hz: float,
    beats_s: np.ndarray,
    energy: np.ndarray,
    tonal_distance: np.ndarray,
    percussive_ratio: np.ndarray,
) -> CompositionTrack:
    """All composition angles from the mix's channels (arrays on the grid) and its beats."""
    energy = np.asarray(energy, dtype=np.float64)
    pulse = beat_angles(times_s, beats_s, energy)
    drift_frames = max(1, int(round(DRIFT_SMOOTH_S * frame_rate_hz)))
    continuous = DRIFT_MAX_RAD * np.clip(
        uniform_filter1d(np.asarray(tonal_distance, dtype=np.float64), drift_frames, mode="nearest"), 0.0, 1.0
    )
    weight_frames = max(1, int(round(BEAT_WEIGHT_SMOOTH_S * frame_rate_hz)))
    share = uniform_filter1d(np.asarray(percussive_ratio, dtype=np.float64), weight_frames, mode="nearest")
    weight = _smoothstep(share, BEAT_WEIGHT_LOW, BEAT_WEIGHT_HIGH)
    d_pulse = np.diff(pulse, prepend=0.0)
    d_cont = np.diff(continuous, prepend=0.0)
    auto = np.cumsum(weight * d_pulse + (1.0 - weight) * d_cont)
    return CompositionTrack(pulse=pulse, continuous=continuous, auto=auto, beat_weight=weight)


def compose_bundle(bundle: AnalysisBundle) -> CompositionTrack:
    """The composition track of a bundle, from its 'global' stem and beat grid."""
    if GLOBAL_STEM not in bundle.stems:
        raise ValueError(
            f"bundle {bundle.key} has no {GLOBAL_STEM!r} stem, which the noise composition needs; "
            "analyse the track again"
        )
    beats = bundle.beats_s
    if beats.size < 2:
        period = 60.0 / bundle.tempo_bpm
        beats = np.arange(0.0, bundle.duration_s + period, period)
    return compose_track(
        bundle.times_s,
        bundle.frame_rate_hz,
        beats,
        bundle.channel(GLOBAL_STEM, "energy_smooth"),
        bundle.channel(GLOBAL_STEM, "tonal_distance"),
        bundle.channel(GLOBAL_STEM, "percussive_ratio"),
    )
