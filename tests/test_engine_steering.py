"""Steering wrappers checked against an independent reference: a plain forward hook on the unwrapped UNet."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from engine_fixtures import DEAD_FEATURE, tiny_settings, write_block_sae

from sonosteer.blocks import BLOCKS, block_by_name
from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.architectures import SDXL_TURBO_SCHEDULER_CONFIG, TINY_BLOCK_CHANNELS
from sonosteer.engine.errors import SaeMismatchError
from sonosteer.engine.generator import one_step_schedule
from sonosteer.engine.steered_engine import SteeredEngine
from sonosteer.engine.steering import SteeredBlock, block_grid, install_steering, resize_mask

FEATURES = [5, 9, 13, 2]
STRENGTHS = [1.5, -2.0, 0.7, 3.0]


def _controls(strengths, masks) -> FrameControls:
    controls = FrameControls(prompt_a="a red fox in snow", prompt_b="a red fox in snow", seed_a=3, seed_b=4)
    for bc, feature, strength, mask in zip(controls.blocks, FEATURES, strengths, masks):
        bc.feature_id, bc.strength, bc.mask = feature, strength, mask
    return controls


def _random_masks(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 1, (16, 16)).astype(np.float32) for _ in BLOCKS]


def _reference_unet(weights) -> UNet2DConditionModel:
    unet = UNet2DConditionModel.from_pretrained(weights.model, subfolder="unet", variant="fp16", torch_dtype=torch.float32)
    return unet.eval().requires_grad_(False)


def _sae_reference(weights, block, feature):
    """Direction and mean read straight from the checkpoint files (not through the engine's loader)."""
    folder = weights.saes / block.sae_folder
    column = torch.load(folder / "state_dict.pth", weights_only=True)["state_dict"]["decoder.weight"][:, feature]
    mean = torch.load(folder / "mean.pt", map_location="cpu", weights_only=True)[feature].item()
    return column / column.norm(), mean


def _reference_x0(engine, unet, prompt, seed):
    """x0 by the design.md recipe on an unwrapped UNet, from independently drawn noise."""
    sigma = engine.generator.sigma
    noise = torch.randn(engine.generator.noise_a.shape, generator=torch.Generator().manual_seed(seed))
    emb = engine.prompt_encoder(prompt)
    noisy = noise * sigma
    time_ids = torch.tensor([[engine.height, engine.width, 0, 0, engine.height, engine.width]], dtype=torch.float32)
    with torch.no_grad():
        eps = unet(
            noisy * (1.0 / math.sqrt(sigma**2 + 1.0)),
            torch.tensor([999.0]),
            encoder_hidden_states=emb.tokens,
            added_cond_kwargs={"text_embeds": emb.pooled, "time_ids": time_ids},
        ).sample
    return noisy - sigma * eps


@pytest.fixture(scope="module")
def engine_256(tiny_weights):
    """256x256 frames: the steered blocks run at 8x8, so each block cell covers 2x2 cells of the 16x16 mask."""
    return SteeredEngine.from_settings(tiny_settings(tiny_weights, height=256, width=256))


def _block_mask(mask: np.ndarray) -> torch.Tensor:
    """The 16x16 mask averaged over 2x2 cells: its footprint on an 8x8 block grid."""
    return torch.from_numpy(mask.reshape(8, 2, 8, 2).mean(axis=(1, 3)))


def test_one_step_schedule_matches_the_closed_form():
    timestep, sigma = one_step_schedule(SDXL_TURBO_SCHEDULER_CONFIG)
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alpha_bar = torch.cumprod(1.0 - betas, dim=0)[999]
    assert timestep == 999.0
    assert sigma == pytest.approx(math.sqrt((1 - alpha_bar) / alpha_bar), rel=1e-6)
    assert sigma == pytest.approx(14.6146, abs=1e-3)


def test_wrapped_unet_matches_a_forward_hook_reference(engine_256, tiny_weights):
    masks = _random_masks(1)
    engine_256.apply(_controls(STRENGTHS, masks))
    with torch.no_grad():
        x0 = engine_256.generator.denoise()
    unet = _reference_unet(tiny_weights)
    plain = _reference_x0(engine_256, unet, "a red fox in snow", 3)
    for block, feature, strength, mask in zip(BLOCKS, FEATURES, STRENGTHS, masks):
        direction, mean = _sae_reference(tiny_weights, block, feature)
        delta = strength * mean * direction[:, None, None] * _block_mask(mask)

        def hook(module, args, output, delta=delta):
            return (output[0] + delta, *output[1:])

        unet.get_submodule(block.module_path).register_forward_hook(hook)
    steered = _reference_x0(engine_256, unet, "a red fox in snow", 3)
    assert (steered - plain).abs().max() > 0.1, "steering must change x0 for this comparison to mean anything"
    torch.testing.assert_close(x0, steered, rtol=1e-4, atol=1e-4)


def test_strength_zero_is_bitwise_the_unwrapped_model(engine_256, tiny_weights):
    engine_256.apply(_controls([0.0] * 4, _random_masks(2)))
    with torch.no_grad():
        x0 = engine_256.generator.denoise()
    assert torch.equal(x0, _reference_x0(engine_256, _reference_unet(tiny_weights), "a red fox in snow", 3))


def test_cells_outside_the_mask_are_untouched_at_the_block(engine_256):
    left_half = np.zeros((16, 16), np.float32)
    left_half[:, :8] = 1.0
    engine_256.apply(_controls(STRENGTHS, [left_half] * 4))
    captured = {}
    handles = []
    for block in BLOCKS:
        wrapper = engine_256.generator.unet.get_submodule(block.module_path)
        assert isinstance(wrapper, SteeredBlock)
        for name, module in (("pre", wrapper.inner), ("post", wrapper)):
            handles.append(
                module.register_forward_hook(
                    lambda m, a, out, key=(block.short_name, name): captured.__setitem__(key, out[0].clone())
                )
            )
    with torch.no_grad():
        engine_256.generator.denoise()
    for handle in handles:
        handle.remove()
    for block, feature, strength in zip(BLOCKS, FEATURES, STRENGTHS):
        pre, post = captured[(block.short_name, "pre")], captured[(block.short_name, "post")]
        assert pre.shape[-2:] == (8, 8)
        assert torch.equal(post[..., 4:], pre[..., 4:])
        sae = engine_256._blocks[BLOCKS.index(block)].sae
        expected = strength * sae.mean_activation[feature] * sae.directions[feature][:, None, None]
        torch.testing.assert_close(post[0, :, :, :4] - pre[0, :, :, :4], expected.expand(-1, 8, 4).float())


def test_mask_maps_onto_other_block_resolutions(engine_256):
    config = engine_256.generator.unet.config
    assert block_grid(config, block_by_name("down.2.1"), (64, 64)) == (16, 16)
    assert block_grid(config, block_by_name("up.0.1"), (16, 16)) == (4, 4)
    assert block_grid(config, block_by_name("mid.0"), (96, 64)) == (24, 16)
    quadrants = np.kron(np.array([[1.0, 0.0], [0.25, 0.5]], np.float32), np.ones((8, 8), np.float32))
    torch.testing.assert_close(resize_mask(quadrants, (2, 2)), torch.tensor([[1.0, 0.0], [0.25, 0.5]]))
    blocks_of_4 = np.kron(np.arange(16, dtype=np.float32).reshape(4, 4), np.ones((4, 4), np.float32))
    torch.testing.assert_close(resize_mask(blocks_of_4, (4, 4)), torch.arange(16.0).reshape(4, 4))
    grown = resize_mask(quadrants, (24, 24))
    assert grown.shape == (24, 24) and grown[0, 0] == 1.0 and grown[0, -1] == 0.0 and grown[-1, -1] == 0.5


def test_sae_width_must_match_the_block(tiny_weights, tmp_path):
    unet = _reference_unet(tiny_weights)
    with pytest.raises(SaeMismatchError, match=rf"d_model=1280.*outputs {TINY_BLOCK_CHANNELS} channels"):
        install_steering(unet, {b.short_name: 1280 for b in BLOCKS}, (16, 16), torch.float32)
    import shutil

    saes = shutil.copytree(tiny_weights.saes, tmp_path / "saes")
    block = block_by_name("up.0.0")
    shutil.rmtree(saes / block.sae_folder)
    write_block_sae(saes / block.sae_folder, d_model=32, n_features=48, dead=DEAD_FEATURE["up.0.0"], seed=9)
    with pytest.raises(SaeMismatchError, match="block up.0.0 has d_model=32"):
        SteeredEngine.from_settings(tiny_settings(tiny_weights, saes=str(saes)))
