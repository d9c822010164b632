"""The dance model: where a block leans inside its stage, and how far from home.

    position_value = left + position * (right - left)
    output         = home + intensity * (position_value - home)
    strength       = home + prominence * (output - home)

Position (pitch, chroma, brightness, tension, or fixed) picks the point of the stage; intensity
(energy, transients, flux, envelope, after its curve and physics) picks how far the block goes
there from home. Prominence scales that excursion: with the default home 0 this is exactly
strength = output * prominence, and a block whose stem is silent or unranked rests at home.
"""

from __future__ import annotations

CLIP_GAIN = 1.5


def shape_intensity(x: float, kind: str, gamma: float = 1.0) -> float:
    """The intensity curve: linear; gamma (x ** gamma, < 1 lifts quiet passages); clip (1.5 x, capped at 1)."""
    x = 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)
    if kind == "linear":
        return x
    if kind == "gamma":
        return x**gamma
    if kind == "clip":
        y = CLIP_GAIN * x
        return 1.0 if y > 1.0 else y
    raise ValueError(f"unknown intensity curve {kind!r}; expected linear, gamma or clip")


def dance_output(left: float, home: float, right: float, position: float, intensity: float) -> float:
    """The block's output before prominence (see the module docstring)."""
    position_value = left + position * (right - left)
    return home + intensity * (position_value - home)


def dance_strength(home: float, output: float, prominence: float) -> float:
    """The steering strength sent to the engine."""
    return home + prominence * (output - home)
