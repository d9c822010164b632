"""Tempo, beats and downbeats.

Default (offline, no model): the tempo is the beat period whose metrical comb scores best on the
onset envelope's autocorrelation: A(tau) + 0.5 A(2 tau) + 0.25 A(4 tau) + 0.5 A(tau / 2)
(the beat, half bar, bar and eighth-note levels must all be periodic, which rejects 2:3 errors)
weighted by a log-normal preference centred on 115 BPM (sigma 0.6 octave) that picks the
metrical level listeners tap, which settles octave ambiguity. librosa's dynamic-programming
tracker (Ellis 2007) then places beats at that tempo; the bar phase is where low-band onsets
(kicks) and harmonic changes concentrate. Beat This! (Foscarin et al. 2024) is used instead
when its package and checkpoint are present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sonosteer.audio.cuda_or_cpu import cuda_or_cpu, default_device
from sonosteer.audio.errors import BackendUnavailable

PRIOR_CENTER_BPM = 115.0
PRIOR_SIGMA_OCTAVES = 0.6
MIN_BPM, MAX_BPM = 60.0, 200.0
DEFAULT_BPM = 120.0
MIN_TRACKABLE_S = 4.0
BEAT_THIS_HOST = "cloud.cp.jku.at"


@dataclass
class BeatResult:
    tempo_bpm: float
    beats_s: np.ndarray
    downbeats_s: np.ndarray
    beats_per_bar: int
    tracker: str
    reliable: bool = True
    candidates: list[tuple[float, float]] = field(default_factory=list)


def _acf_at(ac: np.ndarray, lag: float) -> float:
    i = int(np.floor(lag))
    if lag <= 0 or i + 1 >= len(ac):
        return 0.0
    f = lag - i
    return max(0.0, float((1 - f) * ac[i] + f * ac[i + 1]))


def tempo_salience(onset_env: np.ndarray, frame_rate_hz: float, bpms: np.ndarray) -> np.ndarray:
    """Metrical-comb salience of each candidate tempo, times the log-normal tempo preference."""
    x = np.asarray(onset_env, dtype=np.float64) - np.mean(onset_env)
    n = len(x)
    max_lag = min(n - 1, int(frame_rate_hz * 60.0 / MIN_BPM * 4) + 2)
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(np.abs(spec) ** 2)[: max_lag + 1]
    if ac[0] <= 0:
        return np.zeros(len(bpms))
    ac = ac / ac[0]
    scores = np.empty(len(bpms))
    for j, bpm in enumerate(bpms):
        tau = 60.0 * frame_rate_hz / bpm
        scores[j] = _acf_at(ac, tau) + 0.5 * _acf_at(ac, 2 * tau) + 0.25 * _acf_at(ac, 4 * tau) + 0.5 * _acf_at(ac, tau / 2)
    prior = np.exp(-0.5 * (np.log2(bpms / PRIOR_CENTER_BPM) / PRIOR_SIGMA_OCTAVES) ** 2)
    return scores * prior


def estimate_tempo(onset_env: np.ndarray, frame_rate_hz: float) -> tuple[float, list[tuple[float, float]]]:
    """Global tempo (BPM) and the three best (bpm, score) candidates, best first."""
    bpms = np.arange(MIN_BPM, MAX_BPM, 0.25)
    scores = tempo_salience(onset_env, frame_rate_hz, bpms)
    order = np.argsort(-scores)
    best = float(bpms[order[0]])
    cands: list[tuple[float, float]] = []
    for j in order:
        if all(abs(np.log2(bpms[j] / c)) > 0.05 for c, _ in cands):
            cands.append((float(bpms[j]), float(scores[j])))
        if len(cands) == 3:
            break
    return best, cands


def choose_bar(beat_frames: np.ndarray, low_onset: np.ndarray, chroma: np.ndarray, onset_env: np.ndarray,
               frame_rate_hz: float) -> tuple[int, int]:
    """(beats per bar, index of the first downbeat among beats): 3 or 4 beats, phase by accent."""
    if len(beat_frames) < 8:
        return 4, 0
    idx = np.clip(beat_frames, 0, len(low_onset) - 1)
    w = max(1, int(round(0.05 * frame_rate_hz)))
    kick = np.array([low_onset[max(0, i - w): i + w + 1].max() for i in idx])
    harm = np.zeros(len(idx))
    if chroma is not None and len(chroma) == len(low_onset):
        segs = np.split(chroma, idx[1:])
        means = np.array([s.mean(axis=0) if len(s) else np.zeros(12) for s in segs])
        harm[1:] = np.linalg.norm(np.diff(means, axis=0), axis=1)
    accent = kick / (kick.max() + 1e-9) + harm / (harm.max() + 1e-9)
    # Meter: accent periodicity at 3 vs 4 beats (autocorrelation of the per-beat accent).
    a = accent - accent.mean()
    def acf(lag):
        return float(np.dot(a[:-lag], a[lag:]) / max(1, len(a) - lag)) if len(a) > lag else 0.0
    meter = 3 if acf(3) > 1.5 * max(acf(4), 1e-9) and acf(3) > 0 else 4
    phase_scores = [accent[p::meter].mean() for p in range(meter)]
    return meter, int(np.argmax(phase_scores))


def track_beats_dsp(onset_env: np.ndarray, low_onset: np.ndarray, chroma: np.ndarray, frame_rate_hz: float,
                    hop: int, sample_rate_hz: int) -> BeatResult:
    """The default offline tracker (module docstring)."""
    import librosa

    duration = len(onset_env) / frame_rate_hz
    if duration < MIN_TRACKABLE_S or np.max(onset_env) <= 0:
        beats = np.arange(0.0, duration, 60.0 / DEFAULT_BPM)
        return BeatResult(DEFAULT_BPM, beats, beats[::4], 4, "default-grid (too short or no onsets)", reliable=False)
    tempo, cands = estimate_tempo(onset_env, frame_rate_hz)
    _, beat_frames = librosa.beat.beat_track(
        onset_envelope=onset_env.astype(np.float64), sr=sample_rate_hz, hop_length=hop, bpm=tempo, tightness=400, trim=True
    )
    beat_frames = np.asarray(beat_frames, dtype=np.int64)
    if len(beat_frames) >= 4:
        # Median inter-beat interval over spans of up to 8 beats: finer than one frame.
        span = min(8, len(beat_frames) - 1)
        tempo = float(60.0 * frame_rate_hz * span / np.median(beat_frames[span:] - beat_frames[:-span]))
    meter, first = choose_bar(beat_frames, low_onset, chroma, onset_env, frame_rate_hz)
    beats_s = beat_frames / frame_rate_hz
    return BeatResult(tempo, beats_s, beats_s[first::meter], meter, "dsp:comb-tempo+librosa-dp", candidates=cands)


def beat_this_status() -> str | None:
    """None when Beat This! can run here, else why not."""
    import importlib.util

    from sonosteer.audio.separation import downloads_allowed, torch_hub_checkpoints

    if importlib.util.find_spec("beat_this") is None:
        return "the beat_this package is not installed (pip install 'sonosteer[beat-this]')"
    env_ckpt = os.environ.get("SONOSTEER_BEAT_THIS_CHECKPOINT")
    if env_ckpt and Path(env_ckpt).is_file():
        return None
    if any(torch_hub_checkpoints().glob("*final0*.ckpt")) or downloads_allowed(BEAT_THIS_HOST):
        return None
    return f"the Beat This! checkpoint final0 is not in {torch_hub_checkpoints()} and cannot be downloaded from here"


def track_beats_beat_this(y: np.ndarray, sample_rate_hz: int, duration_s: float) -> BeatResult:
    """Beat This! final0 (no DBN), on CUDA when available (on the CPU when that GPU runs out of memory)."""
    reason = beat_this_status()
    if reason:
        raise BackendUnavailable(reason)
    from beat_this.inference import Audio2Beat

    ckpt = os.environ.get("SONOSTEER_BEAT_THIS_CHECKPOINT") or "final0"
    (beats, downbeats), _ = cuda_or_cpu(
        lambda device: Audio2Beat(checkpoint_path=ckpt, device=device, dbn=False)(y, sample_rate_hz), default_device()
    )
    beats, downbeats = np.asarray(beats, dtype=np.float64), np.asarray(downbeats, dtype=np.float64)
    tempo = 60.0 / float(np.median(np.diff(beats))) if len(beats) > 3 else DEFAULT_BPM
    per_bar = int(round(np.median(np.diff(np.searchsorted(beats, downbeats))))) if len(downbeats) > 2 else 4
    return BeatResult(tempo, beats, downbeats, max(2, per_bar), f"beat_this:{Path(ckpt).stem}", reliable=len(beats) > 3)


def beat_phase(times_s: np.ndarray, beats_s: np.ndarray, period_s: float) -> np.ndarray:
    """Position inside the current beat in [0, 1): 0 on a beat; the grid extends with period_s."""
    if len(beats_s) == 0:
        return ((times_s / period_s) % 1.0).astype(np.float32)
    grid = np.concatenate([
        beats_s[0] - period_s * np.arange(int(beats_s[0] / period_s) + 1, 0, -1),
        beats_s,
        beats_s[-1] + period_s * np.arange(1, int((times_s[-1] - beats_s[-1]) / period_s) + 2),
    ])
    k = np.clip(np.searchsorted(grid, times_s, side="right") - 1, 0, len(grid) - 2)
    phase = (times_s - grid[k]) / (grid[k + 1] - grid[k])
    return np.clip(phase, 0.0, 1.0 - 1e-6).astype(np.float32)


def track_mix(y: np.ndarray, sample_rate_hz: int = 22050) -> BeatResult:
    """The default tracker on a bare mix (no separation): low-band onsets from an LR-4 split at 150 Hz.

    The pipeline feeds the same tracker with the separated kick band instead.
    """
    from sonosteer.audio.crossover import lr4_split
    from sonosteer.audio.features import FrameGrid, spectral_features, stft

    grid = FrameGrid(sample_rate_hz=sample_rate_hz, hop=int(round(sample_rate_hz / 50.0)))
    mix = spectral_features(stft(y, grid), y, grid)
    low, _ = lr4_split(y, 150.0, sample_rate_hz)
    low_flux = spectral_features(stft(low, grid), low, grid, harmonic=False)["flux"]
    return track_beats_dsp(mix["flux"], low_flux, mix["chroma"], grid.frame_rate_hz, grid.hop, sample_rate_hz)
