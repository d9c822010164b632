"""FramePlanner end to end on synthetic bundles: dance model, seeks, silence, masks, prompts, noise."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from bridge_fixtures import synthetic_bundle, write_constant_bundle  # noqa: F401 - fixture
from conftest import REPO_ROOT, run_sonosteer

from sonosteer.bridge.auto_config import effective_block
from sonosteer.bridge.frame_controls import PromptBlend
from sonosteer.bridge.masks import pitch_mask_index, pitch_masks, preset_mask
from sonosteer.bridge.planner import FramePlanner
from sonosteer.bridge.settings import BlockSettings, FrozenBlend, Scene, SettingsError, apply_update
from sonosteer.bridge.synthetic import STEM_INFO, VOCAL_GAP_S, VOCAL_PITCH_HZ


def _scene(blocks=None, **top) -> Scene:
    return apply_update(Scene(), {"blocks": blocks or {}, **top})


def _run(planner, start, stop, fps=50.0):
    return [planner.plan(t) for t in np.arange(start, stop, 1.0 / fps)]


def test_dance_model_on_constant_signals_reaches_the_hand_computed_strength(tmp_path):
    bundle = write_constant_bundle(tmp_path, {"bass": {"energy_smooth": 0.64, "pitch_normalized": 0.25}, "drums": {}})
    block = {
        "link_target": "bass",
        "mode": "manual",
        "physics": {"model": "spring", "preset": "linear"},
        "position_source": "pitch",
        "intensity_curve": {"kind": "gamma", "gamma": 0.5},
    }
    planner = FramePlanner(
        bundle,
        _scene(
            {
                "mid.0": {**block, "rank": "R1"},
                "up.0.0": {**block, "rank": "R3", "link_target": "drums"},
                "up.0.1": {"stage": {"home": 7.0, "right": 40.0}},
            }
        ),
    )
    last = _run(planner, 0.0, 6.0)[-1]
    # position_value = -30 + 0.25 * 60 = -15; intensity = 0.64 ** 0.5 = 0.8; output = 0.8 * -15 = -12.
    assert last.blocks[1].strength == pytest.approx(-12.0, abs=1e-3)
    # drums: position 0.5 -> position_value 0 -> the output stays home whatever the energy.
    assert last.blocks[2].strength == pytest.approx(0.0, abs=1e-9)
    assert last.blocks[3].strength == 7.0  # unlinked: constant steering at home
    assert last.blocks[0].strength == 0.0  # default block: unlinked, home 0
    # Rank scales the excursion: an R3 copy of the bass block goes 0.40 as far.
    planner.apply_update("/blocks/up.0.0/link_target", "bass")
    planner.apply_update("/blocks/up.0.0/position_source", "pitch")
    assert _run(planner, 6.0, 9.0)[-1].blocks[2].strength == pytest.approx(-12.0 * 0.40, abs=1e-3)


def test_frames_validate_and_feature_changes_are_flagged_once(synthetic_bundle):
    planner = FramePlanner(synthetic_bundle, _scene({"mid.0": {"link_target": "drums", "feature_id": 5}}))
    first = planner.plan(1.0)
    first.validate()
    assert [b.feature_dirty for b in first.blocks] == [True] * 4 and first.frame_index == 1
    assert not any(b.feature_dirty for b in planner.plan(1.02).blocks)
    planner.apply_update("/blocks/up.0.1/feature_id", 4329)
    flags = [b.feature_dirty for b in planner.plan(1.04).blocks]
    assert flags == [False, False, False, True]
    assert not any(b.feature_dirty for b in planner.plan(1.06).blocks)


def test_seek_puts_the_springs_at_rest_on_the_new_position(synthetic_bundle):
    blocks = {
        name: {"link_target": stem, "mode": "manual", "physics": {"model": "spring", "preset": "drums"}}
        for name, stem in zip(("down.2.1", "mid.0", "up.0.0", "up.0.1"), ("drums", "bass", "vocals", "other"))
    }
    scene = _scene(blocks)
    seeking = FramePlanner(synthetic_bundle, scene)
    _run(seeking, 0.0, 10.0)
    after_seek = _run(seeking, 45.0, 47.0)
    fresh = _run(FramePlanner(synthetic_bundle, scene), 45.0, 47.0)
    got = np.array([[b.strength for b in f.blocks] for f in after_seek])
    want = np.array([[b.strength for b in f.blocks] for f in fresh])
    np.testing.assert_allclose(got, want, atol=1e-9)  # nothing carried over from before the seek
    # Backwards too, and the blended (never-settling) models stay on the stage after any jump.
    blended = FramePlanner(
        synthetic_bundle, _scene({name: {"link_target": b["link_target"]} for name, b in blocks.items()})
    )
    rng = np.random.default_rng(0)
    for _ in range(40):
        start = rng.uniform(0, 55)
        for f in _run(blended, start, start + 0.3):
            assert all(-30.0 * 1.5 <= b.strength <= 30.0 * 1.5 for b in f.blocks)


def test_pause_repeats_the_frame_and_irregular_calls_stay_smooth(synthetic_bundle):
    planner = FramePlanner(
        synthetic_bundle, _scene({"mid.0": {"link_target": "other"}, "up.0.0": {"link_target": "vocals"}})
    )
    _run(planner, 5.0, 6.0)
    a, b = planner.plan(6.5), planner.plan(6.5)
    assert [x.strength for x in a.blocks] == [x.strength for x in b.blocks]
    assert a.noise_angle_rad == b.noise_angle_rad and a.frame_index + 1 == b.frame_index
    # Irregular intervals (10-60 ms) give the same motion as a steady 50 FPS, within a small tolerance.
    steady = FramePlanner(
        synthetic_bundle,
        _scene(
            {"mid.0": {"link_target": "bass", "mode": "manual", "physics": {"model": "spring", "preset": "vocals"}}}
        ),
    )
    jittery = FramePlanner(synthetic_bundle, steady.scene)
    times = np.cumsum(np.random.default_rng(3).uniform(0.01, 0.06, 400)) + 2.0
    grid = np.arange(2.0, times[-1], 0.02)
    ref = np.interp(times, grid, [steady.plan(t).blocks[1].strength for t in grid])
    got = np.array([jittery.plan(t).blocks[1].strength for t in times])
    assert np.abs(got - ref)[20:].max() < 1.5  # strengths span +-30


def test_silence_hold_keeps_the_strength_and_drift_home_fades_it(synthetic_bundle):
    gap0, gap1 = VOCAL_GAP_S
    scene = _scene(
        {
            "mid.0": {"link_target": "vocals", "silence": "hold"},
            "up.0.0": {"link_target": "vocals", "silence": "drift_home", "stage": {"home": 5.0}},
        }
    )
    planner = FramePlanner(synthetic_bundle, scene)
    frames = _run(planner, gap0 - 3.0, gap1 - 0.1)
    t = np.arange(gap0 - 3.0, gap1 - 0.1, 0.02)
    hold = np.array([f.blocks[1].strength for f in frames])
    drift = np.array([f.blocks[2].strength for f in frames])
    inside = t > gap0 + 0.2  # the vocal's level falls below -40 dB right at the gap
    assert np.ptp(hold[inside]) == 0.0 and abs(hold[inside][0]) > 1.0
    # drift_home: relaxes to home (5) with a 1.5 s time constant (the sustained models still breathe on the way).
    k0 = np.argmax(inside)
    excursion = np.abs(drift[k0:] - 5.0)
    assert excursion.max() <= excursion[0] + 1e-9
    at_1_5_s = excursion[int(1.5 / 0.02)] / excursion[0]
    assert at_1_5_s < math.exp(-1.0) * 1.1
    assert excursion[-1] < 0.2 * excursion[0]


def test_pitch_aligned_mask_follows_the_rising_vocal(synthetic_bundle):
    planner = FramePlanner(
        synthetic_bundle, _scene({"up.0.0": {"link_target": "vocals", "mode": "manual", "spatial": {"mode": "pitch"}}})
    )
    masks = pitch_masks()
    times = np.arange(0.5, 59.5, 0.5)
    chosen = []
    for t in times:
        mask = planner.plan(t).blocks[2].mask
        chosen.append(next(i for i, m in enumerate(masks) if np.array_equal(m, mask)))
    lo, hi = VOCAL_PITCH_HZ
    gap = (times >= VOCAL_GAP_S[0]) & (times < VOCAL_GAP_S[1])
    voiced_time = np.where(gap, VOCAL_GAP_S[0] - 0.01, times)  # the pitch is held through the silent gap
    pitch = lo * (hi / lo) ** (voiced_time / 59.99)
    expected = [pitch_mask_index(np.clip(np.log2(p / 80) / np.log2(2000 / 80), 0, 1)) for p in pitch]
    assert np.all(np.diff(chosen) >= 0) and chosen[0] < chosen[-1]
    assert np.abs(np.array(chosen) - np.array(expected)).max() <= 1


def test_auto_config_derives_the_rest_from_the_stem(synthetic_bundle):
    def eff(stem):
        return effective_block(BlockSettings(link_target=stem), STEM_INFO[stem], 0.5)

    assert eff("drums").physics.preset == "drums" and eff("drums").response_layer == "flash"
    assert eff("drums_low").spatial.preset == "floor" and eff("bass").spatial.preset == "floor"
    assert eff("drums_high").spatial.preset == "ceiling" and eff("other_high").spatial.preset == "ceiling"
    vocal = eff("vocals")
    assert (vocal.physics.preset, vocal.response_layer, vocal.spatial.preset) == ("vocals", "sustain", "center")
    assert eff("other_high").intensity_source == "flux"  # texture
    manual = BlockSettings(link_target="drums", mode="manual", response_layer="sustain")
    assert effective_block(manual, STEM_INFO["drums"]) == manual
    planner = FramePlanner(synthetic_bundle, _scene({"mid.0": {"link_target": "drums_low"}}))
    assert planner.plan(1.0).blocks[1].mask is not None
    np.testing.assert_array_equal(planner.plan(1.02).blocks[1].mask, preset_mask("floor"))


def test_loading_a_destination_freezes_the_current_blend(synthetic_bundle):
    planner = FramePlanner(synthetic_bundle, _scene(prompt={"a": "a forest", "b": "a city", "blend": 0.3}))
    assert planner.plan(1.0).prompt_blend == pytest.approx(0.3)
    scene = planner.load_destination("the sea")
    assert scene.prompt.a == FrozenBlend(a="a forest", b="a city", t=0.3) and scene.prompt.b == "the sea"
    frame = planner.plan(1.02)
    assert frame.prompt_a == PromptBlend("a forest", "a city", 0.3) and frame.prompt_b == "the sea"
    assert frame.prompt_blend == 0.0
    planner.apply_update("/prompt/blend", 1.0)
    planner.plan(1.04)
    assert planner.load_destination("a desert").prompt.a == "the sea"  # arrived at B: A is B itself
    # Reactive: energy pushes towards B, within [0, 1].
    planner.apply_update(
        {
            "prompt": {"mode": "reactive"},
            "blocks": {"mid.0": {"link_target": "drums"}, "up.0.0": {"link_target": "bass"}},
        }
    )
    blends = [f.prompt_blend for f in _run(planner, 2.0, 8.0)]
    assert 0.0 <= min(blends) and max(blends) <= 1.0 and blends[-1] > 0.3


def test_linked_prompt_follows_its_dance_model(tmp_path):
    bundle = write_constant_bundle(tmp_path, {"bass": {"energy_smooth": 0.6, "brightness": 0.5}})
    planner = FramePlanner(
        bundle,
        _scene(
            prompt={
                "a": "x",
                "b": "y",
                "mode": "linked",
                "linked": {"link_target": "bass", "position_source": "brightness"},
            }
        ),
    )
    assert _run(planner, 0.0, 15.0)[-1].prompt_blend == pytest.approx(0.6 * 0.5, abs=1e-3)


def test_noise_angle_scales_with_distance(synthetic_bundle):
    planner = FramePlanner(synthetic_bundle, _scene(composition={"distance": 1.0, "mode": "pulse"}))
    full = planner.plan(10.0).noise_angle_rad
    planner.apply_update("/composition/distance", 0.25)
    assert planner.plan(10.0).noise_angle_rad == pytest.approx(full / 4)
    planner.apply_update("/composition/distance", 0.0)
    assert planner.plan(10.0).noise_angle_rad == 0.0
    assert full > 2 * np.pi * 10  # about 20 beats in, each turning by its energy


def test_unknown_stems_are_rejected_and_the_scene_is_kept(synthetic_bundle):
    planner = FramePlanner(synthetic_bundle)
    before = planner.scene
    with pytest.raises(
        SettingsError, match=r"/blocks/mid.0/link_target: this track has no stem 'piano'; it has drums, bass"
    ):
        planner.apply_update("/blocks/mid.0/link_target", "piano")
    assert planner.scene is before
    planner.plan(0.0)


def test_the_bridge_never_imports_torch(synthetic_bundle):
    code = (
        "import sys\n"
        "from sonosteer.audio.bundle import load_bundle\n"
        "from sonosteer.bridge import bench, blended, clock, planner, settings, slerp, synthetic, commands\n"
        f"p = planner.FramePlanner(load_bundle({str(synthetic_bundle.path)!r}), bench.full_scene())\n"
        "p.plan(1.0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        timeout=120,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_bench_command_appends_a_table(tmp_path):
    out = run_sonosteer("bench", "bridge", "--frames", "300", "--output", str(tmp_path / "B.md"), timeout=300)
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "B.md").read_text()
    assert "Bridge: FramePlanner.plan(t)" in text and "| 50 FPS, steady | 300 |" in text


def test_preview_plots_what_was_planned(synthetic_bundle, tmp_path):
    from sonosteer.bridge.bench import full_scene
    from sonosteer.bridge.preview import plan_series, plot_preview

    series = plan_series(FramePlanner(synthetic_bundle, full_scene()), 10.0, 2.0, fps=25.0)
    assert series["strength"].shape == (50, 4) and series["time_s"][0] == 10.0
    again = FramePlanner(synthetic_bundle, full_scene())
    assert [b.strength for b in again.plan(10.0).blocks] == list(series["strength"][0])
    path = plot_preview(series, tmp_path / "p.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
