"""Noise composition: eased beat turns sized by energy, tonal drift, and the beat weight that mixes them."""

from __future__ import annotations

import numpy as np
import pytest

from sonosteer.bridge.composition import beat_angles, compose_track, ease_in_out_cubic

RATE = 100.0


def test_cubic_ease_in_out():
    x = np.linspace(0, 1, 101)
    y = ease_in_out_cubic(x)
    assert y[0] == 0.0 and y[50] == pytest.approx(0.5) and y[-1] == 1.0
    np.testing.assert_allclose(y + y[::-1], 1.0)  # symmetric
    assert np.all(np.diff(y) >= 0)
    assert y[1] == pytest.approx(4e-6) and 1 - y[-2] == pytest.approx(4e-6)  # flat at both ends


def test_each_beat_turns_by_energy_times_two_pi_centred_on_the_beat():
    t = np.arange(0, 10, 1 / RATE)
    beats = np.arange(0.5, 9.6, 0.5)
    loud = beat_angles(t, beats, np.ones_like(t))
    for j, b in enumerate(beats[:-1]):
        at_beat = loud[int(round(b * RATE))]
        assert at_beat == pytest.approx(2 * np.pi * j + np.pi, abs=1e-9)  # halfway through its turn on the beat
        between = loud[int(round((b + 0.25) * RATE))]
        assert between == pytest.approx(2 * np.pi * (j + 1), abs=1e-9)  # whole turns between beats: same noise
    assert np.all(np.diff(loud) >= 0)
    half = beat_angles(t, beats, np.full_like(t, 0.5))
    np.testing.assert_allclose(half, loud / 2)
    assert np.all(beat_angles(t, np.array([]), np.ones_like(t)) == 0.0)


def test_auto_follows_beats_in_percussive_music_and_drift_in_sustained_music():
    t = np.arange(0, 20, 1 / RATE)
    beats = np.arange(0.25, 20, 0.5)
    energy = np.full_like(t, 0.8)
    tonal = np.clip(t / 20, 0, 1)
    drums = compose_track(t, RATE, beats, energy, tonal, np.full_like(t, 0.9))
    pad = compose_track(t, RATE, beats, energy, tonal, np.full_like(t, 0.05))
    np.testing.assert_allclose(drums.auto, drums.pulse, atol=1e-9)
    np.testing.assert_allclose(pad.auto, pad.continuous, atol=1e-9)
    # Drift is tonal distance x pi/2 (a 1 s moving average leaves a linear ramp as it is).
    np.testing.assert_allclose(pad.continuous[200:1800], np.pi / 2 * tonal[200:1800], atol=1e-3)
    home = compose_track(t, RATE, beats, energy, np.zeros_like(t), np.full_like(t, 0.05))
    assert np.all(home.continuous == 0.0)  # home key: no drift
    # A mixed share gives a mixed path whose increments lie between the two.
    mixed = compose_track(t, RATE, beats, energy, tonal, np.full_like(t, 0.4))
    w = mixed.beat_weight[0]
    assert 0.2 < w < 0.8
    np.testing.assert_allclose(
        np.diff(mixed.auto), w * np.diff(mixed.pulse) + (1 - w) * np.diff(mixed.continuous), atol=1e-9
    )
