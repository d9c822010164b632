"""Sensory roughness (Plomp & Levelt 1965, Sethares 1993) of the spectral peaks of each frame.

For partials (f1, a1) < (f2, a2): d = min(a1, a2) * (exp(-3.5 s df) - exp(-5.75 s df)) with
s = 0.24 / (0.0207 f1 + 18.96). Peak amplitudes are normalised per frame, so the value measures
dissonance, not loudness. Peaks are found in one compiled pass per frame; all frames and pairs are
then evaluated at once with NumPy broadcasting.
"""

from __future__ import annotations

import numba
import numpy as np

N_PEAKS = 16


@numba.njit(cache=True, nogil=True)
def _top_peaks(mag_t, freqs_hz, n_peaks, freq_out, amp_out):
    """Per frame (row of mag_t): the n_peaks largest local maxima, parabolically refined in log magnitude."""
    n_frames, n_freq = mag_t.shape
    step = freqs_hz[1] - freqs_hz[0]
    bins = np.empty(n_peaks, np.int64)
    for t in range(n_frames):
        row = mag_t[t]
        amp_out[t, :] = 0.0
        bins[:] = 1
        lowest, floor = 0, 0.0  # the slot holding the smallest amplitude kept so far, and that amplitude
        for b in range(1, n_freq - 1):
            v = row[b]
            if v > floor and v > row[b - 1] and v >= row[b + 1]:
                amp_out[t, lowest] = v
                bins[lowest] = b
                floor = amp_out[t, 0]
                lowest = 0
                for j in range(1, n_peaks):
                    if amp_out[t, j] < floor:
                        floor = amp_out[t, j]
                        lowest = j
        for j in range(n_peaks):
            b = bins[j]
            left = np.log(max(row[b - 1], 1e-12))
            mid = np.log(max(row[b], 1e-12))
            right = np.log(max(row[b + 1], 1e-12))
            denom = left - 2.0 * mid + right
            offset = 0.5 * (left - right) / denom if abs(denom) > 1e-12 else 0.0
            freq_out[t, j] = freqs_hz[b] + min(max(offset, -0.5), 0.5) * step


def spectral_peaks(mag: np.ndarray, freqs_hz: np.ndarray, n_peaks: int = N_PEAKS) -> tuple[np.ndarray, np.ndarray]:
    """The n strongest local maxima per frame: (freq_hz, amplitude), each (frames, n_peaks).

    Frequencies are refined by parabolic interpolation on the log magnitude; frames with fewer
    than n_peaks maxima are padded with zero amplitudes (which add no roughness).
    """
    n_freq, n_frames = mag.shape
    n = max(1, min(n_peaks, n_freq - 2))
    freq = np.zeros((n_frames, n), np.float64)
    amp = np.zeros((n_frames, n), np.float64)
    if n_freq >= 3:
        _top_peaks(np.ascontiguousarray(mag.T, dtype=np.float32), np.asarray(freqs_hz, dtype=np.float64), n, freq, amp)
    return freq, amp


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
