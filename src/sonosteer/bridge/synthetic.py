"""A synthetic analysis bundle with known signals: for bridge tests, benchmarks and demos without audio.

The track is a steady 4/4 groove at `tempo_bpm`: drums hit every beat (energy decays from each
hit), the bass is locked to them, the vocal glides from 100 Hz to 1000 Hz (log scale) over the
track and rests in a silent gap, the other stem holds a pad with slow swells. Every stem carries
every core channel, the mix ('global') the global ones too, and the linked pairs their coupling
channels, exactly as `sonosteer.audio.channels` documents them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sonosteer.audio.bundle import AnalysisBundle, BundleWriter, bundle_key, find_bundle, pair_group
from sonosteer.audio.channels import CORE_CHANNELS, GLOBAL_CHANNELS, GLOBAL_STEM, PAIR_CHANNELS

SYNTHETIC_VERSION = "synthetic-1"
VOCAL_GAP_S = (20.0, 24.0)
"""The vocal is silent (-90 dB) in this interval."""
VOCAL_PITCH_HZ = (100.0, 1000.0)

STEM_INFO: dict[str, dict] = {
    "drums": {
        "kind": "separated",
        "parent": None,
        "label": "Drums",
        "classification": {"percussive": 0.9, "melody": 0.05, "harmony": 0.05, "texture": 0.1, "harmonic": 0.1},
    },
    "bass": {
        "kind": "separated",
        "parent": None,
        "label": "Bass",
        "classification": {"percussive": 0.3, "melody": 0.5, "harmony": 0.3, "texture": 0.1, "harmonic": 0.8},
    },
    "vocals": {
        "kind": "separated",
        "parent": None,
        "label": "Vocals",
        "classification": {"percussive": 0.1, "melody": 0.85, "harmony": 0.2, "texture": 0.1, "harmonic": 0.9},
    },
    "other": {
        "kind": "separated",
        "parent": None,
        "label": "Other",
        "classification": {"percussive": 0.2, "melody": 0.3, "harmony": 0.6, "texture": 0.4, "harmonic": 0.8},
    },
    "drums_low": {
        "kind": "virtual",
        "parent": "drums",
        "label": "Kick",
        "classification": {"percussive": 0.95, "harmonic": 0.05},
    },
    "drums_high": {
        "kind": "virtual",
        "parent": "drums",
        "label": "Hats",
        "classification": {"percussive": 0.8, "texture": 0.6, "harmonic": 0.1},
    },
    "other_high": {
        "kind": "virtual",
        "parent": "other",
        "label": "Shimmer",
        "classification": {"percussive": 0.1, "texture": 0.8, "harmonic": 0.6},
    },
    GLOBAL_STEM: {
        "kind": "derived",
        "parent": None,
        "label": "Full mix",
        "classification": {"percussive": 0.5, "melody": 0.3, "harmony": 0.4, "texture": 0.2, "harmonic": 0.6},
    },
}
PAIRS = (
    ("bass", "drums"),
    ("drums", "vocals"),
    ("bass", "vocals"),
    ("other", "vocals"),
    ("drums", "other"),
    ("bass", "other"),
)


def _follow(x: np.ndarray, attack: float, release: float) -> np.ndarray:
    out = []
    state = 0.0
    for v in x.tolist():
        state += (attack if v > state else release) * (v - state)
        out.append(state)
    return np.asarray(out)


def _stem_channels(
    stem: str, t: np.ndarray, beat_s: float, frame_rate_hz: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    n = len(t)
    phase = (t % beat_s) / beat_s
    on_beat = np.zeros(n)
    on_beat[np.round(np.arange(0.0, t[-1], beat_s) * frame_rate_hz).astype(int)] = 1.0
    if stem.startswith("drums"):
        env = np.exp(-phase * (6.0 if stem != "drums_high" else 12.0))
        transient = on_beat
        pitch = np.zeros(n)
        conf = np.zeros(n)
        centroid = {"drums": 2500.0, "drums_low": 90.0, "drums_high": 9000.0}[stem] * np.ones(n)
        perc = 0.85 * np.ones(n)
    elif stem == "bass":
        env = 0.5 + 0.4 * np.exp(-phase * 3.0)
        transient = on_beat
        pitch = 55.0 * 2 ** (np.floor(t / (4 * beat_s)) % 4 / 12.0) * np.ones(n)
        conf = 0.9 * np.ones(n)
        centroid = 200.0 * np.ones(n)
        perc = 0.3 * np.ones(n)
    elif stem == "vocals":
        env = 0.6 + 0.3 * np.sin(2 * np.pi * t / 3.1) ** 2
        lo, hi = VOCAL_PITCH_HZ
        pitch = lo * (hi / lo) ** (t / t[-1])
        conf = 0.95 * np.ones(n)
        gap = (t >= VOCAL_GAP_S[0]) & (t < VOCAL_GAP_S[1])
        env[gap] = 0.0
        pitch = np.where(gap, 0.0, pitch)
        conf[gap] = 0.05
        transient = np.zeros(n)
        transient[np.round(np.arange(0.0, t[-1], 2 * beat_s) * frame_rate_hz).astype(int)] = 1.0
        transient[gap] = 0.0
        centroid = 1500.0 * np.ones(n)
        perc = 0.1 * np.ones(n)
    else:
        swell = 0.5 + 0.45 * np.sin(2 * np.pi * t / 8.0)
        env = swell
        pitch = 220.0 * np.ones(n)
        conf = 0.6 * np.ones(n)
        transient = np.zeros(n)
        centroid = (6000.0 if stem == "other_high" else 900.0) * np.ones(n)
        perc = 0.15 * np.ones(n)
    env = np.clip(env + 0.01 * rng.standard_normal(n), 0.0, 1.0)
    rms_db = np.where(env > 1e-3, 20 * np.log10(np.maximum(env, 1e-6)) - 12.0, -90.0)
    brightness = np.clip(np.log(np.maximum(centroid, 50.0) / 50.0) / np.log(12000.0 / 50.0), 0, 1)
    novelty = np.clip(0.2 + 0.15 * np.sin(2 * np.pi * t / 16.0) + 0.6 * ((t % 16.0) < 0.5), 0, 1)
    layer = np.zeros(n)
    layer[np.round(np.arange(16.0, t[-1], 16.0) * frame_rate_hz).astype(int)] = 1.0
    chroma = np.zeros((n, 12))
    pc = np.where(pitch > 0, np.round(12 * np.log2(np.maximum(pitch, 1.0) / 261.63)) % 12, 0).astype(int)
    chroma[np.arange(n), pc] = 1.0
    chroma[np.arange(n), (pc + 7) % 12] += 0.5
    pitch_norm = np.clip(np.log2(np.maximum(pitch, 1e-3) / 80.0) / np.log2(2000.0 / 80.0), 0, 1)
    # Held through unvoiced frames, as the channel documents: index of the last voiced frame.
    last_voiced = np.maximum.accumulate(np.where(pitch > 0, np.arange(n), 0))
    held = pitch_norm[last_voiced]
    return {
        "rms_db": rms_db,
        "envelope": env,
        "energy_smooth": _follow(env, 0.5, 0.05),
        "flash": _follow(env, 0.9, 0.3),
        "sustain": _follow(env, 0.3, 0.03),
        "flux": np.clip(np.abs(np.diff(env, prepend=env[0])) * 10.0, 0, 1),
        "transient": transient,
        "centroid_hz": centroid,
        "brightness": brightness,
        "flatness": np.full(n, 0.8 if stem.startswith("drums") else 0.1),
        "percussive_ratio": perc,
        "roughness": 0.2 + 0.1 * np.sin(2 * np.pi * t / 5.0),
        "tonal_distance": np.clip(0.3 + 0.3 * np.sin(2 * np.pi * t / 30.0), 0, 1),
        "chroma": chroma / chroma.max(axis=1, keepdims=True),
        "pitch_hz": pitch,
        "pitch_confidence": conf,
        "pitch_normalized": held,
        "novelty_short": novelty,
        "novelty_phrase": novelty,
        "novelty_section": novelty,
        "layer_entry": layer,
    }


def write_synthetic_bundle(
    cache_root: Path | str,
    duration_s: float = 60.0,
    frame_rate_hz: float = 100.0,
    tempo_bpm: float = 120.0,
    seed: int = 0,
) -> AnalysisBundle:
    """Write (or find, if already written) the synthetic bundle under `cache_root`; returns it loaded."""
    digest = f"{int(duration_s * 1000):012x}{int(frame_rate_hz * 1000):012x}{int(tempo_bpm * 1000):012x}{seed:012x}"
    key = bundle_key(digest, SYNTHETIC_VERSION)
    found = find_bundle(Path(cache_root), key)
    if found is not None:
        return found
    n = int(round(duration_s * frame_rate_hz))
    t = np.arange(n) / frame_rate_hz
    beat_s = 60.0 / tempo_bpm
    rng = np.random.default_rng(seed)
    with BundleWriter(Path(cache_root), key, n_frames=n, frame_rate_hz=frame_rate_hz) as w:
        stems = {}
        for stem in STEM_INFO:
            channels = _stem_channels(stem, t, beat_s, frame_rate_hz, rng)
            stems[stem] = channels
            for name, spec in CORE_CHANNELS.items():
                w.add(stem, name, channels[name], spec)
        w.add(
            GLOBAL_STEM, "tension", np.clip(0.5 + 0.4 * np.sin(2 * np.pi * t / 20.0), 0, 1), GLOBAL_CHANNELS["tension"]
        )
        w.add(GLOBAL_STEM, "beat_phase", (t % beat_s) / beat_s, GLOBAL_CHANNELS["beat_phase"])
        for a, b in PAIRS:
            ea, eb = stems[a]["energy_smooth"], stems[b]["energy_smooth"]
            locked = 0.9 if {a, b} == {"bass", "drums"} else 0.3
            lock = np.clip(locked + 0.05 * np.sin(2 * np.pi * t / 7.0), 0, 1)
            w.add(pair_group(a, b), "lock_index", lock, PAIR_CHANNELS["lock_index"])
            w.add(pair_group(a, b), "plv", lock, PAIR_CHANNELS["plv"])
            w.add(pair_group(a, b), "call_response", np.clip(np.abs(ea - eb), 0, 1), PAIR_CHANNELS["call_response"])
        beats = np.arange(0.0, duration_s, beat_s)
        return w.commit(
            {
                "duration_s": duration_s,
                "source": {"name": "synthetic groove", "generator": SYNTHETIC_VERSION},
                "tempo_bpm": tempo_bpm,
                "beats_s": beats.tolist(),
                "downbeats_s": beats[::4].tolist(),
                "stems": STEM_INFO,
            }
        )
