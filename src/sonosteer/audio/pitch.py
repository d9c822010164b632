"""Pitch tracking: PESTO (vocals, bass), Basic Pitch (other, polyphonic), librosa pYIN as fallback.

Each tracker maps mono audio to (pitch_hz, confidence) sampled at `frame_times_s`; pitch is 0
where the tracker has nothing. The neural models ship inside their PyPI packages, so they run
offline; a tracker that cannot load falls back to pYIN and says so in the manifest.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
from dataclasses import dataclass, field

import numpy as np

PITCH_LO_HZ = 80.0
PITCH_HI_HZ = 2000.0
VOICED_CONFIDENCE = 0.5


def normalize_pitch(pitch_hz: np.ndarray, confidence: np.ndarray, threshold: float = VOICED_CONFIDENCE) -> np.ndarray:
    """log2(pitch/80)/log2(2000/80) clipped to [0, 1], held through unvoiced frames (0 before any)."""
    voiced = (pitch_hz > 0) & (confidence >= threshold)
    norm = np.clip(np.log2(np.maximum(pitch_hz, 1e-6) / PITCH_LO_HZ) / np.log2(PITCH_HI_HZ / PITCH_LO_HZ), 0.0, 1.0)
    idx = np.where(voiced, np.arange(len(norm)), -1)
    np.maximum.accumulate(idx, out=idx)
    return np.where(idx >= 0, norm[np.maximum(idx, 0)], 0.0).astype(np.float32)


def _resample_track(times_s: np.ndarray, pitch_hz: np.ndarray, conf: np.ndarray, frame_times_s: np.ndarray):
    """Nearest-frame resampling (pitch must not be interpolated across unvoiced gaps)."""
    if len(times_s) == 0:
        return np.zeros_like(frame_times_s, dtype=np.float32), np.zeros_like(frame_times_s, dtype=np.float32)
    idx = np.clip(np.searchsorted(times_s, frame_times_s), 1, len(times_s) - 1)
    left_closer = (frame_times_s - times_s[idx - 1]) < (times_s[idx] - frame_times_s)
    idx = np.where(left_closer, idx - 1, idx)
    if len(times_s) == 1:
        idx = np.zeros_like(idx)
    return pitch_hz[idx].astype(np.float32), conf[idx].astype(np.float32)


def import_pesto():
    """Import PESTO without torchaudio: pesto/core.py imports it only to read files, which we never ask.

    PyPI's torchaudio is a CUDA build that fails to load beside CPU torch; a placeholder module
    stands in during the import only, and is removed again so nobody else sees it.
    """
    if "pesto" in sys.modules:
        return sys.modules["pesto"]
    try:
        importlib.import_module("torchaudio")
        placeholder = None
    except (ImportError, OSError):
        placeholder = types.ModuleType("torchaudio")
        sys.modules["torchaudio"] = placeholder
    try:
        return importlib.import_module("pesto")
    finally:
        if placeholder is not None and sys.modules.get("torchaudio") is placeholder:
            del sys.modules["torchaudio"]


@dataclass
class PestoTracker:
    """PESTO (Riou et al. 2023), weights `mir-1k_g7` shipped in pesto-pitch; monophonic."""

    step_ms: float = 50.0
    name: str = "pesto:mir-1k_g7"
    _models: dict = field(default_factory=dict, repr=False)

    def track(self, y: np.ndarray, sample_rate_hz: int, frame_times_s: np.ndarray):
        import torch

        pesto = import_pesto()
        model = self._models.get(sample_rate_hz)
        if model is None:
            model = pesto.load_model("mir-1k_g7", step_size=self.step_ms, sampling_rate=sample_rate_hz)
            self._models[sample_rate_hz] = model
        with torch.inference_mode():
            pitch, conf, _, _ = model(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)), sr=sample_rate_hz, convert_to_freq=True, return_activations=True)
        pitch, conf = pitch.numpy().astype(np.float32), conf.numpy().astype(np.float32)
        times = np.arange(len(pitch)) * self.step_ms / 1000.0
        return _resample_track(times, pitch, conf, frame_times_s)


@dataclass
class BasicPitchTracker:
    """Basic Pitch (Bittner et al. 2022), ONNX model shipped in basic-pitch; polyphonic.

    Reports the strongest pitch contour per frame (its activation as confidence).
    """

    name: str = "basic-pitch:icassp_2022"
    _model: object = field(default=None, repr=False)

    def _load(self):
        if self._model is None:
            previous = logging.root.manager.disable
            logging.disable(logging.WARNING)  # basic_pitch warns about TF/CoreML/TFLite it does not need
            try:
                from basic_pitch import ICASSP_2022_MODEL_PATH
                from basic_pitch.inference import Model
            finally:
                logging.disable(previous)
            self._model = Model(ICASSP_2022_MODEL_PATH)
        return self._model

    def track(self, y: np.ndarray, sample_rate_hz: int, frame_times_s: np.ndarray):
        import soxr

        model = self._load()
        from basic_pitch import constants as bp
        from basic_pitch.inference import unwrap_output, window_audio_file

        x = y if sample_rate_hz == bp.AUDIO_SAMPLE_RATE else soxr.resample(y, sample_rate_hz, bp.AUDIO_SAMPLE_RATE)
        x = np.asarray(x, dtype=np.float32)
        n_overlap = 30
        overlap = n_overlap * bp.FFT_HOP
        padded = np.concatenate([np.zeros(overlap // 2, np.float32), x])
        windows = np.stack([w for w, _ in window_audio_file(padded, bp.AUDIO_N_SAMPLES - overlap)])
        contour = np.concatenate([model.predict(windows[i : i + 16])["contour"] for i in range(0, len(windows), 16)])
        contour = unwrap_output(contour, len(x), n_overlap)
        best = contour.argmax(axis=1)
        conf = contour.max(axis=1)
        # Parabolic interpolation between the 1/3-semitone bins around the peak.
        rows = np.arange(len(best))
        left = contour[rows, np.maximum(best - 1, 0)]
        right = contour[rows, np.minimum(best + 1, contour.shape[1] - 1)]
        denom = left - 2 * conf + right
        offset = np.where(denom < -1e-9, 0.5 * (left - right) / np.where(denom < -1e-9, denom, -1.0), 0.0)
        position = best + np.clip(offset, -0.5, 0.5)
        pitch = bp.ANNOTATIONS_BASE_FREQUENCY * 2.0 ** (position / (12.0 * bp.CONTOURS_BINS_PER_SEMITONE))
        times = np.arange(len(pitch)) / bp.ANNOTATIONS_FPS
        return _resample_track(times, pitch.astype(np.float32), conf.astype(np.float32), frame_times_s)


@dataclass
class PyinTracker:
    """librosa pYIN (Mauch & Dixon 2014): the fallback that needs no model."""

    fmin_hz: float = 40.0
    fmax_hz: float = 2000.0
    name: str = "librosa:pyin"

    def track(self, y: np.ndarray, sample_rate_hz: int, frame_times_s: np.ndarray):
        import librosa

        hop = int(sample_rate_hz * 0.04)
        f0, _, prob = librosa.pyin(y, fmin=self.fmin_hz, fmax=self.fmax_hz, sr=sample_rate_hz, frame_length=2048, hop_length=hop)
        f0 = np.nan_to_num(f0, nan=0.0)
        times = librosa.times_like(f0, sr=sample_rate_hz, hop_length=hop)
        return _resample_track(times, f0.astype(np.float32), np.nan_to_num(prob).astype(np.float32), frame_times_s)


def tracker_for(stem: str, fallback: bool = False):
    """The tracker a separated stem uses: PESTO for vocals and bass, Basic Pitch for other."""
    if fallback:
        return PyinTracker()
    return BasicPitchTracker() if stem == "other" else PestoTracker()
