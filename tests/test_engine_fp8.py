"""The opt-in float8 linears: exact where float8 can represent the operands, within e4m3's rounding
bound elsewhere, with input bounds that hold for every input and are reached by some, converting
only the per-frame transformer linears of the UNet."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from engine_fixtures import control_sequence, tiny_settings
from torch import nn

from sonosteer.engine.quantize import (
    FP8_MAX,
    Fp8Linear,
    geglu_bound,
    layer_norm_bound,
    linear_after_norm_bounds,
    quantize_fp8,
    resolve_quantize,
    value_bound,
)
from sonosteer.engine.steered_engine import SteeredEngine

E4M3_RELATIVE_STEP = 2.0**-3  # 3 mantissa bits: neighbouring values differ by at most 1/8 relative


def _norm(channels: int, seed: int) -> nn.LayerNorm:
    gen = torch.Generator().manual_seed(seed)
    norm = nn.LayerNorm(channels)
    with torch.no_grad():
        norm.weight.copy_(1.0 + 0.5 * torch.randn(channels, generator=gen))
        norm.bias.copy_(0.2 * torch.randn(channels, generator=gen))
    return norm


def test_operands_that_float8_represents_give_the_exact_product():
    gen = torch.Generator().manual_seed(0)
    linear = nn.Linear(64, 48)
    with torch.no_grad():
        # Entries from {-2, -1, 0, 1, 2}, largest 2: scaled by 448/2 they are +-224 and +-448, all e4m3 values.
        linear.weight.copy_(torch.randint(-2, 3, (48, 64), generator=gen).float())
        linear.weight[0, 0] = 2.0
        linear.bias.copy_(torch.randn(48, generator=gen))
    x = torch.randint(-2, 3, (5, 7, 64), generator=gen).float()
    out = Fp8Linear(linear, input_bound=2.0)(x)
    assert out.shape == (5, 7, 48)
    torch.testing.assert_close(out, linear(x), rtol=0, atol=1e-5)


def test_random_operands_stay_within_float8_rounding_however_loose_the_bound():
    gen = torch.Generator().manual_seed(1)
    linear = nn.Linear(256, 128)
    x = torch.randn(32, 256, generator=gen)
    reference = linear(x).detach()
    product = reference - linear.bias.detach()
    for headroom in (1.0, 30.0, 1000.0):  # float8 is floating point: a looser scale keeps the relative step
        fp8 = Fp8Linear(linear, input_bound=headroom * float(x.abs().max()))
        err = float(((fp8(x) - reference).norm(dim=1) / product.norm(dim=1)).max())
        # Each operand's rounding error is at most half a step (1/16) and ~1/16/sqrt(3) on average; both together ~5 %.
        assert 0.005 < err < E4M3_RELATIVE_STEP / 2, (headroom, err)
    assert fp8.weight_fp8.dtype == torch.float8_e4m3fn and float(fp8.weight_fp8.float().abs().max()) == FP8_MAX


def test_inputs_beyond_the_bound_saturate_instead_of_overflowing():
    linear = nn.Linear(32, 16)
    x = torch.linspace(-50.0, 50.0, 32).expand(3, 32)
    out = Fp8Linear(linear, input_bound=1.0)(x)
    assert torch.isfinite(out).all()
    reference = linear(x.clamp(-1.0, 1.0)).detach()
    assert float((out - reference).norm() / (reference - linear.bias.detach()).norm()) < E4M3_RELATIVE_STEP / 2


def test_layer_norm_bound_holds_for_any_input_and_a_spike_reaches_it():
    norm = _norm(96, seed=2)
    bound = layer_norm_bound(norm)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2000, 96, generator=gen) * torch.logspace(-3, 3, 2000).unsqueeze(1)
    assert float(norm(x).detach().abs().max()) <= bound
    worst = int((norm.weight.abs() * math.sqrt(95) + norm.bias.abs()).argmax())
    spike = torch.zeros(1, 96)
    spike[0, worst] = 1e3 * float(torch.sign(norm.weight[worst] * norm.bias[worst]) or 1.0)
    assert float(norm(spike).abs().max()) == pytest.approx(bound, rel=1e-4)
    plain = nn.LayerNorm(96, elementwise_affine=False)  # no gamma or beta: the bound is sqrt(C - 1) itself
    assert layer_norm_bound(plain) == pytest.approx(math.sqrt(95))
    assert (linear_after_norm_bounds(nn.Linear(96, 4), plain) > 0).all()


def test_linear_after_norm_bound_holds_and_its_worst_direction_reaches_it():
    norm, linear = _norm(64, seed=4), nn.Linear(64, 40)
    bounds = linear_after_norm_bounds(linear, norm).detach()
    x = torch.randn(3000, 64, generator=torch.Generator().manual_seed(5)) * 10.0
    assert (linear(norm(x)).abs().max(dim=0).values <= bounds * (1 + 1e-5)).all()
    # The standardised input that points along row j's zero-mean part of w_j * gamma attains row j's bound.
    j = 7
    direction = (linear.weight[j] * norm.weight).detach()
    direction = direction - direction.mean()
    offset = float(linear.weight[j] @ norm.bias + linear.bias[j])
    z = direction / direction.std(unbiased=False) * (1.0 if offset >= 0 else -1.0)
    reached = float(linear(norm(z.unsqueeze(0)))[0, j].abs())
    assert reached == pytest.approx(float(bounds[j]), rel=1e-3)


def test_geglu_bound_holds_for_any_input():
    from diffusers.models.activations import GEGLU

    norm, geglu = _norm(48, seed=6), GEGLU(48, 64)
    bound = geglu_bound(geglu, norm)
    x = torch.randn(4000, 48, generator=torch.Generator().manual_seed(7)) * 5.0
    observed = float(geglu(norm(x)).abs().max())
    assert observed <= bound
    hidden, gate = linear_after_norm_bounds(geglu.proj, norm).detach().chunk(2)
    assert bound == pytest.approx(float((hidden * gate.clamp(min=float(-F.gelu(torch.tensor(-0.7518))))).max()), rel=1e-3)


def test_quantized_engine_converts_the_transformer_linears_and_stays_close(tiny_weights, monkeypatch):
    import sonosteer.engine.steered_engine as steered_engine

    counted: list[int] = []

    def quantize_small(unet, **options):  # the tiny UNet's linears are narrower than the full model's 640
        replaced = quantize_fp8(unet, min_features=32, **options)
        counted.append(len(replaced))
        return replaced

    plain = SteeredEngine.from_settings(tiny_settings(tiny_weights))
    monkeypatch.setattr(steered_engine, "quantize_fp8", quantize_small)
    fast = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="fp8"))
    assert counted[0] > 0 and "fp8 linears (x0 " in fast.label
    assert 0.0 < fast.float8_x0_error < 0.1  # measured at build on the engine's first frame
    converted = {n: m for n, m in fast.generator.unet.named_modules() if isinstance(m, Fp8Linear)}
    assert len(converted) == counted[0]
    # Only linears fed by a layer norm or the GEGLU: self-attention QKV, cross-attention query, feed-forward.
    assert {".".join(n.split(".")[-2:]) for n in converted} == {"attn1.to_qkv", "attn2.to_q", "0.proj", "net.2"}
    assert not any("kv_source" in n or "to_out" in n or "proj_in" in n for n in converted)
    assert all(m.fast_accum for m in converted.values())  # the default: the tensor cores' own accumulation
    inputs: dict[str, float] = {}
    hooks = [
        m.register_forward_pre_hook(lambda m, args, name=n: inputs.__setitem__(name, float(args[0].abs().max())))
        for n, m in converted.items()
    ]
    for controls in control_sequence()[:3]:
        plain.apply(controls)
        fast.apply(controls)
        with torch.no_grad():
            x0_plain, x0_fast = plain.generator.denoise(), fast.generator.denoise()
        rel = float((x0_fast - x0_plain).norm() / x0_plain.norm())
        assert 0.0 < rel < 0.1, rel
        assert np.abs(fast.render().astype(int) - plain.render().astype(int)).mean() < 10
        assert all(inputs[n] <= m.input_bound for n, m in converted.items())  # no input ever saturates
    for hook in hooks:
        hook.remove()


@pytest.mark.parametrize("fast_accum", [False, True])
def test_the_accumulation_setting_reaches_every_float8_gemm(tiny_weights, monkeypatch, fast_accum):
    import sonosteer.engine.steered_engine as steered_engine

    monkeypatch.setattr(
        steered_engine, "quantize_fp8", lambda unet, **options: quantize_fp8(unet, min_features=32, **options)
    )
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="fp8", fp8_fast_accum=fast_accum))
    scaled_mm, seen = torch._scaled_mm, []

    def recording(*args, **kwargs):
        seen.append(kwargs.get("use_fast_accum", False))
        return scaled_mm(*args, **kwargs)

    monkeypatch.setattr(torch, "_scaled_mm", recording)
    with torch.no_grad():
        engine.generator.denoise()
    assert len(seen) == sum(isinstance(m, Fp8Linear) for m in engine.generator.unet.modules()) > 0
    assert set(seen) == {fast_accum}


def test_a_unet_without_transformers_converts_nothing_and_explicit_fp8_is_refused_there(tiny_weights):
    assert quantize_fp8(nn.Sequential(nn.Linear(1024, 1024))) == []
    # The tiny model's linears are narrower than float8 pays for: "auto" renders in fp16, "fp8" says why not.
    assert SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="auto")).quantize == "none"
    with pytest.raises(ValueError, match="no transformer linears"):
        SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="fp8"))


def test_auto_means_float8_only_where_the_gpu_has_it_and_exact_means_the_fp16_reference_path():
    import argparse

    from sonosteer.engine.cli_options import add_exact_argument, add_weights_arguments, settings_from_args

    assert resolve_quantize("auto", torch.device("cpu")) == "none"
    assert resolve_quantize("none", torch.device("cpu")) == "none"
    assert resolve_quantize("fp8", torch.device("cpu")) == "fp8"  # emulated: what the CPU tests check
    parser = argparse.ArgumentParser()
    add_weights_arguments(parser)
    add_exact_argument(parser)
    default, exact = (settings_from_args(parser.parse_args(argv)) for argv in ([], ["--exact"]))
    assert (default.attention, default.quantize) == ("fast", "auto")
    assert exact.attention == "reference"
    exact.validate()
    # The reference path stays fp16 under "auto" even on a float8 GPU (decided before the GPU is asked).
    assert resolve_quantize(exact.quantize, torch.device("cuda"), exact.attention) == "none"


@pytest.mark.parametrize("tolerance", [0.0, 1.0])
def test_auto_keeps_float8_only_within_the_x0_tolerance_on_the_model_in_hand(tiny_weights, monkeypatch, tolerance):
    import sonosteer.engine.steered_engine as steered_engine

    plain = SteeredEngine.from_settings(tiny_settings(tiny_weights))
    monkeypatch.setattr(steered_engine, "resolve_quantize", lambda *args: "fp8")  # as on a float8 GPU
    monkeypatch.setattr(steered_engine, "quantize_fp8", lambda unet, **options: quantize_fp8(unet, min_features=32, **options))
    monkeypatch.setattr(steered_engine, "FLOAT8_X0_TOLERANCE", tolerance)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="auto"))
    converted = any(isinstance(m, Fp8Linear) for m in engine.generator.unet.modules())
    assert engine.float8_x0_error is not None and engine.float8_x0_error > 0.0
    controls = control_sequence()[1]
    plain.apply(controls)
    engine.apply(controls)
    with torch.no_grad():
        x0, x0_plain = engine.generator.denoise(), plain.generator.denoise()
    if tolerance == 0.0:  # beyond tolerance: the fp16 linears are back, bit for bit, and the user is told
        assert engine.quantize == "none" and not converted and "fp8" not in engine.label
        assert any("rendering in fp16" in str(w.message) for w in caught)
        torch.testing.assert_close(x0, x0_plain, rtol=0, atol=0)
    else:
        assert engine.quantize == "fp8" and converted and not any("rendering in fp16" in str(w.message) for w in caught)
        assert not torch.equal(x0, x0_plain)


def test_self_attention_output_bound_holds_for_any_input():
    from diffusers.models.attention_processor import Attention

    torch.manual_seed(8)
    norm, attn = _norm(64, seed=8), Attention(64, heads=2, dim_head=32)
    bound = value_bound(attn, norm)
    x = torch.randn(50, 20, 64, generator=torch.Generator().manual_seed(9)) * torch.logspace(-2, 2, 50).view(-1, 1, 1)
    with torch.no_grad():
        h = norm(x)
        split = lambda t: t.view(50, 20, 2, 32).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(attn.to_q(h)), split(attn.to_k(h)), split(attn.to_v(h)))
        attn.fuse_projections()
    assert 0.0 < float(out.abs().max()) <= bound
    assert value_bound(attn, norm) == pytest.approx(bound, rel=1e-6)  # the V rows of the fused QKV


def test_float8_attention_outputs_convert_both_output_projections_and_stay_close(tiny_weights, monkeypatch):
    import sonosteer.engine.steered_engine as steered_engine

    plain = SteeredEngine.from_settings(tiny_settings(tiny_weights))
    monkeypatch.setattr(steered_engine, "triton_missing", lambda device: None)  # as with Triton on CUDA
    monkeypatch.setattr(steered_engine, "quantize_fp8", lambda unet, **options: quantize_fp8(unet, min_features=32, **options))
    fast = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="fp8"))
    assert fast.attention_kernel == "triton" and "fp8 attention outputs" in fast.label
    outputs = {n: m for n, m in fast.generator.unet.named_modules() if n.endswith("to_out.0")}
    assert outputs and all(isinstance(m, Fp8Linear) for m in outputs.values())
    assert fast.fp8_attention_outputs == len(outputs)
    # Self-attention at a fixed bound from the weights; cross-attention at a scale set per prompt pair.
    assert all((m.input_bound is None) == (".attn2." in n) for n, m in outputs.items())
    with pytest.raises(ValueError, match="float8 input with its scale"):
        next(m for n, m in outputs.items() if ".attn2." in n)(torch.zeros(1, 4, next(iter(outputs.values())).in_features))
    for controls in control_sequence()[:3]:
        plain.apply(controls)
        fast.apply(controls)
        with torch.no_grad():
            x0_plain, x0_fast = plain.generator.denoise(), fast.generator.denoise()
        assert 0.0 < float((x0_fast - x0_plain).norm() / x0_plain.norm()) < 0.1


def test_a_transformer_block_with_every_float8_kernel_wired_stays_close_to_fp16():
    from diffusers.models.attention import BasicTransformerBlock

    from sonosteer.engine.fast_attention import install_fast_attention
    from sonosteer.engine.slerp import slerp

    torch.manual_seed(10)
    block = BasicTransformerBlock(128, 2, 64, cross_attention_dim=64).eval()
    hidden = torch.randn(1, 96, 128)
    text_a, text_b = torch.randn(1, 7, 64), torch.randn(1, 7, 64)
    with torch.no_grad():
        expected = block(hidden, encoder_hidden_states=slerp(text_a, text_b, 0.3))
        kv = install_fast_attention(block, sequence_length=7, kernel="triton")
        kv.set_pair(kv.project(text_a), kv.project(text_b), text_a, text_b)
        kv(torch.tensor(0.3))
        exact = block(hidden)
        replaced = quantize_fp8(block, min_features=128, fuse_geglu=True, attention_outputs=True)
        fast = block(hidden)
    torch.testing.assert_close(exact, expected, rtol=1e-4, atol=1e-4)  # the fast path itself is exact
    assert {type(getattr(parent, name)).__name__ for parent, name, _ in replaced} == {"Fp8Linear", "Fp8Geglu"}
    assert len(replaced) == 6  # QKV, query, both output projections, GEGLU, feed-forward out
    assert block.attn2.to_q.in_features % 128 == 0  # so the attention kernel computes the query itself
    assert 0.0 < float((fast - exact).norm() / (exact - hidden).norm()) < 0.1
