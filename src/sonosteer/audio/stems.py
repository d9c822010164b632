"""The link targets of a bundle: which stems exist, what they are made from, and their labels."""

from __future__ import annotations

from dataclasses import dataclass

from sonosteer.audio.channels import COUPLED_STEMS, GLOBAL_STEM, HPSS_STEMS, SEPARATED_STEMS, TENSION_STEM, VIRTUAL_STEMS
from sonosteer.audio.crossover import BAND_LABELS


@dataclass(frozen=True)
class StemSpec:
    """One link target: name, kind (separated/virtual/hpss/derived/global), parent, human label."""

    name: str
    kind: str
    parent: str | None
    label: str


SEPARATED_LABELS = {
    "bass": "bass",
    "drums": "drums",
    "vocals": "vocals (lead melody when instrumental)",
    "other": "other (guitars, keys, pads)",
}

# HPSS components: (stem, source signal, 'harmonic' | 'percussive').
HPSS_COMPONENTS: tuple[tuple[str, str, str], ...] = (
    ("bass_harmonic", "bass", "harmonic"),
    ("drums_percussive", "drums", "percussive"),
    ("drums_harmonic", "drums", "harmonic"),
    ("vocals_harmonic", "vocals", "harmonic"),
    ("other_harmonic", "other", "harmonic"),
    ("other_percussive", "other", "percussive"),
    ("global_harmonic", "global", "harmonic"),
    ("global_percussive", "global", "percussive"),
)

assert tuple(n for n, _, _ in HPSS_COMPONENTS) == HPSS_STEMS
__all__ = ["COUPLED_STEMS", "HPSS_COMPONENTS", "TENSION_STEM", "StemSpec", "all_stems"]


def all_stems() -> list[StemSpec]:
    """Every link target in manifest order (20 in all)."""
    specs = [StemSpec(s, "separated", None, SEPARATED_LABELS[s]) for s in SEPARATED_STEMS]
    specs += [StemSpec(v, "virtual", v.split("_")[0], BAND_LABELS[v]) for v in VIRTUAL_STEMS]
    specs += [StemSpec(n, "hpss", src, f"{src} ({part} part, HPSS)") for n, src, part in HPSS_COMPONENTS]
    specs.append(StemSpec(TENSION_STEM, "derived", GLOBAL_STEM, "harmonic tension (roughness + tonal distance)"))
    specs.append(StemSpec(GLOBAL_STEM, "global", None, "full mix"))
    return specs
