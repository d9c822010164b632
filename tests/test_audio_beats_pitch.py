"""Tempo without octave errors, beat F-measure on the loop grids, pitch of solo instruments."""

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import AI_CLIPS, LOOPS, SECTOID_BPM, SR, load_mono, sectoid_mix, tiled_loop

from sonosteer.audio.beats import beat_phase, track_mix
from sonosteer.audio.pitch import BasicPitchTracker, PestoTracker, PyinTracker


def _tempo_ok(measured: float, reference: float) -> bool:
    return abs(measured / reference - 1.0) <= 0.02


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_loops_tempo_and_beat_f_measure(music_dir, name):
    import mir_eval

    y, loop_s, bpm = tiled_loop(music_dir, name, min_s=30.0)
    result = track_mix(y, SR)
    assert _tempo_ok(result.tempo_bpm, bpm), f"{name}: {result.tempo_bpm:.2f} BPM, expected {bpm}"
    # The loop files start on a beat: the reference grid is k * 60/bpm.
    reference = np.arange(0.0, len(y) / SR, 60.0 / bpm)
    f = mir_eval.beat.f_measure(mir_eval.beat.trim_beats(reference), mir_eval.beat.trim_beats(result.beats_s))
    assert f >= 0.9, f"{name}: beat F-measure {f:.3f}"


@pytest.mark.parametrize("name", sorted(AI_CLIPS))
def test_ai_clips_tempo(music_dir, name):
    y = load_mono(music_dir / "ai_generated" / f"{name}.opus")
    result = track_mix(y, SR)
    assert _tempo_ok(result.tempo_bpm, AI_CLIPS[name]), f"{name}: {result.tempo_bpm:.2f} BPM"


def test_sectoid_excerpt_tempo(music_dir):
    mix, _ = sectoid_mix(music_dir, start_s=60.0, duration_s=60.0)
    result = track_mix(mix, SR)
    assert _tempo_ok(result.tempo_bpm, SECTOID_BPM), f"{result.tempo_bpm:.2f} BPM"
    assert result.beats_per_bar == 4


def test_short_clip_gets_a_flagged_default_grid():
    y = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32) * 0.1
    result = track_mix(y, SR)
    assert not result.reliable and result.tempo_bpm == 120.0
    np.testing.assert_allclose(np.diff(result.beats_s), 0.5)


def test_beat_phase_is_zero_on_beats_and_linear_between():
    beats = np.array([1.0, 1.5, 2.0])
    t = np.array([0.75, 1.0, 1.25, 1.5, 1.75, 2.25])
    np.testing.assert_allclose(beat_phase(t, beats, 0.5), [0.5, 0, 0.5, 0, 0.5, 0.5], atol=1e-6)


def _median_pitch(tracker, y):
    times = np.arange(0, len(y) / SR, 0.02)
    pitch, conf = tracker.track(y, SR, times)
    voiced = (conf >= 0.5) & (pitch > 0)
    assert voiced.mean() > 0.3
    return float(np.median(pitch[voiced]))


def _cents(a: float, b: float) -> float:
    return abs(1200 * np.log2(a / b))


def test_synthetic_tone_pitch_with_every_tracker():
    t = np.arange(SR * 2) / SR
    y = sum(np.sin(2 * np.pi * 196.0 * h * t) / h for h in range(1, 6)).astype(np.float32) * 0.3
    # Basic Pitch's contour has 1/3-semitone bins: within half a semitone is the right note.
    for tracker, tolerance in ((PestoTracker(), 30), (BasicPitchTracker(), 50), (PyinTracker(), 30)):
        assert _cents(_median_pitch(tracker, y), 196.0) < tolerance, tracker.name


@pytest.mark.parametrize("file, tracker_cls", [("lmms_flute01.ogg", PestoTracker), ("lmms_flute01.ogg", BasicPitchTracker),
                                                ("lmms_piano02.ogg", PestoTracker), ("lmms_piano02.ogg", BasicPitchTracker)])
def test_solo_instrument_pitch_matches_pyin(music_dir, file, tracker_cls):
    """PESTO and Basic Pitch agree with pYIN (an independent, model-free tracker) within 50 cents."""
    y = load_mono(music_dir / "solo_instruments" / file)
    assert _cents(_median_pitch(tracker_cls(), y), _median_pitch(PyinTracker(), y)) < 50
