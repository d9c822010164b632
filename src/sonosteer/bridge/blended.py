"""BlendedPhysics: the spring and the three sustained models, weighted by the stem's classification.

    spring       = percussive
    pitch_follow = melody  x harmonic
    oscillator   = harmony x harmonic
    drift        = texture x harmonic

(normalised to sum 1). Harmonic models are gated by the harmonic confidence, so a purely
percussive stem routes everything to the spring. A single model is the one-hot special case.
"""

from __future__ import annotations

from typing import Mapping

from sonosteer.bridge.spring import DESIGN_BPM, Spring
from sonosteer.bridge.sustained import CoupledOscillator, PerlinDrift, PitchFollowing

MODEL_NAMES = ("spring", "pitch", "oscillator", "drift")
MIN_WEIGHT = 0.01
"""Models below this weight are not stepped (their share goes to the others)."""


def blend_weights(classification: Mapping[str, float] | None) -> tuple[float, float, float, float]:
    """(spring, pitch, oscillator, drift) weights from a classification, summing to 1.

    Missing confidences count as 0; with nothing to go on the spring takes everything.
    """
    c = classification or {}

    def conf(name: str) -> float:
        return min(max(float(c.get(name, 0.0) or 0.0), 0.0), 1.0)

    harmonic = conf("harmonic")
    raw = (conf("percussive"), conf("melody") * harmonic, conf("harmony") * harmonic, conf("texture") * harmonic)
    kept = [w if w >= MIN_WEIGHT else 0.0 for w in raw]
    total = sum(kept)
    if total <= 0.0:
        return (1.0, 0.0, 0.0, 0.0)
    return tuple(w / total for w in kept)  # type: ignore[return-value]


def model_weights(model: str, classification: Mapping[str, float] | None) -> tuple[float, float, float, float]:
    """Weights for a physics setting: 'blended' by classification, or one model alone."""
    if model == "blended":
        return blend_weights(classification)
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown physics model {model!r}; expected blended or one of {', '.join(MODEL_NAMES)}")
    return tuple(1.0 if name == model else 0.0 for name in MODEL_NAMES)  # type: ignore[return-value]


class BlendedPhysics:
    """Steps the models that carry weight and returns their weighted intensity.

    Inputs per step: dt (s), the intensity target, the stem's energy, pitch (Hz) and pitch
    confidence, and a percussion impulse (0 = none, 1 = one full-strength hit) that only the
    sustained models feel: the spring already follows the stem's own hits.
    """

    __slots__ = ("weights", "spring", "models")

    def __init__(
        self, weights: tuple[float, float, float, float], preset: str = "linear", bpm: float = DESIGN_BPM, seed: int = 0
    ):
        if abs(sum(weights) - 1.0) > 1e-6 or min(weights) < 0.0:
            raise ValueError(f"physics weights must be >= 0 and sum to 1, got {weights}")
        self.weights = weights
        self.spring = Spring.from_preset(preset, bpm) if weights[0] > 0.0 else None
        sustained = []
        if weights[1] > 0.0:
            sustained.append((weights[1], PitchFollowing(bpm)))
        if weights[2] > 0.0:
            sustained.append((weights[2], CoupledOscillator(phase=0.9 * seed)))
        if weights[3] > 0.0:
            sustained.append((weights[3], PerlinDrift(seed)))
        self.models = tuple(sustained)

    def reset(self, intensity: float, pitch_hz: float = 0.0, confidence: float = 0.0) -> None:
        """Put every model at rest on the current input (after a seek: no stored energy, no jump)."""
        if self.spring is not None:
            self.spring.reset(intensity)
        for _, model in self.models:
            model.reset(intensity, pitch_hz, confidence)

    def step(
        self, dt: float, intensity: float, energy: float, pitch_hz: float, confidence: float, impulse: float
    ) -> float:
        out = 0.0
        if self.spring is not None:
            out = self.weights[0] * self.spring.step(dt, intensity)
        for weight, model in self.models:
            out += weight * model.step(dt, intensity, energy, pitch_hz, confidence, impulse)
        return out
