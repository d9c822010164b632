"""Sustained physics models: motion that does not settle while a pad, drone or voice holds.

A spring settles, which is right for a hit and visual death for a held chord. These models keep
moving. Each steps with the same inputs as the spring (dt, the intensity target, the stem's
energy, its pitch, and a percussion impulse from the drums) and returns an intensity. A
percussion impulse injects velocity and briefly tightens the damping: the beat kicks the drone.
"""

from __future__ import annotations

import math

from opensimplex import OpenSimplex

from sonosteer.bridge.spring import DESIGN_BPM, Spring, SpringPreset

PITCH_LOW_HZ = 80.0
PITCH_HIGH_HZ = 2000.0
PITCH_CONFIDENCE_GATE = 0.5
"""Below this pitch confidence (or when unvoiced) the pitch follower holds its position."""
PITCH_SPRING = SpringPreset("pitch", zeta=0.8, natural_hz=2.5)
IMPULSE_VELOCITY = 2.0
"""Velocity (intensity units per second) injected by one full-strength percussion hit."""
IMPULSE_TIGHTEN = 1.5
"""Extra damping (x its normal damping) right after a hit, relaxing in KICK_RELAX_S."""

OSCILLATOR_HZ = (0.3, 0.47)
OSCILLATOR_DEPTH = 0.35
"""Relative modulation of the intensity by the oscillator pair (0.35: +-35 % breathing)."""
OSCILLATOR_COUPLING = 0.4
"""Coupling spring between the two oscillators, relative to the slower one's stiffness, at full energy."""
OSCILLATOR_REGULATION_S = 0.5
"""Time constant in which the pair's energy returns to its level after a kick."""

DRIFT_DEPTH = 0.5
DRIFT_SPEED_MIN = 0.1
DRIFT_SPEED_MAX = 1.0
"""Speed through noise space (noise units per second) at zero and at full energy."""
DRIFT_KICK = 0.35
"""Jump through noise space on a full-strength percussion hit."""
CENTER_TIME_S = 0.25
"""Time constant of the intensity level that the oscillator and drift modulate."""


def pitch_position(pitch_hz: float) -> float:
    """Pitch on a log scale: 0 at 80 Hz, 1 at 2000 Hz, clipped."""
    if pitch_hz <= PITCH_LOW_HZ:
        return 0.0
    if pitch_hz >= PITCH_HIGH_HZ:
        return 1.0
    return math.log(pitch_hz / PITCH_LOW_HZ) / math.log(PITCH_HIGH_HZ / PITCH_LOW_HZ)


class _Center:
    """A one-pole follower of the intensity target: the level a sustained model breathes around."""

    __slots__ = ("value",)

    def __init__(self, value: float = 0.0):
        self.value = value

    def step(self, dt: float, target: float) -> float:
        if dt > 0.0:
            self.value += (target - self.value) * (1.0 - math.exp(-dt / CENTER_TIME_S))
        return self.value


class PitchFollowing:
    """Follows the melody: pitch mapped to [0, 1] on a log scale, smoothed by a spring.

    Unvoiced or low-confidence frames hold the last confident position instead of jumping.
    """

    __slots__ = ("spring", "held")

    def __init__(self, bpm: float = DESIGN_BPM):
        self.spring = Spring.from_preset(PITCH_SPRING, bpm)
        self.held = 0.0

    def target(self, pitch_hz: float, confidence: float) -> float:
        if confidence >= PITCH_CONFIDENCE_GATE and pitch_hz > 0.0:
            self.held = pitch_position(pitch_hz)
        return self.held

    def reset(self, intensity: float, pitch_hz: float, confidence: float) -> None:
        self.spring.reset(self.target(pitch_hz, confidence))

    def step(
        self, dt: float, intensity: float, energy: float, pitch_hz: float, confidence: float, impulse: float
    ) -> float:
        target = self.target(pitch_hz, confidence)
        if impulse > 0.0:
            self.spring.kick(IMPULSE_VELOCITY * impulse, IMPULSE_TIGHTEN * impulse)
        return self.spring.step(dt, target)


class CoupledOscillator:
    """Two oscillators (0.3 Hz and 0.47 Hz) coupled by a spring: a beating, never-settling breath.

    Integrated symplectically (semi-implicit Euler) with the pair's energy regulated to a fixed
    level, so the motion neither dies out nor grows; a kick raises the energy and the regulation
    brings it back (the temporary extra damping). Energy strengthens the coupling; the output is
    the intensity level modulated by +-OSCILLATOR_DEPTH.
    """

    __slots__ = ("x1", "v1", "x2", "v2", "w1sq", "w2sq", "center", "level_energy")

    def __init__(self, phase: float = 0.0):
        w1 = 2.0 * math.pi * OSCILLATOR_HZ[0]
        w2 = 2.0 * math.pi * OSCILLATOR_HZ[1]
        self.w1sq = w1 * w1
        self.w2sq = w2 * w2
        self.x1 = math.cos(phase)
        self.v1 = -w1 * math.sin(phase)
        self.x2 = 0.0
        self.v2 = w2
        self.center = _Center()
        self.level_energy = self._energy(0.0)

    def _energy(self, kappa: float) -> float:
        d = self.x1 - self.x2
        return 0.5 * (
            self.v1 * self.v1
            + self.w1sq * self.x1 * self.x1
            + self.v2 * self.v2
            + self.w2sq * self.x2 * self.x2
            + kappa * d * d
        )

    def reset(self, intensity: float, pitch_hz: float, confidence: float) -> None:
        self.center.value = intensity

    @property
    def mix(self) -> float:
        """The beating signal in about [-1, 1]."""
        return 0.5 * (self.x1 + self.x2)

    def step(
        self, dt: float, intensity: float, energy: float, pitch_hz: float, confidence: float, impulse: float
    ) -> float:
        center = self.center.step(dt, intensity)
        if dt <= 0.0:
            return center * (1.0 + OSCILLATOR_DEPTH * self.mix)
        if impulse > 0.0:
            # Push along the current motion: the swing grows, its phase (the breath) is kept.
            self.v1 += math.copysign(IMPULSE_VELOCITY * impulse * math.sqrt(self.w1sq), self.v1)
            self.v2 += math.copysign(IMPULSE_VELOCITY * impulse * math.sqrt(self.w2sq), self.v2)
        kappa = OSCILLATOR_COUPLING * self.w1sq * min(max(energy, 0.0), 1.0)
        n = max(1, int(dt / 0.02) + 1)
        h = dt / n
        x1, v1, x2, v2 = self.x1, self.v1, self.x2, self.v2
        for _ in range(n):
            v1 += h * (-self.w1sq * x1 - kappa * (x1 - x2))
            v2 += h * (-self.w2sq * x2 - kappa * (x2 - x1))
            x1 += h * v1
            x2 += h * v2
        self.x1, self.v1, self.x2, self.v2 = x1, v1, x2, v2
        e = self._energy(kappa)
        if e > 1e-12:
            # Move the energy towards its level: E <- E (E0/E)^(dt/tau), by scaling the state.
            s = (self.level_energy / e) ** (0.5 * min(1.0, dt / OSCILLATOR_REGULATION_S))
            self.x1 *= s
            self.v1 *= s
            self.x2 *= s
            self.v2 *= s
        else:
            self.x1, self.v2 = 1.0, math.sqrt(self.w2sq)
        return center * (1.0 + OSCILLATOR_DEPTH * self.mix)


class PerlinDrift:
    """Smooth, never-repeating drift: the intensity level modulated by OpenSimplex noise.

    Energy sets the speed through noise space; a percussion hit jumps ahead in it.
    """

    __slots__ = ("noise", "row", "phase", "center")

    def __init__(self, seed: int = 0):
        self.noise = OpenSimplex(seed)
        self.row = 0.5 + 7.3 * seed  # a different line through the noise plane per seed
        self.phase = 0.0
        self.center = _Center()
        self.noise.noise2(0.0, self.row)  # compile / load the numba kernel now, not in the first frame

    def reset(self, intensity: float, pitch_hz: float, confidence: float) -> None:
        self.center.value = intensity

    def step(
        self, dt: float, intensity: float, energy: float, pitch_hz: float, confidence: float, impulse: float
    ) -> float:
        center = self.center.step(dt, intensity)
        if dt > 0.0:
            e = min(max(energy, 0.0), 1.0)
            self.phase += dt * (DRIFT_SPEED_MIN + (DRIFT_SPEED_MAX - DRIFT_SPEED_MIN) * e) + DRIFT_KICK * impulse
        return center * (1.0 + DRIFT_DEPTH * self.noise.noise2(self.phase, self.row))
