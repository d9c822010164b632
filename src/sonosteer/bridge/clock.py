"""AudioClock: the media time the listener hears, kept in step with the browser by a software PLL.

The server cannot read the browser's audio clock; it gets play-position reports (every ~250 ms)
and runs its own clock between them. Each report's phase error steers the clock's rate (never
its value, so time stays continuous and monotone while playing): a proportional term removes a
phase error within about `phase_time_s`, an integral term learns the constant drift between the
two machines' clocks (a type-2 loop: no lasting phase error under constant drift). Errors above
`snap_s` (a seek elsewhere, a stall) snap the clock at once.

Loop, per report with phase error e after interval T: correction = e / phase_time_s and
drift += k_i e T, k_i = 1 / (4 zeta^2 phase_time_s^2); in continuous time the phase error obeys
e'' + e' / phase_time_s + k_i e = 0, a second-order system with damping ratio zeta.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class AudioClock:
    """Media time in seconds as a function of wall time (monotonic seconds from `now_fn`).

    phase_time_s: time constant for pulling out a phase error.
    loop_damping: damping ratio zeta of the phase-locked loop (0.7: fast, small overshoot).
    snap_s: phase errors above this are corrected by jumping, not slewing.
    max_correction: largest relative rate correction (0.05 = 5 % fast or slow).
    """

    now_fn: Callable[[], float] = time.monotonic
    phase_time_s: float = 1.0
    loop_damping: float = 0.7
    snap_s: float = 0.25
    max_correction: float = 0.05
    playing: bool = False
    rate: float = 1.0
    drift: float = field(default=0.0, init=False)
    """Learned relative speed of the listener's audio clock over ours (0.001 = 1 ms/s fast)."""
    _correction: float = field(default=0.0, init=False)
    _anchor_wall: float = field(default=0.0, init=False)
    _anchor_media: float = field(default=0.0, init=False)
    _last_report_wall: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.phase_time_s <= 0 or self.loop_damping <= 0:
            raise ValueError("phase_time_s and loop_damping must be positive")
        self._check_rate(self.rate)
        self._anchor_wall = self.now_fn()

    @staticmethod
    def _check_rate(rate: float) -> None:
        if not 0.0 < rate <= 16.0:
            raise ValueError(f"playback rate must be in (0, 16], got {rate}")

    def _speed(self) -> float:
        return self.rate * (1.0 + self.drift + self._correction) if self.playing else 0.0

    def time(self, now: float | None = None) -> float:
        """The media time at wall time `now` (default: now)."""
        now = self.now_fn() if now is None else now
        return self._anchor_media + (now - self._anchor_wall) * self._speed()

    def _reanchor(self, now: float, media_s: float) -> None:
        self._anchor_wall = now
        self._anchor_media = media_s

    def play(self, position_s: float | None = None, now: float | None = None) -> None:
        now = self.now_fn() if now is None else now
        self._reanchor(now, self.time(now) if position_s is None else float(position_s))
        self.playing = True

    def pause(self, position_s: float | None = None, now: float | None = None) -> None:
        now = self.now_fn() if now is None else now
        self._reanchor(now, self.time(now) if position_s is None else float(position_s))
        self.playing = False
        self._correction = 0.0

    def seek(self, position_s: float, now: float | None = None) -> None:
        """Jump to `position_s`; the learned drift is kept (it belongs to the clocks, not the track)."""
        if position_s < 0:
            raise ValueError(f"cannot seek to a negative time ({position_s} s)")
        now = self.now_fn() if now is None else now
        self._reanchor(now, float(position_s))
        self._correction = 0.0
        self._last_report_wall = None

    def set_rate(self, rate: float, now: float | None = None) -> None:
        self._check_rate(rate)
        now = self.now_fn() if now is None else now
        self._reanchor(now, self.time(now))
        self.rate = float(rate)

    def report(
        self,
        position_s: float,
        playing: bool | None = None,
        rate: float | None = None,
        now: float | None = None,
        latency_s: float = 0.0,
    ) -> float:
        """Feed the listener's reported play position (taken `latency_s` ago); returns the phase error.

        The error is reported minus predicted media time, in seconds (positive: we were behind).
        """
        now = self.now_fn() if now is None else now
        if rate is not None and rate != self.rate:
            self.set_rate(rate, now)
        if playing is not None and playing != self.playing:
            (self.play if playing else self.pause)(position_s + (latency_s * self.rate if playing else 0.0), now)
            self._last_report_wall = now
            return 0.0
        heard_now = position_s + (latency_s * self.rate if self.playing else 0.0)
        error = heard_now - self.time(now)
        if not self.playing:
            self._reanchor(now, heard_now)
            return error
        if abs(error) > self.snap_s or self._last_report_wall is None:
            self._reanchor(now, heard_now)
            self._correction = 0.0
        else:
            interval = min(now - self._last_report_wall, 2.0)
            self._reanchor(now, self.time(now))
            k_i = 1.0 / (4.0 * self.loop_damping**2 * self.phase_time_s**2)
            self.drift += k_i * error / self.rate * interval
            self.drift = max(-self.max_correction, min(self.max_correction, self.drift))
            # Proportional: slew the remaining phase error out over phase_time_s.
            correction = error / (self.rate * self.phase_time_s)
            self._correction = max(-self.max_correction, min(self.max_correction, correction))
        self._last_report_wall = now
        return error
