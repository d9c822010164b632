"""The float8 linear's TMA GEMM: the op is `torch._scaled_mm`'s arithmetic (CPU), `Fp8Linear` routes to it
only where it fits, `quantize_fp8(tma=True)` gives it to the linears of up to 1280 inputs and keeps
cuBLASLt for the wider ones, the engine names it; on a Hopper GPU the Triton kernel computes what
cuBLASLt does, ragged rows included, and compiles."""

from __future__ import annotations

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention import BasicTransformerBlock
from engine_fixtures import tiny_settings
from torch import nn

from sonosteer.engine.architectures import SDXL_TURBO_UNET_CONFIG
from sonosteer.engine.fused_geglu import TMA_MAX_PROGRAMS, Fp8Geglu, tma_programs
from sonosteer.engine.quantize import FP8_MAX, Fp8Linear, quantize_fp8, to_fp8
from sonosteer.engine.steered_engine import SteeredEngine
from sonosteer.engine.tma_linear import (
    TMA_MAX_IN_FEATURES,
    TUNED_TILINGS,
    beats_cublaslt,
    linear_fp8_tma,
    run_counting_tma_gemms,
    tiling,
    tma_fits,
)


def _operands(rows: int, features: int, width: int, device: str = "cpu", seed: int = 0):
    generator = torch.Generator(device=device).manual_seed(seed)
    x = to_fp8(torch.randn(rows, features, device=device, generator=generator) * 2.0, 8.0 / FP8_MAX)
    weight = to_fp8(torch.randn(width, features, device=device, generator=generator) * 0.03, 0.15 / FP8_MAX)
    scale_a = torch.tensor(8.0 / FP8_MAX, device=device)
    scale_b = torch.tensor(0.15 / FP8_MAX, device=device)
    bias = (torch.randn(width, device=device, generator=generator) * 0.1).half()
    return x, weight, scale_a, scale_b, bias


@pytest.mark.parametrize("with_bias", [True, False])
def test_the_op_is_scaled_mm_per_tensor(with_bias):
    x, weight, scale_a, scale_b, bias = _operands(40, 64, 48)
    bias = bias if with_bias else None
    out = linear_fp8_tma(x, weight, scale_a, scale_b, bias, torch.float16)
    expected = torch._scaled_mm(x, weight.t(), scale_a=scale_a, scale_b=scale_b, bias=bias, out_dtype=torch.float16)
    assert out.dtype == torch.float16 and out.shape == (40, 48)
    assert float((out.float() - expected.float()).abs().max()) <= 2e-3 * float(expected.float().abs().max())
    torch.library.opcheck(linear_fp8_tma, (x, weight, scale_a, scale_b, bias, torch.float16), test_utils=("test_faketensor",))


def test_fp8_linear_routes_to_the_tma_gemm_only_where_it_fits():
    torch.manual_seed(1)
    linear = nn.Linear(128, 96)
    x = torch.randn(3, 50, 128)
    library, ours = Fp8Linear(linear, input_bound=8.0), Fp8Linear(linear, input_bound=8.0, tma=True)
    assert not library.tma and ours.tma and "TMA GEMM" in repr(ours)
    with torch.no_grad():
        y, expected, exact = ours(x), library(x), linear(x)
    assert y.shape == (3, 50, 96)
    assert float((y - expected).norm() / expected.norm()) < 1e-3  # the same float8 arithmetic
    assert 0.0 < float((y - exact).norm() / exact.norm()) < 0.08  # float8 rounding of both operands
    scale = torch.tensor(8.0 / FP8_MAX)  # the per-prompt-pair input of a cross-attention output projection
    rows = to_fp8(x.reshape(-1, 128), scale)
    per_pair = Fp8Linear(linear, input_bound=None, tma=True)
    assert torch.equal(per_pair(rows, scale), ours(rows).reshape(-1, 96))
    with pytest.raises(ValueError, match="TMA GEMM takes up to 1280"):
        Fp8Linear(nn.Linear(TMA_MAX_IN_FEATURES * 2, 64), input_bound=1.0, tma=True)
    assert tma_fits(1280) and tma_fits(640) and not tma_fits(2560) and not tma_fits(72)


def test_quantize_gives_the_tma_gemm_to_the_narrow_linears_and_keeps_cublaslt_for_the_wide():
    torch.manual_seed(2)
    block = BasicTransformerBlock(640, 10, 64, cross_attention_dim=128).eval()  # an SDXL block at 32x32
    quantize_fp8(block, fuse_geglu=True, tma=True)
    linears = {name: m for name, m in block.named_modules() if isinstance(m, Fp8Linear)}
    assert {name for name, m in linears.items() if m.tma} == {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn2.to_q"}
    assert not linears["ff.net.2"].tma and linears["ff.net.2"].in_features == 2560
    assert isinstance(block.ff.net[0], Fp8Geglu) and block.ff.net[0].tma


def test_tiling_is_the_tuned_one_at_the_frames_shapes_and_wide_only_with_rows_to_fill_it_elsewhere():
    assert tiling(256, 1280, 1280) == tiling(256, 1280, 3840) == (64, 64, 128, 4, 4)  # batch 1 at 512 px
    assert tiling(1024, 640, 640)[:2] == (128, 64) and tiling(1024, 640, 1920)[:2] == (64, 128)
    assert tiling(512, 1280, 3840)[:2] == (128, 64)  # batch 2: the batch-1 tiles took 38 % longer than cuBLASLt
    assert tiling(384, 1280, 1280) == (64, 64, 128, 4, 4) and tiling(4096, 640, 640)[:2] == (128, 64)  # untuned


def test_our_gemm_runs_on_cuda_only_where_it_beat_cublaslt_and_at_any_shape_on_cpu():
    linear = Fp8Linear(nn.Linear(640, 640), input_bound=1.0, tma=True)
    frame_rows = {1: 1024, 2: 2048, 4: 4096}  # the 32x32 latent's tokens per call at batch 1, 2 and 4
    assert linear.runs_tma(frame_rows[1], on_cuda=True) and linear.runs_tma(frame_rows[2], on_cuda=True)
    assert not linear.runs_tma(frame_rows[4], on_cuda=True)  # cuBLASLt was faster at 4096 rows
    assert not linear.runs_tma(1000, on_cuda=True)  # never measured: cuBLASLt
    assert linear.runs_tma(frame_rows[4], on_cuda=False) and linear.runs_tma(1000, on_cuda=False)
    library = Fp8Linear(nn.Linear(640, 640), input_bound=1.0, tma=False)
    assert not library.runs_tma(frame_rows[1], on_cuda=True)
    assert all(beats_cublaslt(*shape) and tma_fits(shape[1]) for shape in TUNED_TILINGS)
    assert not beats_cublaslt(1024, 1280, 1280)  # a tie at batch 4: the library keeps it


def _transformer_linear_calls(size_px: int) -> set[tuple[int, int, int]]:
    """(rows, in, out) of every transformer linear call in one frame of the full-size SDXL-Turbo UNet at
    `size_px`, found on the meta device (shapes only: no weights, no arithmetic)."""
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SDXL_TURBO_UNET_CONFIG)
    calls: set[tuple[int, int, int]] = set()

    def note(module: nn.Linear, args: tuple) -> None:
        calls.add((args[0].numel() // module.in_features, module.in_features, module.out_features))

    for name, module in unet.named_modules():
        if isinstance(module, nn.Linear) and ".transformer_blocks." in name:
            module.register_forward_pre_hook(note)
    latent = size_px // 8
    with torch.device("meta"):
        added = {"text_embeds": torch.empty(1, 1280), "time_ids": torch.empty(1, 6)}
        unet(torch.empty(1, 4, latent, latent), torch.tensor([999.0]), torch.empty(1, 77, 2048), added_cond_kwargs=added)
    return calls


def test_every_float8_gemm_of_a_512px_frame_has_a_tuned_tma_tiling():
    """The default measured at batch 1 (twelfth round) ran our kernels at all of the frame's eligible shapes."""
    calls = _transformer_linear_calls(512)
    geglus = {(rows, n // 2) for rows, k, n in calls if n == 8 * k}  # the GEGLU's projection: hidden and gate, 4 x wide
    gemms = {(rows, k, n) for rows, k, n in calls if tma_fits(k) and rows != 77 and n != 8 * k}  # 77: the prompt's
    assert {k for _, k, _ in gemms} == {640, 1280} and len(geglus) == 2
    for rows, k, n in gemms:  # the attention's self-attention Q, K and V run as one GEMM three times as wide
        assert beats_cublaslt(rows, k, n) and beats_cublaslt(rows, k, 3 * k), (rows, k, n)
    assert all(tma_programs(rows, width) <= TMA_MAX_PROGRAMS for rows, width in geglus)


def test_the_count_is_of_the_gemms_whose_shape_ran_our_kernel_and_the_hooks_go():
    torch.manual_seed(3)
    tuned, untuned = nn.Linear(640, 640), nn.Linear(640, 1280)  # (1024, 640, 1280) was never measured
    model = nn.Sequential(
        Fp8Linear(tuned, input_bound=4.0, tma=True), Fp8Linear(untuned, input_bound=4.0, tma=True),
    )
    x = torch.randn(1024, 640).clamp(-4, 4)  # the 32x32 latent's tokens at 640 features
    y, on_gpu = run_counting_tma_gemms(model, lambda: model(x), on_cuda=True)
    assert on_gpu == 1 and y.shape == (1024, 1280)
    y_again, on_cpu = run_counting_tma_gemms(model, lambda: model(x), on_cuda=False)
    assert on_cpu == 2 and torch.equal(y, y_again)
    assert not any(m._forward_pre_hooks for m in model)
    _, batch_4 = run_counting_tma_gemms(model, lambda: model(x.repeat(4, 1)), on_cuda=True)
    assert batch_4 == 0  # 4096 rows: cuBLASLt was faster at both


def test_the_engine_names_the_tma_gemms_and_renders(tiny_weights, monkeypatch):
    import sonosteer.engine.steered_engine as steered_engine

    monkeypatch.setattr(steered_engine, "resolve_quantize", lambda *args: "fp8")  # as on a Hopper GPU with Triton
    monkeypatch.setattr(steered_engine, "triton_missing", lambda device: None)
    monkeypatch.setattr(steered_engine, "tma_missing", lambda device: None)
    monkeypatch.setattr(steered_engine, "quantize_fp8", lambda unet, **options: quantize_fp8(unet, min_features=32, **options))
    ours = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="fp8"))
    library = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="fp8", tma_gemms=False))
    modules = list(ours.generator.unet.modules())
    expected = sum(isinstance(m, (Fp8Linear, Fp8Geglu)) and m.tma for m in modules)
    assert ours.tma_gemms == expected > 0 and f"TMA GEMMs ({expected})" in ours.label
    cross = [m for m in modules if getattr(m, "is_cross_attention", False) and isinstance(m.to_q, Fp8Linear)]
    assert cross and all(m.processor.triton for m in cross)  # our attention kernel runs their query GEMM ...
    assert not any(m.to_q.tma for m in cross)  # ... so it is neither given the TMA kernel nor counted
    assert library.tma_gemms == 0 and "TMA" not in library.label
    assert abs(ours.float8_x0_error - library.float8_x0_error) < 1e-3  # the same arithmetic
    assert ours.render().shape == library.render().shape


def _needs_tma_gpu(test):
    available = torch.cuda.is_available() and torch.cuda.get_device_capability() >= (9, 0)
    return pytest.mark.gpu(pytest.mark.skipif(not available, reason="needs a Hopper or newer GPU (TMA)")(test))


@_needs_tma_gpu
@pytest.mark.parametrize(
    ("rows", "features", "width"), [(256, 1280, 1280), (256, 1280, 3840), (1024, 640, 640), (1024, 640, 1920), (200, 1280, 1280)]
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_triton_kernel_computes_what_cublaslt_does(rows, features, width, with_bias):
    x, weight, scale_a, scale_b, bias = _operands(rows, features, width, device="cuda", seed=rows + width)
    bias = bias if with_bias else None
    out = torch.full((rows, width), float("nan"), device="cuda", dtype=torch.float16)
    del out  # the caching allocator hands the NaN-filled block to the op's output: unwritten elements show
    out = linear_fp8_tma(x, weight, scale_a, scale_b, bias, torch.float16)
    expected = torch._scaled_mm(x, weight.t(), scale_a=scale_a, scale_b=scale_b, bias=bias, out_dtype=torch.float16)
    assert not out.isnan().any()
    assert float((out.float() - expected.float()).norm() / expected.float().norm()) < 2e-3


@_needs_tma_gpu
def test_compiled_block_with_tma_gemms_matches_it_eagerly():
    torch.manual_seed(5)
    block = BasicTransformerBlock(640, 10, 64, cross_attention_dim=128).eval().half().cuda()
    hidden = torch.randn(1, 1024, 640, device="cuda", dtype=torch.float16)
    text = torch.randn(1, 77, 128, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        quantize_fp8(block, fuse_geglu=True, tma=True)
        eager = block(hidden, encoder_hidden_states=text).float()
        compiled = torch.compile(block, fullgraph=True)(hidden, encoder_hidden_states=text).float()
    assert float((compiled - eager).norm() / eager.norm()) < 0.02  # inductor may round the norms' casts differently
