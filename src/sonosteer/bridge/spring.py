"""Mass-spring-damper: presets by damping ratio, tempo scaling that keeps it, semi-implicit Euler.

F = -k (x - target) - c v, zeta = c / (2 sqrt(k m)). Presets are designed at 120 BPM; at another
tempo k' = k bpm/120 and c' = c sqrt(bpm/120), so the natural frequency scales with sqrt(bpm/120)
and zeta stays the same: a 140 BPM track gets faster motion with the same bounce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DESIGN_BPM = 120.0
MAX_SUBSTEP_S = 0.005
"""Longest integration step; longer frame intervals are split (keeps omega*h small and stable)."""
MAX_SUBSTEPS = 128
KICK_RELAX_S = 0.25
"""Time constant in which the extra damping of a percussion kick relaxes."""


@dataclass(frozen=True)
class SpringPreset:
    """A spring character at 120 BPM: damping ratio and natural frequency (unit mass)."""

    name: str
    zeta: float
    natural_hz: float
    mass: float = 1.0

    @property
    def stiffness(self) -> float:
        return self.mass * (2.0 * math.pi * self.natural_hz) ** 2

    @property
    def damping(self) -> float:
        return 2.0 * self.zeta * math.sqrt(self.stiffness * self.mass)

    def coefficients(self, bpm: float) -> tuple[float, float, float]:
        """(k, c, m) at `bpm`: k' = k bpm/120, c' = c sqrt(bpm/120)."""
        if not bpm > 0:
            raise ValueError(f"tempo must be positive, got {bpm} BPM")
        scale = bpm / DESIGN_BPM
        return self.stiffness * scale, self.damping * math.sqrt(scale), self.mass


SPRING_PRESETS: dict[str, SpringPreset] = {
    "drums": SpringPreset("drums", zeta=0.45, natural_hz=3.0),
    "vocals": SpringPreset("vocals", zeta=0.70, natural_hz=1.6),
    "linear": SpringPreset("linear", zeta=1.0, natural_hz=2.0),
    "ambient": SpringPreset("ambient", zeta=1.25, natural_hz=0.6),
}


def damping_ratio(k: float, c: float, m: float = 1.0) -> float:
    return c / (2.0 * math.sqrt(k * m))


class Spring:
    """One damped spring following a moving target, integrated with semi-implicit Euler.

    `kick(dv, tighten)` injects velocity and temporarily multiplies the damping by (1 + tighten),
    relaxing back in KICK_RELAX_S: how a percussion hit jolts a sustained model.
    """

    __slots__ = ("x", "v", "k_over_m", "c_over_m", "extra_damping")

    def __init__(self, k: float, c: float, m: float = 1.0, x: float = 0.0):
        if k <= 0 or c < 0 or m <= 0:
            raise ValueError(f"spring needs k > 0, c >= 0, m > 0, got k={k}, c={c}, m={m}")
        self.k_over_m = k / m
        self.c_over_m = c / m
        self.x = x
        self.v = 0.0
        self.extra_damping = 0.0

    @classmethod
    def from_preset(cls, preset: SpringPreset | str, bpm: float = DESIGN_BPM, x: float = 0.0) -> Spring:
        if isinstance(preset, str):
            try:
                preset = SPRING_PRESETS[preset]
            except KeyError:
                raise KeyError(f"unknown spring preset {preset!r}; presets are {', '.join(SPRING_PRESETS)}") from None
        return cls(*preset.coefficients(bpm), x=x)

    def reset(self, x: float) -> None:
        self.x = x
        self.v = 0.0
        self.extra_damping = 0.0

    def kick(self, dv: float, tighten: float = 0.0) -> None:
        self.v += dv
        self.extra_damping = max(self.extra_damping, tighten)

    def step(self, dt: float, target: float) -> float:
        """Advance by dt seconds towards `target`; returns the new position."""
        if dt <= 0.0:
            return self.x
        n = 1 if dt <= MAX_SUBSTEP_S else min(int(dt / MAX_SUBSTEP_S) + 1, MAX_SUBSTEPS)
        h = dt / n
        k = self.k_over_m
        c = self.c_over_m
        x = self.x
        v = self.v
        if self.extra_damping > 1e-4:
            relax = math.exp(-h / KICK_RELAX_S)
            extra = self.extra_damping
            for _ in range(n):
                v += h * (k * (target - x) - c * (1.0 + extra) * v)
                x += h * v
                extra *= relax
            self.extra_damping = extra
        else:
            for _ in range(n):
                v += h * (k * (target - x) - c * v)
                x += h * v
        self.x = x
        self.v = v
        return x
