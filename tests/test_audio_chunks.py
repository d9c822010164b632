"""Chunked, parallel analysis: the kept frames of a chunk equal a whole-signal analysis (the margins
cover every kernel), and the bundle does not depend on how many worker threads ran the chunks."""

from __future__ import annotations

import functools

import numpy as np
import soundfile as sf
from audio_helpers import SR, sectoid_mix

from sonosteer.audio import pipeline
from sonosteer.audio.chunks import analyse_family, plan_chunks
from sonosteer.audio.features import FrameGrid

GRID = FrameGrid()


def test_a_chunks_kept_frames_equal_the_whole_signal_analysis(music_dir):
    mix, _ = sectoid_mix(music_dir, start_s=100.0, duration_s=30.0)
    n_frames = 1 + len(mix) // GRID.hop
    whole = analyse_family("other", mix, plan_chunks(len(mix), n_frames, GRID, chunk_frames=n_frames)[0], GRID)
    middle = plan_chunks(len(mix), n_frames, GRID, chunk_frames=500)[1]  # frames 500-999, 1 s margins
    assert middle.feature_samples == (450 * GRID.hop, 1050 * GRID.hop)
    block = mix[middle.feature_samples[0]: middle.feature_samples[1]]
    part = analyse_family("other", block, middle, GRID)
    assert set(part.stems) == {"other", "other_harmonic", "other_percussive", "other_mid", "other_high"}
    kept = slice(middle.first_frame, middle.end_frame)
    for stem, chunk in part.stems.items():
        for name, values in chunk.features.items():
            reference = whole.stems[stem].features[name][kept]
            np.testing.assert_allclose(values, reference, rtol=1e-3, atol=1e-4 * (np.abs(reference).max() + 1e-12),
                                       err_msg=f"{stem}/{name}")
        per = GRID.env_per_frame
        env = whole.stems[stem].envelope_rms[middle.first_frame * per: middle.end_frame * per]
        np.testing.assert_allclose(chunk.envelope_rms, env, rtol=1e-3, atol=1e-6, err_msg=f"{stem} envelope")


def test_bundle_is_identical_with_one_or_three_workers(music_dir, tmp_path, monkeypatch):
    mix, _ = sectoid_mix(music_dir, start_s=40.0, duration_s=22.0)
    path = tmp_path / "excerpt.wav"
    sf.write(path, mix, SR, subtype="FLOAT")
    # 10 s chunks: three chunks whose tasks interleave on the workers.
    monkeypatch.setattr(pipeline, "plan_chunks", functools.partial(plan_chunks, chunk_frames=500))
    one = pipeline.analyze_file(path, cache_root=tmp_path / "one", workers=1)
    three = pipeline.analyze_file(path, cache_root=tmp_path / "three", workers=3)
    assert one.manifest["workers"] == 1 and three.manifest["workers"] == 3
    assert one.manifest["stems"] == three.manifest["stems"] and one.tempo_bpm == three.tempo_bpm
    for key in one.manifest["channels"]:
        group, name = key.split("/")
        np.testing.assert_array_equal(one.channel(group, name), three.channel(group, name), err_msg=key)
    cpu = three.manifest["cpu_s"]
    assert cpu["separation"] > 0 and cpu["features"] > 0 and cpu["pitch"] > 0 and cpu["total"] > cpu["features"]
