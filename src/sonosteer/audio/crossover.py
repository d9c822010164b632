"""Linkwitz-Riley LR-4 crossovers, zero phase, that split a stem into virtual sub-bands.

A 2nd-order Butterworth run forward and backward (`sosfiltfilt`) has magnitude |B2|^2, which is
exactly the LR-4 magnitude, and no phase shift. Since |B2_lp|^2 + |B2_hp|^2 = 1 at every
frequency, the low and high bands of one crossover sum back to the input; splitting the high
part again keeps that true for any number of bands. Even padding several time constants long keeps it true at the ends.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

# Crossover frequencies (Hz) per separated stem, and the names of the bands between them
# (lowest first); a None name is a band that is not a link target of its own.
CROSSOVERS_HZ: dict[str, tuple[float, ...]] = {"drums": (150.0, 3000.0), "other": (250.0, 4000.0)}
BAND_NAMES: dict[str, tuple[str | None, ...]] = {
    "drums": ("drums_low", "drums_mid", "drums_high"),
    "other": (None, "other_mid", "other_high"),
}
BAND_LABELS: dict[str, str] = {
    "drums_low": "kick (drums < 150 Hz)",
    "drums_mid": "snare (drums 150 Hz - 3 kHz)",
    "drums_high": "hats (drums > 3 kHz)",
    "other_mid": "guitars / keys (other 250 Hz - 4 kHz)",
    "other_high": "shimmer / air (other > 4 kHz)",
}


def lr4_split(x: np.ndarray, cutoff_hz: float, sample_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-phase LR-4 (low, high) split at cutoff_hz; low + high == x up to float rounding."""
    if not 0 < cutoff_hz < sample_rate_hz / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz outside (0, {sample_rate_hz / 2}) Hz")
    x = np.asarray(x, dtype=np.float64)
    sos_lo = signal.butter(2, cutoff_hz, btype="lowpass", fs=sample_rate_hz, output="sos")
    sos_hi = signal.butter(2, cutoff_hz, btype="highpass", fs=sample_rate_hz, output="sos")
    # Even padding several time constants long: the two transients at the ends cancel exactly.
    padlen = min(len(x) - 1, int(10 * sample_rate_hz / cutoff_hz))
    low = signal.sosfiltfilt(sos_lo, x, padtype="even", padlen=padlen)
    high = signal.sosfiltfilt(sos_hi, x, padtype="even", padlen=padlen)
    return low.astype(np.float32), high.astype(np.float32)


def lr4_bands(x: np.ndarray, cutoffs_hz: tuple[float, ...], sample_rate_hz: float) -> list[np.ndarray]:
    """Bands between ascending cutoffs (len(cutoffs)+1 bands, lowest first) that sum to x."""
    if list(cutoffs_hz) != sorted(cutoffs_hz):
        raise ValueError("cutoffs must ascend")
    bands, rest = [], np.asarray(x, dtype=np.float32)
    for cutoff in cutoffs_hz:
        low, rest = lr4_split(rest, cutoff, sample_rate_hz)
        bands.append(low)
    bands.append(rest)
    return bands


def virtual_stems(stems: dict[str, np.ndarray], sample_rate_hz: float) -> dict[str, np.ndarray]:
    """The named sub-bands (drums_low ... other_high) of the separated stems."""
    out: dict[str, np.ndarray] = {}
    for parent, cutoffs in CROSSOVERS_HZ.items():
        for name, band in zip(BAND_NAMES[parent], lr4_bands(stems[parent], cutoffs, sample_rate_hz)):
            if name is not None:
                out[name] = band
    return out
