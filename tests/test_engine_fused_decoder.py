"""TAESD's decoder with fused convolution epilogues decodes what diffusers' decoder decodes, eagerly
and through torch.compile (the fused calls are custom ops with layout-faithful fake kernels)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sonosteer.engine.architectures import TINY_TAESD_CONFIG
from sonosteer.engine.fused_decoder import ConvReLU, FusedTinyBlock, conv_bias_add_relu, fuse_decoder_epilogues


@pytest.fixture(scope="module")
def decoder():
    from diffusers import AutoencoderTiny

    torch.manual_seed(0)
    return AutoencoderTiny(**TINY_TAESD_CONFIG).eval().requires_grad_(False)


def test_every_conv_relu_pair_and_block_is_fused_and_the_decode_is_unchanged(decoder):
    fused = copy.deepcopy(decoder)
    count = fuse_decoder_epilogues(fused)
    blocks = sum(isinstance(m, FusedTinyBlock) for m in fused.modules())
    pairs = sum(isinstance(m, ConvReLU) for m in fused.decoder.layers)
    assert blocks == sum(type(m).__name__ == "AutoencoderTinyBlock" for m in decoder.decoder.modules()) > 0
    assert pairs == 1 and count == 3 * blocks + pairs  # the conv_in + ReLU pair
    latent = torch.randn(2, decoder.config.latent_channels, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(fused.decode(latent).sample, decoder.decode(latent).sample, rtol=1e-5, atol=1e-5)


def test_channels_last_stays_channels_last_and_compiles_to_the_same_decode(decoder):
    fused = copy.deepcopy(decoder).to(memory_format=torch.channels_last)
    fuse_decoder_epilogues(fused)
    latent = torch.randn(1, decoder.config.latent_channels, 8, 8, generator=torch.Generator().manual_seed(2))
    x = torch.randn(1, 8, 6, 6).to(memory_format=torch.channels_last)
    weight = torch.randn(8, 8, 3, 3).to(memory_format=torch.channels_last)
    out = conv_bias_add_relu(x, weight, None, x, 1)
    assert out.is_contiguous(memory_format=torch.channels_last) and (out >= 0).all()
    compiled = torch.compile(lambda z: fused.decode(z).sample, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(latent), decoder.decode(latent).sample, rtol=1e-5, atol=1e-5)


def test_a_decoder_with_another_activation_is_left_alone(decoder):
    other = copy.deepcopy(decoder)
    for layer in other.decoder.layers:
        if type(layer).__name__ == "AutoencoderTinyBlock":
            layer.fuse = nn.SiLU()
    other.decoder.layers[1] = nn.SiLU()
    assert fuse_decoder_epilogues(other) == 0
