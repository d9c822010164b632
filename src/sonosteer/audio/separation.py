"""Source separation into bass, drums, vocals, other: Demucs when it can run, else spectral DSP.

The offline separator (`SpectralSeparator`) uses no trained model; it splits the mix's STFT with
soft masks that sum to one, so the four stems always add back up to the mix:
- drums: the percussive part of median-filter HPSS (Fitzgerald 2010);
- bass: the harmonic part below a smooth 200 Hz crossover;
- vocals: the harmonic part above it that does NOT repeat: REPET-SIM (Rafii & Pardo 2012), the
  background of each frame being the median of its most similar frames >= 2 s away. On
  instrumental music this stem holds the lead instrument (the label says so);
- other: the repeating harmonic background above the crossover.
Demucs `htdemucs_ft` is used instead when the `demucs` package and its weights are present (or
downloadable), on CUDA when available; it separates the file's stereo at 44.1 kHz.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sonosteer.audio.cuda_or_cpu import cuda_or_cpu, default_device
from sonosteer.audio.errors import BackendUnavailable
from sonosteer.audio.medians import hpss_masks, median_of_rows

STEM_ORDER = ("bass", "drums", "vocals", "other")
DEMUCS_MODEL = "htdemucs_ft"
# Signatures of the four fine-tuned models in the htdemucs_ft bag (files <sig>-<hash>.th).
DEMUCS_FT_SIGNATURES = ("f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d")
DEMUCS_HOST = "dl.fbaipublicfiles.com"
DEMUCS_RATE_HZ = 44100


class Separator(Protocol):
    name: str
    description: str
    source_rate_hz: int | None
    """Rate of the stereo source the separator wants beside the mono mix (None: the mono mix is enough)."""
    note: str | None
    """What happened while separating that the analysis should mention (a move to the CPU, say), or None."""

    def separate(self, y: np.ndarray, sample_rate_hz: int, source: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Mono float32 mix -> {stem: mono float32 of the same length} for STEM_ORDER.

        source: the same span of the file as (n, 2) stereo at source_rate_hz, for separators that
        ask for it; without it they work from the mono mix.
        """
        ...


@dataclass(frozen=True)
class SpectralSeparator:
    """HPSS + crossover + REPET-SIM masks on one STFT; stems sum to the input."""

    n_fft: int = 2048
    hop: int = 512
    bass_cutoff_hz: float = 200.0
    neighbours: int = 40
    min_distance_s: float = 2.0
    search_radius_s: float = 90.0
    freq_pool: int = 2
    source_rate_hz: int | None = None
    note: str | None = None
    name: str = "spectral"
    description: str = (
        "offline spectral separator: median-filter HPSS (drums), harmonic < 200 Hz (bass), "
        "non-repeating harmonic foreground by REPET-SIM (vocals / lead), repeating background (other)"
    )

    def masks(self, mag: np.ndarray, sample_rate_hz: int) -> dict[str, np.ndarray]:
        """Soft masks per stem on the (freq, frame) magnitude grid; they sum to 1."""
        mask_h, mask_p = hpss_masks(mag, freq_pool=2)
        freqs = np.fft.rfftfreq(self.n_fft, 1.0 / sample_rate_hz)
        low = (1.0 / (1.0 + (freqs / self.bass_cutoff_hz) ** 8)).astype(np.float32)[:, None]
        upper = mag * mask_h * (1.0 - low)
        background = self.repeating_background(upper, sample_rate_hz)
        fg, bg = (upper - background) ** 2, background**2
        total = fg + bg
        lead = np.where(total > 0, fg / np.maximum(total, np.finfo(np.float32).tiny), 0.0).astype(np.float32)
        return {
            "bass": mask_h * low,
            "drums": mask_p,
            "vocals": mask_h * (1.0 - low) * lead,
            "other": mask_h * (1.0 - low) * (1.0 - lead),
        }

    def repeating_background(self, mag: np.ndarray, sample_rate_hz: int) -> np.ndarray:
        """REPET-SIM: per frame, the median of its k most similar (cosine) frames >= min_distance away."""
        n_freq, n_frames = mag.shape
        pool = self.freq_pool
        pooled = mag[: (n_freq // pool) * pool].reshape(n_freq // pool, pool, n_frames).mean(axis=1)
        norms = np.linalg.norm(pooled, axis=0)
        feats = pooled / np.maximum(norms, 1e-9)
        fps = sample_rate_hz / self.hop
        min_gap = int(self.min_distance_s * fps)
        radius = int(self.search_radius_s * fps)
        k = min(self.neighbours, max(1, n_frames - 2 * min_gap - 1))
        pooled_t = np.ascontiguousarray(pooled.T)  # frames, bins: a frame's bins are contiguous
        out_t = np.empty_like(pooled_t)
        frames = np.arange(n_frames)
        for start in range(0, n_frames, 256):
            block = frames[start : start + 256]
            lo, hi = max(0, block[0] - radius), min(n_frames, block[-1] + radius + 1)
            cand = frames[lo:hi]
            sim = feats[:, block].T @ feats[:, lo:hi]
            sim[np.abs(block[:, None] - cand[None, :]) < min_gap] = -np.inf
            if k >= sim.shape[1]:
                out_t[block] = pooled_t[block]
                continue
            nbr = lo + np.argpartition(-sim, k, axis=1)[:, :k]
            out_t[block] = median_of_rows(pooled_t, nbr)
        background = np.repeat(out_t.T, pool, axis=0)
        if background.shape[0] < n_freq:
            background = np.vstack([background, np.repeat(background[-1:], n_freq - background.shape[0], 0)])
        return np.minimum(background, mag)

    def separate(self, y: np.ndarray, sample_rate_hz: int, source: np.ndarray | None = None) -> dict[str, np.ndarray]:
        import librosa

        spec = librosa.stft(y, n_fft=self.n_fft, hop_length=self.hop)
        masks = self.masks(np.abs(spec).astype(np.float32), sample_rate_hz)
        return {
            stem: librosa.istft(spec * masks[stem], hop_length=self.hop, n_fft=self.n_fft, length=len(y)).astype(np.float32)
            for stem in STEM_ORDER
        }


def torch_hub_checkpoints() -> Path:
    """Where torch.hub keeps downloaded weights (TORCH_HOME aware)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints"


def downloads_allowed(host: str, timeout_s: float = 2.0) -> bool:
    """True when offline mode is not requested and `host` answers on port 443 within timeout_s."""
    if os.environ.get("SONOSTEER_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def demucs_installed() -> bool:
    """Whether the optional `demucs` package can be imported (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("demucs") is not None
    except (ImportError, ValueError):
        return False


def demucs_status() -> str | None:
    """None when Demucs htdemucs_ft can run here, else why not and what to do (one line)."""
    if not demucs_installed():
        return "the demucs package is not installed (pip install 'sonosteer[demucs]')"
    folder = torch_hub_checkpoints()
    missing = [sig for sig in DEMUCS_FT_SIGNATURES if not any(folder.glob(f"{sig}-*.th"))]
    if not missing or downloads_allowed(DEMUCS_HOST):
        return None
    return (f"htdemucs_ft weights are missing from {folder} ({', '.join(f'{sig}-*.th' for sig in missing)}) "
            f"and {DEMUCS_HOST} cannot be reached from here: run once where it can (Demucs downloads them), "
            "or copy those files into that folder (TORCH_HOME moves it)")


def demucs_input(audio: np.ndarray, sample_rate_hz: int, model_rate_hz: int = DEMUCS_RATE_HZ) -> np.ndarray:
    """(2, n) float32 at the model's rate from (n,) mono or (n, channels) audio at any rate.

    Stereo stays stereo, mono is duplicated, more channels fold down (decode.to_stereo); the rate
    changes only when it differs (soxr HQ), so a 44.1 kHz source keeps its band up to 22 kHz.
    """
    import soxr

    from sonosteer.audio.decode import to_stereo

    stereo = to_stereo(np.asarray(audio, dtype=np.float32))
    if sample_rate_hz != model_rate_hz:
        stereo = soxr.resample(stereo, sample_rate_hz, model_rate_hz, quality="HQ")
    return np.ascontiguousarray(stereo.T, dtype=np.float32)


class DemucsSeparator:
    """Demucs htdemucs_ft (Rouard et al.), on CUDA when available; needs the optional `demucs` extra.

    It separates the file's own stereo at the model's rate (44.1 kHz), not the mono analysis
    signal, so it keeps the stereo cues and the band above 11 kHz; the stems are then mixed to
    mono and resampled to the analysis rate.
    """

    name = "demucs:htdemucs_ft"
    description = "Demucs htdemucs_ft (hybrid transformer, bag of 4 fine-tuned models) on the stereo source at 44.1 kHz"

    def __init__(self) -> None:
        reason = demucs_status()
        if reason:
            raise BackendUnavailable(reason)
        import torch
        from demucs.pretrained import get_model

        self._torch = torch
        self.device = default_device()
        self.model = get_model(DEMUCS_MODEL)
        self.model.eval()
        self.source_rate_hz = int(self.model.samplerate)
        self.note: str | None = None

    def separate(self, y: np.ndarray, sample_rate_hz: int, source: np.ndarray | None = None) -> dict[str, np.ndarray]:
        import soxr
        from demucs.apply import apply_model

        torch = self._torch
        rate = self.source_rate_hz
        stereo = demucs_input(y, sample_rate_hz, rate) if source is None else demucs_input(source, rate, rate)
        wav = torch.from_numpy(stereo)
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        with torch.inference_mode():
            out = self._apply(apply_model, ((wav - mean) / std)[None])
        out = (out[0] * std + mean).mean(1).cpu().numpy()  # (sources, samples): the analysis is mono
        stems = {}
        for i, name in enumerate(self.model.sources):
            stem = out[i] if sample_rate_hz == rate else soxr.resample(out[i], rate, sample_rate_hz, quality="HQ")
            fitted = np.zeros(len(y), np.float32)
            fitted[: min(len(y), len(stem))] = stem[: len(y)]
            stems[name] = fitted
        return {s: stems[s] for s in STEM_ORDER}

    def _apply(self, apply_model, mix):
        """The model on `mix`; after the GPU runs out of memory once, this and every later chunk run on the CPU."""
        out, device = cuda_or_cpu(
            lambda d: apply_model(self.model, mix, device=d, split=True, overlap=0.25, progress=False), self.device
        )
        if device != self.device:
            self.device = device
            self.note = "Demucs ran out of GPU memory and separated on the CPU from then on (slower, same stems)"
        return out


def choose_separator(preference: str = "auto") -> tuple[Separator, str | None]:
    """The separator to use and, when Demucs was wanted but cannot run, why not.

    preference: 'auto' (Demucs if possible), 'demucs' (raise if not possible), 'spectral'.
    """
    if preference == "spectral":
        return SpectralSeparator(), None
    try:
        return DemucsSeparator(), None
    except BackendUnavailable as exc:
        if preference == "demucs":
            raise
        return SpectralSeparator(), str(exc)
