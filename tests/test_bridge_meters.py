"""Per-frame meters for the UI's orbs: each block's linked stem sampled at the frame's media time."""

from __future__ import annotations

import numpy as np
from bridge_fixtures import synthetic_bundle  # noqa: F401 - fixture

from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.bridge.meters import MeterSampler


def test_meters_interpolate_the_linked_stems_channels(synthetic_bundle):  # noqa: F811
    bundle = synthetic_bundle
    sampler = MeterSampler(bundle)
    controls = FrameControls(media_time_s=12.345, prompt_blend=0.25, noise_angle_rad=1.5)
    controls.blocks[0].strength = 17.5
    meters = sampler.meters(controls, ["drums", "bass", None, "vocals"])
    t = bundle.times_s
    for k, stem in ((0, "drums"), (1, "bass"), (3, "vocals")):
        for name in ("energy_smooth", "envelope", "flash", "pitch_normalized"):
            expected = np.interp(12.345, t, np.asarray(bundle.channel(stem, name)))
            assert abs(meters["blocks"][k][name] - expected) < 1e-3, (stem, name)
    assert meters["blocks"][2] == {
        "energy_smooth": 0.0, "envelope": 0.0, "flash": 0.0, "pitch_normalized": 0.0, "transient": 0, "strength": 0.0
    }
    assert meters["blocks"][0]["strength"] == 17.5
    assert (meters["prompt_blend"], meters["noise_angle_rad"], meters["media_time_s"]) == (0.25, 1.5, 12.345)
    phase = np.interp(12.345, t, np.asarray(bundle.channel("global", "beat_phase")))
    assert abs(meters["beat_phase"] - phase) < 1e-3


def test_a_one_grid_frame_transient_is_seen_by_the_next_video_frame(synthetic_bundle):  # noqa: F811
    bundle = synthetic_bundle
    sampler = MeterSampler(bundle)
    transient = np.asarray(bundle.channel("drums", "transient"))
    onset = int(np.flatnonzero(transient > 0.5)[5])
    rate = bundle.frame_rate_hz
    for delay_s in (0.0, 0.01, 0.02):  # a 50 FPS frame lands up to 20 ms after the onset
        controls = FrameControls(media_time_s=onset / rate + delay_s)
        assert sampler.meters(controls, ["drums", None, None, None])["blocks"][0]["transient"] == 1, delay_s
    quiet = onset - 1
    while transient[max(0, quiet - 5) : quiet + 1].max() > 0.5:
        quiet -= 1
    controls = FrameControls(media_time_s=quiet / rate)
    assert sampler.meters(controls, ["drums", None, None, None])["blocks"][0]["transient"] == 0
