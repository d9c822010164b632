"""The SteeredEngine end to end on tiny weights loaded from disk: frames, in-place updates, caches, bad input."""

from __future__ import annotations

import math
import shutil
import warnings

import numpy as np
import pytest
import torch
from engine_fixtures import DEAD_FEATURE, TINY_N_FEATURES, control_sequence, tiny_settings

from sonosteer.blocks import BLOCKS
from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.errors import WeightsCorruptError
from sonosteer.engine.noise import seeded_noise
from sonosteer.engine.renderer import FeatureInfo, Renderer
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.steered_engine import DeadFeatureWarning, SteeredEngine


def _controls(seed: int, prompt_a="a city at night", prompt_b="a forest in fog", **fields) -> FrameControls:
    rng = np.random.default_rng(seed)
    controls = FrameControls(prompt_a=prompt_a, prompt_b=prompt_b, seed_a=seed, seed_b=seed + 100, **fields)
    for bc, dead in zip(controls.blocks, DEAD_FEATURE.values()):
        bc.feature_id = int(rng.integers(0, TINY_N_FEATURES - 1))
        bc.feature_id += bc.feature_id >= dead  # never the dead one
        bc.strength = float(rng.uniform(-3, 3))
        bc.mask = rng.uniform(0, 1, (16, 16)).astype(np.float32)
    return controls


@pytest.fixture(scope="module")
def engine(tiny_weights):
    return SteeredEngine.from_settings(tiny_settings(tiny_weights))


def _frame(engine, controls) -> np.ndarray:
    engine.apply(controls)
    return engine.render().copy()


def test_renders_uint8_frames_and_implements_the_protocol(engine):
    assert isinstance(engine, Renderer)
    frame = _frame(engine, _controls(1))
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    assert frame.std() > 5, "the tiny model should give a frame with visible structure"
    assert {"apply", "gpu", "d2h", "render"} <= set(engine.last_timings_ms)
    assert engine.label == "SDXL-Turbo, eager, float32 on CPU"


def test_a_handed_out_frame_survives_the_next_renders(engine):
    engine.apply(_controls(2))
    first = engine.render()
    kept = first.copy()
    later = []
    for seed in range(3, 3 + engine.ring_size - 1):
        engine.apply(_controls(seed))
        later.append(engine.render())
    assert np.array_equal(first, kept), "a frame must stay valid for ring_size - 1 further renders"
    assert not np.array_equal(later[-1], kept)
    engine.apply(_controls(2))
    assert np.shares_memory(engine.render(), first), "the ring reuses its buffers after ring_size renders"


def test_in_place_updates_equal_a_fresh_engine(engine, tiny_weights):
    a = _controls(10, prompt_blend=0.2, noise_angle_rad=0.3)
    b = _controls(11, prompt_a="a desert", prompt_b="an ocean", prompt_blend=0.7, noise_angle_rad=2.1)
    frame_a = _frame(engine, a)
    frame_b = _frame(engine, b)
    with torch.no_grad():
        x0_b = engine.generator.denoise()
    fresh = SteeredEngine.from_settings(tiny_settings(tiny_weights))
    fresh_b = _frame(fresh, b)
    with torch.no_grad():
        assert torch.equal(x0_b, fresh.generator.denoise())
    assert np.array_equal(frame_b, fresh_b)
    assert not np.array_equal(frame_a, frame_b)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: setattr(c.blocks[0], "strength", c.blocks[0].strength + 4.0),
        lambda c: setattr(c.blocks[1], "feature_id", (c.blocks[1].feature_id + 1) % 3),
        lambda c: setattr(c.blocks[2], "mask", 1.0 - c.blocks[2].mask),
        lambda c: setattr(c, "prompt_blend", 0.9),
        lambda c: setattr(c, "noise_angle_rad", 1.2),
        lambda c: setattr(c, "seed_b", 999),
    ],
    ids=["strength", "feature", "mask", "prompt_blend", "noise_angle", "seed"],
)
def test_each_control_changes_the_frame(engine, change):
    controls = _controls(20, prompt_blend=0.4, noise_angle_rad=0.5)
    before = _frame(engine, controls)
    change(controls)
    assert not np.array_equal(before, _frame(engine, controls))


def test_prompts_are_encoded_once_with_the_real_clip_tokenizer(engine):
    tokenizer = engine.prompt_encoder.tokenizers[0]
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    cache = engine.prompt_encoder.cache
    engine.apply(_controls(30, prompt_a="new prompt one", prompt_b="new prompt two"))
    misses = cache.misses
    for frame in range(5):
        engine.apply(_controls(30 + frame, prompt_a="new prompt one", prompt_b="new prompt two", prompt_blend=0.1 * frame))
    assert cache.misses == misses
    emb = engine.prompt_encoder("new prompt one")
    assert emb.tokens.shape == (1, 77, 64) and emb.pooled.shape == (1, 32)
    ids = tokenizer("new prompt one", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        first_half = engine.prompt_encoder.text_encoders[0](ids, output_hidden_states=True).hidden_states[-2]
    torch.testing.assert_close(emb.tokens[..., :32], first_half)


def test_noise_is_seeded_and_composed_on_the_circle(engine):
    assert torch.equal(seeded_noise(7, (1, 4, 16, 16)), torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(7)))
    engine.apply(_controls(40, noise_angle_rad=math.pi / 2))
    gen = engine.generator
    torch.testing.assert_close(gen.noise_a, seeded_noise(40, (1, 4, 16, 16)))
    composed = torch.cos(gen.angle) * gen.noise_a + torch.sin(gen.angle) * gen.noise_b
    torch.testing.assert_close(composed, gen.noise_b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [(500, 512), (512, 0), (64 * 40, 512)])
def test_frame_size_must_be_a_multiple_of_64(tiny_weights, size):
    with pytest.raises(ValueError, match="multiple of 64"):
        SteeredEngine.from_settings(tiny_settings(tiny_weights, height=size[0], width=size[1]))


def test_other_sizes_render(tiny_weights):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=192))
    assert _frame(engine, _controls(3)).shape == (64, 192, 3)
    assert engine._blocks[0].wrapper.activation_map.shape == (2, 6)


def test_out_of_range_feature_is_rejected_and_changes_nothing(engine):
    good = _controls(50)
    before = _frame(engine, good)
    bad = _controls(51)
    bad.blocks[3].feature_id = TINY_N_FEATURES
    with pytest.raises(ValueError, match=r"block up.0.1: feature 48 is out of range.*48 features \(0..47\)"):
        engine.apply(bad)
    assert np.array_equal(engine.render(), before)
    bad.blocks[3].feature_id = -1
    with pytest.raises(ValueError, match="out of range"):
        engine.apply(bad)


def test_dead_feature_warns_once_and_steers_nothing(tiny_weights):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    controls = _controls(60)
    controls.blocks[1].feature_id = DEAD_FEATURE["mid.0"]
    with pytest.warns(DeadFeatureWarning, match="block mid.0: feature 3 is dead") as first:
        controls.blocks[1].strength = 0.0
        unsteered = _frame(engine, controls)
    assert len([w for w in first if w.category is DeadFeatureWarning]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeadFeatureWarning)  # selecting it again must not warn again
        controls.blocks[1].feature_id = 0
        engine.apply(controls)
        controls.blocks[1].feature_id = DEAD_FEATURE["mid.0"]
        controls.blocks[1].strength = 5.0
        assert np.array_equal(_frame(engine, controls), unsteered)


def test_features_report_size_and_dead_ids(engine):
    assert engine.features() == {b.short_name: FeatureInfo(TINY_N_FEATURES, frozenset({DEAD_FEATURE[b.short_name]})) for b in BLOCKS}


def test_corrupt_unet_weights_name_the_component(tiny_weights, tmp_path):
    model = shutil.copytree(tiny_weights.model, tmp_path / "model")
    weights = model / "unet" / "diffusion_pytorch_model.fp16.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(WeightsCorruptError, match=r"the UNet in .*unet cannot be loaded"):
        SteeredEngine.from_settings(tiny_settings(tiny_weights, model=str(model)))


def test_closed_engine_refuses_to_render(tiny_weights):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.render()


def test_settings_are_validated():
    with pytest.raises(ValueError, match="dtype"):
        EngineSettings(dtype="float8").validate()
    with pytest.raises(ValueError, match="ring_size"):
        EngineSettings(ring_size=1).validate()


def test_a_batch_renders_each_item_as_a_single_frame_with_its_noise(engine):
    """Offline batches: item i of a batch equals the batch-1 frame with item i's noise (same prompt blend and steering)."""
    controls = control_sequence()[2]
    engine.apply(controls)
    single = engine.generator
    batched = single.with_batch(3, seed=1234)  # not 5: the engine seeds its noise the same way, and seed_a is 5
    batched.noise_a[1].copy_(single.noise_a[0])
    batched.noise_b[1].copy_(single.noise_b[0])
    with torch.no_grad():
        frames = batched().numpy().astype(np.int16)
        expected = single().numpy().astype(np.int16)
    assert frames.shape == (3, *expected.shape) and frames.dtype == np.int16
    diff = np.abs(frames[1] - expected)
    assert diff.max() <= 2 and diff.mean() < 0.05
    assert np.abs(frames[0] - frames[1]).mean() > 5 * diff.mean() + 1  # other noise, other frame
    with pytest.raises(ValueError, match="batch"):
        single.with_batch(0)
