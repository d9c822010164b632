"""One chunk of the analysis: separate a block of the mix, then per stem family its spectral
features, HPSS parts, sub-bands and pitch. Pure functions of arrays, run as worker tasks.

A chunk keeps CHUNK_FRAMES frames (60 s). The separator sees 4 s of context on each side (its
repetition search benefits from it); everything after it sees 1 s, more than any kernel reaches:
STFT windows (46 ms), the HPSS time median (+-0.3 s), the LR-4 crossovers (decayed within
~50 ms) and PESTO's longest CQT kernel (+-0.93 s at 27.5 Hz). Kept frames are therefore the
same as if the whole track were processed at once (separation aside).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sonosteer.audio.channels import GLOBAL_STEM
from sonosteer.audio.crossover import named_bands
from sonosteer.audio.features import FrameGrid, envelope_energy, spectral_features, stft
from sonosteer.audio.stems import HPSS_COMPONENTS
from sonosteer.audio.workers import StageTimes

CHUNK_FRAMES = 3000  # 60 s
SEPARATION_MARGIN_FRAMES = 200  # 4 s
FEATURE_MARGIN_FRAMES = 50  # 1 s
PERCUSSIVE_SKIP = 0.7
PITCHED_STEMS = ("vocals", "bass", "other")
FAMILIES = (GLOBAL_STEM, "bass", "drums", "vocals", "other")
"""Each separated stem (and the mix) with the link targets made from it: HPSS parts, sub-bands."""


@dataclass(frozen=True)
class ChunkPlan:
    """Frames [first_frame, end_frame) are kept; samples are the blocks the separator and the features see."""

    index: int
    first_frame: int
    end_frame: int
    separation_samples: tuple[int, int]
    feature_samples: tuple[int, int]

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.first_frame


def plan_chunks(n_samples: int, n_frames: int, grid: FrameGrid, chunk_frames: int = CHUNK_FRAMES) -> list[ChunkPlan]:
    """The chunks covering n_frames frames of an n_samples signal, with their margins."""
    def block(first: int, end: int, margin: int) -> tuple[int, int]:
        return max(0, first - margin) * grid.hop, min(n_samples, (end + margin) * grid.hop)

    plans = []
    for index, first in enumerate(range(0, n_frames, chunk_frames)):
        end = min(n_frames, first + chunk_frames)
        plans.append(ChunkPlan(index, first, end, block(first, end, SEPARATION_MARGIN_FRAMES),
                               block(first, end, FEATURE_MARGIN_FRAMES)))
    return plans


def separate_chunk(y: np.ndarray, plan: ChunkPlan, separator, grid: FrameGrid,
                   source: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], StageTimes]:
    """The mix and its separated stems on the chunk's feature block.

    source: the whole file as (n, 2) stereo at separator.source_rate_hz, for separators that
    want it (Demucs); the separator gets the span of it that matches its block of `y`.
    """
    times = StageTimes()
    s0, s1 = plan.separation_samples
    f0, f1 = plan.feature_samples
    source_block = None
    if source is not None:
        ratio = separator.source_rate_hz / grid.sample_rate_hz
        source_block = source[round(s0 * ratio): min(len(source), round(s1 * ratio))]
    with times.stage("separation"):
        stems = separator.separate(y[s0:s1], grid.sample_rate_hz, source=source_block)
    signals = {GLOBAL_STEM: y[f0:f1]}
    signals.update({name: np.ascontiguousarray(x[f0 - s0: f1 - s0]) for name, x in stems.items()})
    return signals, times


@dataclass
class StemChunk:
    """Raw frame features of one link target over a chunk's kept frames, plus its envelope-rate RMS."""

    features: dict[str, np.ndarray]
    envelope_rms: np.ndarray


@dataclass
class FamilyChunk:
    """What a family task returns: per link target its StemChunk, the parent's pitch, stage times."""

    parent: str
    stems: dict[str, StemChunk]
    pitch_hz: np.ndarray | None = None
    pitch_confidence: np.ndarray | None = None
    times: StageTimes = field(default_factory=StageTimes)


def _envelope_block(x: np.ndarray, x_start: int, plan: ChunkPlan, grid: FrameGrid) -> np.ndarray:
    """Envelope-rate RMS for the chunk's envelope samples, each centred like the frames it pools into."""
    per, env_hop = grid.env_per_frame, grid.env_hop
    env_lo, env_hi = plan.first_frame * per - per // 2, plan.end_frame * per - per // 2
    out = np.zeros(env_hi - env_lo, np.float32)
    first = max(env_lo, -(-x_start // env_hop))
    last = min(env_hi, (x_start + len(x)) // env_hop)
    if last > first:
        seg = x[first * env_hop - x_start: last * env_hop - x_start]
        out[first - env_lo: last - env_lo] = envelope_energy(seg, env_hop)
    return out


def analyse_family(parent: str, x: np.ndarray, plan: ChunkPlan, grid: FrameGrid, pitch_tracker=None) -> FamilyChunk:
    """Features of `parent`'s block and of its HPSS parts and sub-bands, and the parent's pitch.

    Pitch is skipped (zeros) when the parent is over PERCUSSIVE_SKIP percussive in this chunk or
    no tracker is given; stems other than PITCHED_STEMS carry no pitch.
    """
    import librosa

    times = StageTimes()
    x_start = plan.feature_samples[0]
    core = slice(plan.first_frame - x_start // grid.hop, plan.end_frame - x_start // grid.hop)
    out: dict[str, StemChunk] = {}

    def keep(name: str, feats: dict[str, np.ndarray], signal: np.ndarray) -> None:
        feats.pop("_mask_h", None), feats.pop("_mask_p", None)
        out[name] = StemChunk({k: v[core] for k, v in feats.items()}, _envelope_block(signal, x_start, plan, grid))

    with times.stage("features"):
        spec = stft(x, grid)
        feats = spectral_features(spec, x, grid)
        masks = {"harmonic": feats["_mask_h"], "percussive": feats["_mask_p"]}
        energy = feats["energy"][core]
        ratio = float((feats["percussive_ratio"][core] * energy).sum() / max(energy.sum(), 1e-20))
        keep(parent, feats, x)
        for name, source, part in HPSS_COMPONENTS:
            if source != parent:
                continue
            part_spec = spec * masks[part]
            part_x = librosa.istft(part_spec, hop_length=grid.hop, length=len(x)).astype(np.float32)
            keep(name, spectral_features(part_spec, part_x, grid, harmonic=(part == "harmonic")), part_x)
        del spec, masks
    with times.stage("sub-bands"):
        bands = named_bands(parent, x, grid.sample_rate_hz)
    with times.stage("features"):
        for name, band in bands.items():
            keep(name, spectral_features(stft(band, grid), band, grid), band)
    result = FamilyChunk(parent, out, times=times)
    if parent in PITCHED_STEMS:
        with times.stage("pitch"):
            n = plan.n_frames
            if ratio > PERCUSSIVE_SKIP or pitch_tracker is None:
                result.pitch_hz, result.pitch_confidence = np.zeros(n, np.float32), np.zeros(n, np.float32)
            else:
                frame_times = np.arange(core.start, core.stop) / grid.frame_rate_hz
                result.pitch_hz, result.pitch_confidence = pitch_tracker.track(x, grid.sample_rate_hz, frame_times)
    return result
