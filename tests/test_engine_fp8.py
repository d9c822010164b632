"""The opt-in float8 linears: exact where float8 can represent the operands, within e4m3's rounding
bound elsewhere, converting only the per-frame transformer linears of the UNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_fixtures import control_sequence, tiny_settings
from torch import nn

from sonosteer.engine.quantize import FP8_MAX, Fp8Linear, quantize_fp8
from sonosteer.engine.steered_engine import SteeredEngine

E4M3_RELATIVE_STEP = 2.0**-3  # 3 mantissa bits: neighbouring values differ by at most 1/8 relative


def test_operands_that_float8_represents_give_the_exact_product():
    gen = torch.Generator().manual_seed(0)
    linear = nn.Linear(64, 48)
    with torch.no_grad():
        # Entries from {-2, -1, 0, 1, 2} with a 2 in every row: scaled by 448/2 they are +-224 and +-448, all e4m3 values.
        linear.weight.copy_(torch.randint(-2, 3, (48, 64), generator=gen).float())
        linear.weight[:, 0] = 2.0
        linear.bias.copy_(torch.randn(48, generator=gen))
    x = torch.randint(-2, 3, (5, 7, 64), generator=gen).float()
    x[..., 0] = -2.0
    fp8 = Fp8Linear(linear)
    out = fp8(x)
    assert out.shape == (5, 7, 48)
    torch.testing.assert_close(out, linear(x), rtol=0, atol=1e-5)


def test_random_operands_stay_within_float8_rounding():
    gen = torch.Generator().manual_seed(1)
    linear = nn.Linear(256, 128)
    x = torch.randn(32, 256, generator=gen) * torch.logspace(-2, 2, 32).unsqueeze(1)  # rows of very different scales
    fp8 = Fp8Linear(linear)
    reference = linear(x).detach()
    err = ((fp8(x) - reference).norm(dim=1) / (reference - linear.bias.detach()).norm(dim=1)).max()
    # Each operand's rounding error is at most half a step (1/16) and ~1/16/sqrt(3) on average; both together ~5 %.
    assert 0.005 < float(err) < E4M3_RELATIVE_STEP / 2
    assert fp8.weight_fp8.dtype == torch.float8_e4m3fn and float(fp8.weight_fp8.float().abs().max()) == FP8_MAX


def test_all_zero_rows_give_the_bias():
    linear = nn.Linear(32, 16)
    out = Fp8Linear(linear)(torch.zeros(3, 32))
    torch.testing.assert_close(out, linear.bias.detach().expand(3, 16))


def test_quantized_engine_converts_the_transformer_linears_and_stays_close(tiny_weights, monkeypatch):
    import sonosteer.engine.steered_engine as steered_engine

    counted: list[int] = []

    def quantize_small(unet, keep=None):  # the tiny UNet's linears are narrower than the full model's 640
        counted.append(quantize_fp8(unet, keep=keep, min_features=32))

    plain = SteeredEngine.from_settings(tiny_settings(tiny_weights))
    monkeypatch.setattr(steered_engine, "quantize_fp8", quantize_small)
    fast = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="fp8"))
    assert counted[0] > 0 and "fp8 linears" in fast.label
    converted = {n for n, m in fast.generator.unet.named_modules() if isinstance(m, Fp8Linear)}
    assert len(converted) == counted[0]
    # Only linears fed by a layer norm or the GEGLU: self-attention QKV, cross-attention query, feed-forward.
    assert {".".join(n.split(".")[-2:]) for n in converted} == {"attn1.to_qkv", "attn2.to_q", "0.proj", "net.2"}
    assert not any("kv_source" in n or "to_out" in n or "proj_in" in n for n in converted)
    for controls in control_sequence()[:3]:
        plain.apply(controls)
        fast.apply(controls)
        with torch.no_grad():
            x0_plain, x0_fast = plain.generator.denoise(), fast.generator.denoise()
        rel = float((x0_fast - x0_plain).norm() / x0_plain.norm())
        assert 0.0 < rel < 0.1, rel
        assert np.abs(fast.render().astype(int) - plain.render().astype(int)).mean() < 10


def test_a_unet_without_transformers_is_refused():
    with pytest.raises(ValueError, match="SDXL-architecture"):
        quantize_fp8(nn.Sequential(nn.Linear(1024, 1024)))
