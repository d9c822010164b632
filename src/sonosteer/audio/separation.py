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
downloadable), on CUDA when available.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from sonosteer.audio.errors import BackendUnavailable
from sonosteer.audio.medians import hpss_masks

STEM_ORDER = ("bass", "drums", "vocals", "other")
DEMUCS_MODEL = "htdemucs_ft"
# Signatures of the four fine-tuned models in the htdemucs_ft bag (files <sig>-<hash>.th).
DEMUCS_FT_SIGNATURES = ("f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d")
DEMUCS_HOST = "dl.fbaipublicfiles.com"


class Separator(Protocol):
    name: str
    description: str

    def separate(self, y: np.ndarray, sample_rate_hz: int) -> dict[str, np.ndarray]:
        """Mono float32 mix -> {stem: mono float32 of the same length} for STEM_ORDER."""
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
        out = np.empty_like(pooled)
        frames = np.arange(n_frames)
        for start in range(0, n_frames, 256):
            block = frames[start : start + 256]
            lo, hi = max(0, block[0] - radius), min(n_frames, block[-1] + radius + 1)
            cand = frames[lo:hi]
            sim = feats[:, block].T @ feats[:, lo:hi]
            sim[np.abs(block[:, None] - cand[None, :]) < min_gap] = -np.inf
            if k >= sim.shape[1]:
                out[:, block] = pooled[:, block]
                continue
            nbr = lo + np.argpartition(-sim, k, axis=1)[:, :k]
            out[:, block] = np.median(pooled[:, nbr], axis=2)
        background = np.repeat(out, pool, axis=0)
        if background.shape[0] < n_freq:
            background = np.vstack([background, np.repeat(background[-1:], n_freq - background.shape[0], 0)])
        return np.minimum(background, mag)

    def separate(self, y: np.ndarray, sample_rate_hz: int) -> dict[str, np.ndarray]:
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


def demucs_status() -> str | None:
    """None when Demucs htdemucs_ft can run here, else why not (one line)."""
    try:
        import importlib.util

        if importlib.util.find_spec("demucs") is None:
            return "the demucs package is not installed (pip install 'sonosteer[demucs]')"
    except (ImportError, ValueError):
        return "the demucs package is not importable"
    folder = torch_hub_checkpoints()
    present = [any(folder.glob(f"{sig}-*.th")) for sig in DEMUCS_FT_SIGNATURES]
    if all(present):
        return None
    if downloads_allowed(DEMUCS_HOST):
        return None
    return f"htdemucs_ft weights are not in {folder} and cannot be downloaded from here"


class DemucsSeparator:
    """Demucs htdemucs_ft (Rouard et al.), on CUDA when available; needs the optional `demucs` extra."""

    name = "demucs:htdemucs_ft"
    description = "Demucs htdemucs_ft (hybrid transformer, bag of 4 fine-tuned models)"

    def __init__(self) -> None:
        reason = demucs_status()
        if reason:
            raise BackendUnavailable(reason)
        import torch
        from demucs.pretrained import get_model

        self._torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = get_model(DEMUCS_MODEL)
        self.model.eval()

    def separate(self, y: np.ndarray, sample_rate_hz: int) -> dict[str, np.ndarray]:
        import soxr
        from demucs.apply import apply_model

        torch = self._torch
        rate = int(self.model.samplerate)
        x = soxr.resample(y, sample_rate_hz, rate) if sample_rate_hz != rate else y
        wav = torch.from_numpy(np.stack([x, x]).astype(np.float32))
        ref = wav.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        with torch.inference_mode():
            out = apply_model(self.model, ((wav - mean) / std)[None], device=self.device, split=True, overlap=0.25, progress=False)
        out = (out[0] * std + mean).mean(1).cpu().numpy()
        stems = {}
        for i, source in enumerate(self.model.sources):
            stem = out[i] if sample_rate_hz == rate else soxr.resample(out[i], rate, sample_rate_hz)
            stems[source] = np.ascontiguousarray(stem[: len(y)], dtype=np.float32)
        return {s: stems[s] for s in STEM_ORDER}


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
