"""AudioSampler: every channel the planner needs, sampled at one time in a single vectorised step.

The channels sit side by side in one (n_frames, n_columns) float32 matrix on the bundle's uniform
grid, so sampling them all at time t is one row pair and one multiply-add: linear interpolation
identical to `np.interp(t, times_s, column)` for every column (clamped at both ends). Columns
are bundle channels ("stem/name", "pair:a+b/name") or arrays derived from them (cumulative
transient counts, novelty rise, chroma position), loaded once and cached by name.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from sonosteer.audio.bundle import AnalysisBundle


class AudioSampler:
    """Samples named columns on a uniform grid (t_i = i / frame_rate_hz), clamping outside it."""

    def __init__(self, frame_rate_hz: float, columns: dict[str, np.ndarray]):
        if not frame_rate_hz > 0:
            raise ValueError("frame_rate_hz must be positive")
        if not columns:
            raise ValueError("an AudioSampler needs at least one column")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"all columns must be on the same grid, got lengths {sorted(lengths)}")
        self.frame_rate_hz = float(frame_rate_hz)
        self.names = list(columns)
        self.index = {name: i for i, name in enumerate(self.names)}
        matrix = np.empty((lengths.pop(), len(self.names)), dtype=np.float32)
        for i, values in enumerate(columns.values()):
            if np.ndim(values) != 1:
                raise ValueError(f"column {self.names[i]!r} must be one-dimensional")
            matrix[:, i] = values
        self.matrix = matrix
        self._last = len(matrix) - 1

    def sample(self, t: float) -> list[float]:
        """All columns at time t (seconds), as Python floats in column order."""
        x = t * self.frame_rate_hz
        if x <= 0.0:
            return self.matrix[0].tolist()
        i = int(x)
        if i >= self._last:
            return self.matrix[self._last].tolist()
        lo = self.matrix[i]
        return (lo + (x - i) * (self.matrix[i + 1] - lo)).tolist()


class ColumnSource:
    """Loads bundle channels and derived arrays into RAM once, by column name, for samplers."""

    def __init__(self, bundle: AnalysisBundle):
        self.bundle = bundle
        self._cache: dict[str, np.ndarray] = {}
        self._derived: dict[str, tuple[Callable[[ColumnSource, str], np.ndarray], str]] = {}

    def register_derived(self, channel: str, make: Callable[[ColumnSource, str], np.ndarray], needs: str) -> None:
        """Make "<group>/<channel>" available for every group that has channel `needs`: make(source, group)."""
        self._derived[channel] = (make, needs)

    def add_column(self, name: str, values: np.ndarray) -> None:
        """Make a ready array available under `name` (e.g. a constant or a per-track pre-computation)."""
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (self.bundle.n_frames,):
            raise ValueError(f"column {name!r} has shape {values.shape}, expected ({self.bundle.n_frames},)")
        self._cache[name] = values

    def has(self, name: str) -> bool:
        if name in self._cache:
            return True
        group, channel = name.rsplit("/", 1)
        if self.bundle.has_channel(group, channel):
            return True
        return channel in self._derived and self.bundle.has_channel(group, self._derived[channel][1])

    def get(self, name: str) -> np.ndarray:
        """A float32 column on the bundle grid, loaded or derived on first use."""
        if name not in self._cache:
            group, channel = name.rsplit("/", 1)
            if self.bundle.has_channel(group, channel):
                values = np.asarray(self.bundle.channel(group, channel), dtype=np.float32)
            elif self.has(name):
                values = np.asarray(self._derived[channel][0](self, group), dtype=np.float32)
            else:
                raise KeyError(f"bundle {self.bundle.key} has no channel {name!r}")
            if values.shape != (self.bundle.n_frames,):
                raise ValueError(f"column {name!r} has shape {values.shape}, expected ({self.bundle.n_frames},)")
            self._cache[name] = values
        return self._cache[name]

    def sampler(self, names: Iterable[str]) -> AudioSampler:
        unique = list(dict.fromkeys(names))
        return AudioSampler(self.bundle.frame_rate_hz, {name: self.get(name) for name in unique})
