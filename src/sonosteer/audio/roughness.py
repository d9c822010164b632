"""Sensory roughness (Plomp & Levelt 1965, Sethares 1993) of the spectral peaks of each frame.

For partials (f1, a1) < (f2, a2): d = min(a1, a2) * (exp(-3.5 s df) - exp(-5.75 s df)) with
s = 0.24 / (0.0207 f1 + 18.96). Peak amplitudes are normalised per frame, so the value measures
dissonance, not loudness; all frames and pairs are evaluated at once with NumPy broadcasting.
"""

from __future__ import annotations

import numpy as np

N_PEAKS = 16


def spectral_peaks(mag: np.ndarray, freqs_hz: np.ndarray, n_peaks: int = N_PEAKS) -> tuple[np.ndarray, np.ndarray]:
    """The n strongest local maxima per frame: (freq_hz, amplitude), each (frames, n_peaks).

    Frequencies are refined by parabolic interpolation on the log magnitude.
    """
    n_freq, n_frames = mag.shape
    inner = mag[1:-1]
    is_peak = (inner > mag[:-2]) & (inner >= mag[2:])
    masked = np.where(is_peak, inner, 0.0).T  # frames, bins-2
    n = min(n_peaks, masked.shape[1])
    idx = np.argpartition(-masked, n - 1, axis=1)[:, :n]
    amp = np.take_along_axis(masked, idx, axis=1)
    bins = idx + 1
    log_mag = np.log(np.maximum(mag.T, 1e-12))
    left = np.take_along_axis(log_mag, bins - 1, axis=1)
    mid = np.take_along_axis(log_mag, bins, axis=1)
    right = np.take_along_axis(log_mag, np.minimum(bins + 1, n_freq - 1), axis=1)
    denom = left - 2 * mid + right
    offset = np.where(np.abs(denom) > 1e-12, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    step = freqs_hz[1] - freqs_hz[0]
    freq = freqs_hz[bins] + np.clip(offset, -0.5, 0.5) * step
    return freq.astype(np.float64), amp.astype(np.float64)


def sethares_roughness(freq_hz: np.ndarray, amp: np.ndarray) -> np.ndarray:
    """Roughness per frame of partials (frames, n): sum over pairs, amplitudes normalised per frame."""
    total = amp.sum(axis=1, keepdims=True)
    a = np.where(total > 0, amp / np.where(total > 0, total, 1.0), 0.0)
    f1 = np.minimum(freq_hz[:, :, None], freq_hz[:, None, :])
    df = np.abs(freq_hz[:, :, None] - freq_hz[:, None, :])
    s = 0.24 / (0.0207 * f1 + 18.96)
    d = np.minimum(a[:, :, None], a[:, None, :]) * (np.exp(-3.5 * s * df) - np.exp(-5.75 * s * df))
    return 0.5 * d.sum(axis=(1, 2))  # each pair counted twice


def roughness_from_spectrum(mag: np.ndarray, freqs_hz: np.ndarray, n_peaks: int = N_PEAKS) -> np.ndarray:
    """Sethares roughness of each frame (column) of a magnitude spectrogram."""
    freq, amp = spectral_peaks(mag, freqs_hz, n_peaks)
    return sethares_roughness(freq, amp).astype(np.float32)
