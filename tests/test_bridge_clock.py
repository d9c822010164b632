"""AudioClock: the PLL locks onto the listener's clock after seeks, under drift, through pause and rate changes."""

from __future__ import annotations

import numpy as np
import pytest

from sonosteer.bridge.clock import AudioClock


class Listener:
    """A simulated browser: its audio clock runs (1 + drift) times as fast as ours, reports are jittery."""

    def __init__(self, drift: float, seed: int = 0):
        self.drift = drift
        self.rng = np.random.default_rng(seed)
        self.origin_wall = 0.0
        self.origin_media = 0.0
        self.rate = 1.0

    def position(self, wall: float) -> float:
        return self.origin_media + (wall - self.origin_wall) * self.rate * (1.0 + self.drift)

    def seek(self, wall: float, media: float) -> None:
        self.origin_wall, self.origin_media = wall, media


def _run(clock: AudioClock, listener: Listener, start: float, seconds: float, period: float = 0.25):
    """Report every `period` s (with 5 ms timing jitter and 1 ms position noise); returns |error| after each report."""
    errors = []
    wall = start
    while wall < start + seconds:
        wall += period + listener.rng.uniform(-0.005, 0.005)
        clock.report(listener.position(wall) + listener.rng.normal(0, 0.001), now=wall)
        probe = wall + 0.1  # between reports, where frames are planned
        errors.append(abs(clock.time(probe) - listener.position(probe)))
    return np.array(errors)


@pytest.mark.parametrize("drift", [0.0, 0.003, -0.008, 0.02])
def test_pll_converges_under_clock_drift(drift):
    clock = AudioClock(now_fn=lambda: 0.0)
    listener = Listener(drift)
    clock.play(0.0, now=0.0)
    errors = _run(clock, listener, 0.0, 60.0)
    assert errors[-40:].max() < 0.004  # locked to within a few ms, noise included
    assert clock.drift == pytest.approx(drift, abs=0.001)  # and it learned the drift
    # Without the loop the error would have grown to |drift| * 60 s.
    assert abs(drift) * 60 < 0.004 or errors[-1] < abs(drift) * 60 / 10


def test_pll_converges_after_a_seek_and_keeps_the_learned_drift():
    clock = AudioClock(now_fn=lambda: 0.0)
    listener = Listener(0.005, seed=1)
    clock.play(0.0, now=0.0)
    _run(clock, listener, 0.0, 40.0)
    learned = clock.drift
    # The listener seeks to 95 s at wall time ~40.2 s; the server hears about it only via reports.
    listener.seek(40.2, 95.0)
    errors = _run(clock, listener, 40.2, 20.0)
    assert errors[0] < 0.01  # the first report snaps the clock (error > snap_s)
    assert errors[4:].max() < 0.004
    assert clock.drift == pytest.approx(learned, abs=0.001)


def test_time_is_continuous_and_monotone_while_locking():
    clock = AudioClock(now_fn=lambda: 0.0)
    listener = Listener(0.01, seed=2)
    clock.play(0.0, now=0.0)
    walls = np.arange(0.0, 30.0, 0.005)
    reports = iter(np.arange(0.25, 30.0, 0.25))
    next_report = next(reports)
    times = []
    for w in walls:
        if w >= next_report:
            clock.report(listener.position(w), now=w)
            next_report = next(reports, 1e9)
        times.append(clock.time(w))
    steps = np.diff(times)[int(0.3 / 0.005) :]  # after the first report, which may snap
    assert steps.min() > 0.0 and steps.max() < 0.005 * 1.061  # slews at most 5 % (+ learned drift), never jumps


def test_pause_play_seek_and_rate():
    clock = AudioClock(now_fn=lambda: 0.0)
    clock.play(10.0, now=0.0)
    assert clock.time(2.0) == pytest.approx(12.0)
    clock.pause(now=2.0)
    assert clock.time(50.0) == pytest.approx(12.0) and not clock.playing
    clock.seek(30.0, now=50.0)
    assert clock.time(60.0) == pytest.approx(30.0)
    clock.play(now=60.0)
    clock.set_rate(2.0, now=61.0)
    assert clock.time(63.0) == pytest.approx(35.0)
    # A report that says the listener paused pauses the clock at the reported position.
    clock.report(40.0, playing=False, now=64.0)
    assert not clock.playing and clock.time(70.0) == pytest.approx(40.0)
    with pytest.raises(ValueError, match="playback rate"):
        clock.set_rate(0.0)
    with pytest.raises(ValueError, match="negative"):
        clock.seek(-1.0)
