"""Auto-config: pick a stem, and the rest of the block follows from what the stem is.

In auto mode a block's physics, intensity source, response layer and mask preset are derived
from the stem's classification and register (and the intensity curve is linear); the
performer's manual values stay stored and come back when the block is switched to manual.
Roles, by the largest of percussive, melody x harmonic, harmony x harmonic, texture x harmonic:

    role        physics preset  intensity
    percussive  drums           energy_smooth, flash layer
    melody      vocals          energy_smooth, sustain layer
    harmony     ambient         energy_smooth, sustain layer
    texture     ambient         flux

Mask: bass stems and low bands -> floor, high bands -> ceiling, melodic stems -> center,
otherwise by the stem's median brightness (< 0.3 floor, > 0.7 ceiling, else fill).
"""

from __future__ import annotations

from typing import Any, Mapping

from sonosteer.bridge.blended import blend_weights
from sonosteer.bridge.settings import BlockSettings, IntensityCurve

ROLES = ("percussive", "melody", "harmony", "texture")
LOW_BRIGHTNESS = 0.3
HIGH_BRIGHTNESS = 0.7

_ROLE_SETTINGS: dict[str, dict[str, Any]] = {
    "percussive": {"preset": "drums", "intensity_source": "energy_smooth", "response_layer": "flash"},
    "melody": {"preset": "vocals", "intensity_source": "energy_smooth", "response_layer": "sustain"},
    "harmony": {"preset": "ambient", "intensity_source": "energy_smooth", "response_layer": "sustain"},
    "texture": {"preset": "ambient", "intensity_source": "flux", "response_layer": "direct"},
}


def stem_role(classification: Mapping[str, float] | None) -> str | None:
    """The dominant role of a stem, or None when it carries no classification."""
    weights = blend_weights(classification)
    if not classification or not any(float(classification.get(r, 0.0) or 0.0) > 0.0 for r in ROLES):
        return None
    return ROLES[max(range(len(ROLES)), key=lambda i: weights[i])]


def register_mask(stem: str, info: Mapping[str, Any], role: str | None, brightness_median: float | None) -> str:
    """The mask preset: bass and low bands floor, high bands ceiling, melodic center, else by brightness."""
    names = (stem, str(info.get("parent") or ""))
    if any(n == "bass" or n.startswith("bass_") or n.endswith("_low") for n in names if n):
        return "floor"
    if any(n.endswith("_high") for n in names if n):
        return "ceiling"
    if role == "melody":
        return "center"
    if brightness_median is not None:
        if brightness_median < LOW_BRIGHTNESS:
            return "floor"
        if brightness_median > HIGH_BRIGHTNESS:
            return "ceiling"
    return "fill"


def auto_settings(stem: str, info: Mapping[str, Any], brightness_median: float | None = None) -> dict[str, Any]:
    """The block fields auto mode derives for `stem` (a partial BlockSettings as a dict)."""
    classification = info.get("classification") or {}
    role = stem_role(classification)
    if role is None:
        derived = {"preset": "linear", "intensity_source": "energy_smooth", "response_layer": "direct"}
    else:
        derived = _ROLE_SETTINGS[role]
    mask = register_mask(stem, info, role, brightness_median)
    return {
        "physics": {"model": "blended", "preset": derived["preset"]},
        "intensity_source": derived["intensity_source"],
        "response_layer": derived["response_layer"],
        "spatial_preset": mask,
    }


def effective_block(
    block: BlockSettings, info: Mapping[str, Any] | None, brightness_median: float | None = None
) -> BlockSettings:
    """The settings a block plays with: itself in manual mode or unlinked, auto-derived values otherwise."""
    if block.mode != "auto" or block.link_target is None or info is None:
        return block
    derived = auto_settings(block.link_target, info, brightness_median)
    spatial = block.spatial.model_copy(update={"mode": "draw", "preset": derived["spatial_preset"]})
    physics = block.physics.model_copy(update=derived["physics"])
    return block.model_copy(
        update={
            "physics": physics,
            "intensity_source": derived["intensity_source"],
            "response_layer": derived["response_layer"],
            "intensity_curve": IntensityCurve(),
            "spatial": spatial,
        }
    )
