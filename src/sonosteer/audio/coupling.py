"""Cross-stem coupling: phase locking, lock index and call-response between two stems' envelopes.

PLV (Lachaux et al. 1999): the envelopes are band-limited to 0.5-8 Hz (the rhythmic range), their
Hilbert phases compared, and |mean(exp(i * dphi))| taken over a sliding window of 4 beats.
Lock index = 0.40 envelope correlation + 0.35 PLV + 0.25 onset synchrony. Call-response is the
XOR of the two activity masks, averaged over a bar: high when exactly one of them plays.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from sonosteer.audio.postprocess import moving_average

PLV_BAND_HZ = (0.5, 8.0)
SYNC_TOLERANCE_S = 0.05


def analytic_phase(envelope: np.ndarray, frame_rate_hz: float) -> np.ndarray:
    """Instantaneous phase of the band-limited envelope (Hilbert transform)."""
    x = np.asarray(envelope, dtype=np.float64)
    if len(x) < 16:
        return np.zeros(len(x))
    hi = min(PLV_BAND_HZ[1], 0.45 * frame_rate_hz)
    sos = signal.butter(2, [PLV_BAND_HZ[0], hi], btype="bandpass", fs=frame_rate_hz, output="sos")
    band = signal.sosfiltfilt(sos, x - x.mean(), padlen=min(len(x) - 1, int(4 * frame_rate_hz)))
    return np.angle(signal.hilbert(band))


def phase_locking_value(phase_a: np.ndarray, phase_b: np.ndarray, window: int) -> np.ndarray:
    """|moving mean of exp(i (phase_a - phase_b))| over `window` frames, in [0, 1]."""
    z = np.exp(1j * (phase_a - phase_b))
    return np.clip(np.abs(moving_average(z.real, window) + 1j * moving_average(z.imag, window)), 0.0, 1.0)


def sliding_correlation(a: np.ndarray, b: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation of a and b over a centred window, clipped to [0, 1]."""
    ma, mb = moving_average(a, window), moving_average(b, window)
    cov = moving_average(a * b, window) - ma * mb
    va = np.maximum(moving_average(a * a, window) - ma**2, 0.0)
    vb = np.maximum(moving_average(b * b, window) - mb**2, 0.0)
    denom = np.sqrt(va * vb)
    return np.clip(np.where(denom > 1e-9, cov / np.maximum(denom, 1e-9), 0.0), 0.0, 1.0)


def onset_synchrony(onsets_a: np.ndarray, onsets_b: np.ndarray, window: int, frame_rate_hz: float) -> np.ndarray:
    """Share of the onsets of either stem that have a partner in the other within 50 ms, over a window."""
    tol = max(1, int(round(SYNC_TOLERANCE_S * frame_rate_hz)))
    kernel = np.ones(2 * tol + 1)
    near_a = np.convolve(onsets_a, kernel, mode="same") > 0
    near_b = np.convolve(onsets_b, kernel, mode="same") > 0
    matched = onsets_a * near_b + onsets_b * near_a
    total = moving_average(onsets_a + onsets_b, window)
    return np.clip(np.where(total > 0, moving_average(matched, window) / np.maximum(total, 1e-9), 0.0), 0.0, 1.0)


def couple(env_a: np.ndarray, env_b: np.ndarray, onsets_a: np.ndarray, onsets_b: np.ndarray,
           active_a: np.ndarray, active_b: np.ndarray, frame_rate_hz: float, beat_s: float) -> dict[str, np.ndarray]:
    """plv, lock_index and call_response of one stem pair (frame arrays, floats in [0, 1])."""
    window = max(3, int(round(4 * beat_s * frame_rate_hz)))
    both = moving_average((active_a & active_b).astype(np.float64), window)
    plv = phase_locking_value(analytic_phase(env_a, frame_rate_hz), analytic_phase(env_b, frame_rate_hz), window) * both
    corr = sliding_correlation(env_a, env_b, window) * both
    sync = onset_synchrony(onsets_a.astype(np.float64), onsets_b.astype(np.float64), window, frame_rate_hz)
    lock = 0.40 * corr + 0.35 * plv + 0.25 * sync
    call = moving_average((active_a ^ active_b).astype(np.float64), window)
    return {
        "plv": plv.astype(np.float32),
        "lock_index": np.clip(lock, 0.0, 1.0).astype(np.float32),
        "call_response": np.clip(call, 0.0, 1.0).astype(np.float32),
    }
