"""The channel vocabulary of the analysis bundle: names, units, ranges and meaning.

The bridge relies on these names. Every link target ("stem") provides the CORE channels, so the
bridge can treat stems, virtual sub-bands, HPSS components and derived signals uniformly.
Intensity-like channels are normalised to [0, 1] per stem (by a high percentile of that stem);
absolute level for gating lives in `rms_db`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChannelSpec:
    """Documentation of one channel: unit, nominal range and meaning; width > 1 for vector channels."""

    unit: str
    lo: float
    hi: float
    description: str
    width: int = 1


CORE_CHANNELS: dict[str, ChannelSpec] = {
    "rms_db": ChannelSpec("dBFS", -120.0, 6.0, "frame RMS level of the stem, absolute"),
    "envelope": ChannelSpec("norm", 0.0, 1.0, "raw RMS envelope, unsmoothed"),
    "energy_smooth": ChannelSpec("norm", 0.0, 1.0, "asymmetric envelope follower with the stem's attack/release preset"),
    "flash": ChannelSpec("norm", 0.0, 1.0, "fast envelope layer (1-5 ms attack, 20-80 ms release): the pop"),
    "sustain": ChannelSpec("norm", 0.0, 1.0, "slow envelope layer (10-30 ms attack, 100-250 ms release): the glow"),
    "flux": ChannelSpec("norm", 0.0, 1.0, "spectral flux (positive spectral change rate)"),
    "transient": ChannelSpec("bool", 0.0, 1.0, "1 on frames where an onset peak was detected by adaptive threshold"),
    "centroid_hz": ChannelSpec("Hz", 0.0, 24000.0, "spectral centroid"),
    "brightness": ChannelSpec("norm", 0.0, 1.0, "spectral centroid on a log scale, 0 = 50 Hz, 1 = 12 kHz"),
    "flatness": ChannelSpec("norm", 0.0, 1.0, "spectral flatness: 0 tonal, 1 noise-like"),
    "percussive_ratio": ChannelSpec("ratio", 0.0, 1.0, "HPSS percussive energy / total energy"),
    "roughness": ChannelSpec("norm", 0.0, 1.0, "Sethares/Plomp-Levelt sensory dissonance of spectral peaks"),
    "tonal_distance": ChannelSpec("norm", 0.0, 1.0, "Jensen-Shannon divergence (base 2) of frame chroma vs track mean"),
    "chroma": ChannelSpec("norm", 0.0, 1.0, "12-bin pitch-class profile, C first, max-normalised per frame", width=12),
    "pitch_hz": ChannelSpec("Hz", 0.0, 4200.0, "fundamental frequency, 0 where unvoiced"),
    "pitch_confidence": ChannelSpec("prob", 0.0, 1.0, "confidence of pitch_hz"),
    "pitch_normalized": ChannelSpec("norm", 0.0, 1.0, "log2(pitch_hz/80)/log2(2000/80), clipped; held through unvoiced frames"),
    "novelty_short": ChannelSpec("norm", 0.0, 1.0, "novelty at ~0.5 s (BPM-scaled): transients, fills"),
    "novelty_phrase": ChannelSpec("norm", 0.0, 1.0, "novelty at ~4 s (BPM-scaled): phrase boundaries"),
    "novelty_section": ChannelSpec("norm", 0.0, 1.0, "novelty at ~16 s (BPM-scaled): sections, drops"),
    "layer_entry": ChannelSpec("bool", 0.0, 1.0, "1 on frames where a new layer enters (debounced 500 ms)"),
}

PAIR_CHANNELS: dict[str, ChannelSpec] = {
    "plv": ChannelSpec("norm", 0.0, 1.0, "phase locking value of the two envelopes' Hilbert phases, sliding window"),
    "lock_index": ChannelSpec("norm", 0.0, 1.0, "0.40 envelope correlation + 0.35 PLV + 0.25 onset synchrony"),
    "call_response": ChannelSpec("norm", 0.0, 1.0, "smoothed XOR of the two activity masks"),
}

GLOBAL_CHANNELS: dict[str, ChannelSpec] = {
    "tension": ChannelSpec("norm", 0.0, 1.0, "harmonic tension of the mix: roughness and tonal distance combined"),
    "beat_phase": ChannelSpec("norm", 0.0, 1.0, "position inside the current beat, 0 on the beat"),
    # Added by the analysis (schema stays 1: new channels only).
    "bar_phase": ChannelSpec("norm", 0.0, 1.0, "position inside the current bar, 0 on the downbeat"),
}

SEPARATED_STEMS = ("bass", "drums", "vocals", "other")
VIRTUAL_STEMS = ("drums_low", "drums_mid", "drums_high", "other_mid", "other_high")
GLOBAL_STEM = "global"
"""The full mix; carries CORE_CHANNELS plus GLOBAL_CHANNELS."""

# Added by the analysis (all carry CORE_CHANNELS; see audio/stems.py for parents and labels):
HPSS_STEMS = (
    "bass_harmonic", "drums_percussive", "drums_harmonic", "vocals_harmonic",
    "other_harmonic", "other_percussive", "global_harmonic", "global_percussive",
)
"""Median-filter HPSS parts of a separated stem or of the mix (manifest kind 'hpss')."""
TENSION_STEM = "tension"
"""Derived link target: its envelope/energy channels follow the tension curve, pitch_normalized = tension."""
COUPLED_STEMS = SEPARATED_STEMS + VIRTUAL_STEMS
"""PAIR_CHANNELS exist for every pair of these 9 stems (36 pairs), under pair_group(a, b)."""
# Percussive stems (>70 % percussive energy) carry zeros in pitch, chroma, roughness and
# tonal_distance (manifest: stems[s].harmonic_features = false). Derived stems inherit pitch from
# their parent (stems[s].pitch_from); global carries the vocals/lead pitch.


def pair_key(a: str, b: str) -> str:
    """Canonical key of a stem pair for coupling channels (order-independent)."""
    x, y = sorted((a, b))
    return f"{x}+{y}"
