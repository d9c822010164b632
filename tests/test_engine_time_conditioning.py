"""The time-conditioning fold: the UNet computes the same noise prediction with the timestep
embedding precomputed and every resnet's time projection stacked into one linear run once."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sonosteer.engine.architectures import TINY_UNET_CONFIG, pooled_width
from sonosteer.engine.time_conditioning import StackedTimeProjection, TimeProjectionSlice, fold_time_conditioning

TIMESTEP = 999.0


@pytest.fixture(scope="module")
def unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(**TINY_UNET_CONFIG).eval().requires_grad_(False)


def _inputs(batch: int, unet) -> tuple:
    gen = torch.Generator().manual_seed(1)
    config = unet.config
    latent = torch.randn(batch, config.in_channels, 16, 16, generator=gen)
    tokens = torch.randn(1, 77, config.cross_attention_dim, generator=gen).expand(batch, -1, -1)
    pooled = torch.randn(1, pooled_width(config), generator=gen).expand(batch, -1)
    time_ids = torch.tensor([[128.0, 128.0, 0.0, 0.0, 128.0, 128.0]]).expand(batch, -1)
    return latent, tokens, pooled, time_ids


def _eps(unet, latent, tokens, pooled, time_ids) -> torch.Tensor:
    with torch.no_grad():
        return unet(latent, torch.tensor([TIMESTEP]), encoder_hidden_states=tokens,
                    added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}, return_dict=False)[0]


@pytest.mark.parametrize("batch", [1, 2])
def test_folded_unet_predicts_the_same_noise(unet, batch):
    folded = copy.deepcopy(unet)
    stacked = fold_time_conditioning(folded, TIMESTEP)
    inputs = _inputs(batch, unet)
    reference = _eps(unet, *inputs)
    torch.testing.assert_close(_eps(folded, *inputs), reference, rtol=1e-4, atol=1e-5)
    # A different pooled prompt changes the projection: the fold is per frame, not frozen at install.
    other = (inputs[0], inputs[1], inputs[2] + 1.0, inputs[3])
    torch.testing.assert_close(_eps(folded, *other), _eps(unet, *other), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(_eps(folded, *other), reference, atol=1e-3)
    assert stacked.projected.shape[0] == 1


def test_one_stacked_linear_replaces_every_resnet_time_projection(unet):
    from diffusers.models.resnet import ResnetBlock2D

    folded = copy.deepcopy(unet)
    resnets = [m for m in folded.modules() if isinstance(m, ResnetBlock2D)]
    widths = [r.time_emb_proj.out_features for r in resnets]
    linears_before = sum(isinstance(m, nn.Linear) for m in folded.modules())
    stacked = fold_time_conditioning(folded, TIMESTEP)
    assert all(isinstance(r.time_emb_proj, TimeProjectionSlice) for r in resnets)
    assert [r.time_emb_proj.width for r in resnets] == widths and stacked.stacked.out_features == sum(widths)
    # The resnets' linears and the timestep MLP's two are gone; the stacked one is new.
    assert sum(isinstance(m, nn.Linear) for m in folded.modules()) == linears_before - len(resnets) - 2 + 1
    assert isinstance(folded.add_embedding, StackedTimeProjection)


def test_a_unet_without_sdxl_conditioning_is_refused(unet):
    plain = copy.deepcopy(unet)
    plain.config.addition_embed_type = None
    with pytest.raises(ValueError, match="SDXL-style"):
        fold_time_conditioning(plain, TIMESTEP)
