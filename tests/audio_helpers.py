"""Loading the real test recordings for the audio tests (mono, 22.05 kHz, loops tiled)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 22050
LOOPS = {"loop_amen_full": 140.0, "loop_breakbeat": 126.0, "loop_compus": 148.0, "loop_mika": 120.0}
AI_CLIPS = {"energetic_electronic_s411": 150.0, "happy_acoustic_s411": 110.0, "tender_acoustic_s411": 90.0}
SECTOID_BPM = 95.0


def load_mono(path: Path, start_s: float = 0.0, duration_s: float | None = None) -> np.ndarray:
    import soundfile as sf
    import soxr

    with sf.SoundFile(str(path)) as f:
        f.seek(int(start_s * f.samplerate))
        frames = -1 if duration_s is None else int(duration_s * f.samplerate)
        x = f.read(frames, dtype="float32", always_2d=True).mean(axis=1)
        rate = f.samplerate
    return soxr.resample(x, rate, SR).astype(np.float32) if rate != SR else x


def tiled_loop(music_dir: Path, name: str, min_s: float = 30.0) -> tuple[np.ndarray, float, float]:
    """(tiled loop, its length in s, bpm); the loop file is an exact number of bars."""
    y = load_mono(music_dir / "drums_cc0" / f"{name}.flac")
    reps = int(np.ceil(min_s * SR / len(y)))
    return np.tile(y, reps), len(y) / SR, LOOPS[name]


def sectoid_mix(music_dir: Path, start_s: float = 0.0, duration_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(full mix = song + guitar, guitar), both scaled by the mix's peak."""
    folder = music_dir / "sectoid_feelings"
    song = load_mono(folder / "song.ogg", start_s, duration_s)
    guitar = load_mono(folder / "guitar.ogg", start_s, duration_s)
    n = min(len(song), len(guitar))
    mix = song[:n] + guitar[:n]
    peak = float(np.abs(mix).max())
    return mix / peak, guitar[:n] / peak


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019)."""
    alpha = np.dot(estimate, reference) / np.dot(reference, reference)
    target = alpha * reference
    noise = estimate - target
    return float(10 * np.log10(np.dot(target, target) / np.dot(noise, noise)))
