"""Per-frame features of one stem signal: the spectral and level channels before normalisation.

Everything here is a function of a block of audio (a chunk of the track plus margins) and is
local in time, so long files are processed chunk by chunk. Track-level steps (normalisation,
novelty, tonal distance, transients) happen afterwards in `channels_post.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sonosteer.audio.medians import hpss_masks
from sonosteer.audio.roughness import roughness_from_spectrum

N_FFT = 2048
N_MELS = 64
N_TIMBRE = 16
BRIGHTNESS_LO_HZ = 50.0
BRIGHTNESS_HI_HZ = 12000.0


@dataclass(frozen=True)
class FrameGrid:
    """The analysis grid: sample rate, hop (samples per frame) and envelope sub-rate."""

    sample_rate_hz: int = 22050
    hop: int = 441
    env_hop: int = 21

    @property
    def frame_rate_hz(self) -> float:
        return self.sample_rate_hz / self.hop

    @property
    def env_rate_hz(self) -> float:
        return self.sample_rate_hz / self.env_hop

    @property
    def env_per_frame(self) -> int:
        return self.hop // self.env_hop


def stft(x: np.ndarray, grid: FrameGrid) -> np.ndarray:
    import librosa

    return librosa.stft(np.ascontiguousarray(x, dtype=np.float32), n_fft=N_FFT, hop_length=grid.hop)


def spectral_features(spec: np.ndarray, x: np.ndarray, grid: FrameGrid, harmonic: bool = True) -> dict[str, np.ndarray]:
    """Raw frame features of a stem block from its STFT (freq, frames) and waveform.

    Keys: rms, flux, centroid_hz, flatness, percussive_ratio, roughness, chroma (frames, 12),
    timbre (frames, 16 log-mel bands, for novelty), plus the HPSS masks `_mask_h`, `_mask_p`.
    With harmonic=False, roughness and chroma are zeros (a >70 % percussive stem).
    """
    import librosa

    sr = grid.sample_rate_hz
    mag = np.abs(spec).astype(np.float32)
    power = mag**2
    n_frames = mag.shape[1]
    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    rms = librosa.feature.rms(S=mag, frame_length=N_FFT)[0]
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS, fmax=sr / 2)
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    rise = np.maximum(0.0, np.diff(log_mel, axis=1, prepend=log_mel[:, :1]))
    flux = rise.mean(axis=0)
    total = power.sum(axis=0)
    centroid = np.where(total > 0, (freqs[:, None] * power).sum(axis=0) / np.maximum(total, 1e-20), 0.0)
    log_power = np.log(np.maximum(power, 1e-10))
    flatness = np.where(total > 0, np.exp(log_power.mean(axis=0)) / np.maximum(power.mean(axis=0), 1e-10), 1.0)
    mask_h, mask_p = hpss_masks(mag, freq_pool=4)
    perc_energy = (mask_p * power).sum(axis=0)
    percussive_ratio = np.where(total > 1e-12, perc_energy / np.maximum(total, 1e-20), 0.0)
    if harmonic and perc_energy.sum() > 0.7 * max(total.sum(), 1e-20):
        harmonic = False  # a >70 % percussive block: no harmonic features (as the track-level gate)
    if harmonic:
        roughness = roughness_from_spectrum(mag, freqs)
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=N_FFT, norm=np.inf, tuning=0.0).T
    else:
        roughness = np.zeros(n_frames, np.float32)
        chroma = np.zeros((n_frames, 12), np.float32)
    timbre = log_mel.reshape(N_TIMBRE, N_MELS // N_TIMBRE, n_frames).mean(axis=1).T
    silent = total <= 1e-12
    flatness = np.where(silent, 1.0, flatness)
    return {
        "rms": rms.astype(np.float32),
        "flux": flux.astype(np.float32),
        "centroid_hz": centroid.astype(np.float32),
        "flatness": flatness.astype(np.float32),
        "percussive_ratio": percussive_ratio.astype(np.float32),
        "percussive_energy": perc_energy.astype(np.float32),
        "energy": total.astype(np.float32),
        "roughness": roughness.astype(np.float32),
        "chroma": np.nan_to_num(chroma).astype(np.float32),
        "timbre": timbre.astype(np.float32),
        "_mask_h": mask_h,
        "_mask_p": mask_p,
    }


def envelope_energy(x: np.ndarray, env_hop: int) -> np.ndarray:
    """RMS over consecutive blocks of env_hop samples (the input of the envelope followers)."""
    n = len(x) // env_hop
    blocks = np.asarray(x[: n * env_hop], dtype=np.float32).reshape(n, env_hop)
    return np.sqrt((blocks**2).mean(axis=1))


def brightness(centroid_hz: np.ndarray) -> np.ndarray:
    """Centroid on a log scale: 0 at 50 Hz, 1 at 12 kHz."""
    lo, hi = np.log(BRIGHTNESS_LO_HZ), np.log(BRIGHTNESS_HI_HZ)
    return np.clip((np.log(np.maximum(centroid_hz, 1.0)) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
