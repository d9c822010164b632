"""Our split-K float8 GEMM: the op is x W^T times both scales plus the bias (checked against a float64
product and against torch's float8 GEMM), Fp8Linear routes to it only where the widths fit, a fake
kernel agrees with the op; on a GPU, the Triton kernel matches cuBLASLt's float8 GEMM on the frame's
shapes, leaves its counters at zero, and replays in a CUDA graph."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sonosteer.engine.fp8_gemm import TILE_COUNTERS, fits, fp8_gemm, launch, new_counters, probe
from sonosteer.engine.quantize import FP8, FP8_MAX, Fp8Linear, to_fp8


def _operands(rows: int, k: int, n: int, seed: int, device: str = "cpu"):
    gen = torch.Generator(device=device).manual_seed(seed)
    x_scale = torch.tensor(3.0 / FP8_MAX, device=device)
    w_scale = torch.tensor(0.05 / FP8_MAX, device=device)
    x = to_fp8(torch.randn(rows, k, device=device, generator=gen), x_scale)
    weight = to_fp8(torch.randn(n, k, device=device, generator=gen) * 0.02, w_scale)
    bias = torch.randn(n, device=device, generator=gen).to(torch.float16)
    return x, weight, x_scale, w_scale, bias


def test_the_op_is_the_scaled_product_plus_bias():
    x, weight, x_scale, w_scale, bias = _operands(40, 256, 64, seed=0)
    got = fp8_gemm(x, weight, x_scale, w_scale, bias, new_counters(torch.device("cpu")), torch.float16)
    expected = x.double() @ weight.double().t() * (float(x_scale) * float(w_scale)) + bias.double()
    assert got.dtype == torch.float16 and got.shape == (40, 64)
    torch.testing.assert_close(got.double(), expected, rtol=2e-3, atol=2e-3)  # fp16 rounding of the output
    no_bias = fp8_gemm(x, weight, x_scale, w_scale, None, new_counters(torch.device("cpu")), torch.bfloat16)
    assert no_bias.dtype == torch.bfloat16
    torch.testing.assert_close(no_bias.double(), expected - bias.double(), rtol=1e-2, atol=1e-2)


def test_the_op_fake_kernel_agrees_with_the_op():
    x, weight, x_scale, w_scale, bias = _operands(16, 128, 64, seed=1)
    counters = new_counters(torch.device("cpu"))
    torch.library.opcheck(fp8_gemm, (x, weight, x_scale, w_scale, bias, counters, torch.float16), test_utils=("test_faketensor",))
    torch.library.opcheck(fp8_gemm, (x, weight, x_scale, w_scale, None, counters, torch.float16), test_utils=("test_faketensor",))


@pytest.mark.skipif(not hasattr(torch, "_scaled_mm"), reason="needs torch's float8 GEMM")
def test_fp8_linear_with_counters_computes_what_cublaslt_s_path_computes():
    linear = nn.Linear(256, 128).half()
    counters = new_counters(torch.device("cpu"))
    ours, theirs = Fp8Linear(linear, 4.0, gemm_counters=counters), Fp8Linear(linear, 4.0)
    assert ours.gemm_counters is counters and theirs.gemm_counters is None
    x = torch.randn(2, 24, 256).clamp(-4, 4).half()
    try:
        expected = theirs(x)
    except (RuntimeError, NotImplementedError) as error:  # a torch without CPU float8 GEMMs
        pytest.skip(f"torch._scaled_mm does not run on CPU here: {error}")
    torch.testing.assert_close(ours(x).float(), expected.float(), rtol=1e-2, atol=1e-2)
    assert "split-K" in repr(ours) and "cuBLASLt" in repr(theirs)


def test_only_linears_that_fit_the_tiles_take_our_kernel():
    assert fits(1280, 1280) and fits(5120, 1280) and fits(640, 1920)
    assert not fits(1280, 1000) and not fits(1000, 1280)
    counters = new_counters(torch.device("cpu"))
    odd = Fp8Linear(nn.Linear(1280, 1000).half(), 4.0, gemm_counters=counters)
    assert odd.gemm_counters is None  # keeps cuBLASLt's GEMM


def test_the_probe_names_what_is_missing_off_cuda():
    assert "CUDA only" in probe(torch.device("cpu"))


# --- on a GPU: the Triton kernel ------------------------------------------------------------------


def _float8_gpu() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


needs_gpu = pytest.mark.gpu(pytest.mark.skipif(not _float8_gpu(), reason="needs a GPU with float8 tensor cores"))


@needs_gpu
@pytest.mark.parametrize(
    ("rows", "k", "n", "bias"),
    [(256, 1280, 1280, True), (256, 5120, 1280, True), (256, 1280, 3840, False), (1024, 2560, 640, True), (2048, 640, 1920, False), (100, 1280, 1280, True)],
)
def test_the_kernel_matches_cublaslt_and_leaves_its_counters_at_zero(rows, k, n, bias):
    x, weight, x_scale, w_scale, b = _operands(rows, k, n, seed=rows + k + n, device="cuda")
    b = b if bias else None
    counters = new_counters(torch.device("cuda"))
    expected = torch._scaled_mm(x, weight.t(), scale_a=x_scale, scale_b=w_scale, bias=b, out_dtype=torch.float16)
    for _ in range(3):  # autotuning runs every tiling (every split) on the same counters
        got = fp8_gemm(x, weight, x_scale, w_scale, b, counters, torch.float16)
        torch.cuda.synchronize()
        torch.testing.assert_close(got.float(), expected.float(), rtol=2e-3, atol=2e-3)
        assert int(counters.abs().sum()) == 0
    for split in (2, 4):  # each split of a tiling, not only the one the autotuner picked
        got = launch(x, weight, x_scale, w_scale, b, counters, torch.float16, tiles=(64, 64, split))
        torch.testing.assert_close(got.float(), expected.float(), rtol=2e-3, atol=2e-3)
    assert int(counters.abs().sum()) == 0


@needs_gpu
def test_many_launches_share_one_set_of_counters_in_a_cuda_graph():
    shapes = [(256, 1280, 1280), (256, 5120, 1280), (256, 1280, 3840)] * 20
    operands = [_operands(*shape, seed=i, device="cuda") for i, shape in enumerate(shapes)]
    counters = new_counters(torch.device("cuda"))
    for x, w, xs, ws, b in operands[:3]:  # autotune before capture
        fp8_gemm(x, w, xs, ws, b, counters, torch.float16)
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream), torch.cuda.graph(graph):
        outs = [fp8_gemm(x, w, xs, ws, b, counters, torch.float16) for x, w, xs, ws, b in operands]
    for seed in (10, 11):
        gen = torch.Generator(device="cuda").manual_seed(seed)
        for x, *_ in operands:  # new inputs in place, as a frame's buffers change
            x.copy_(to_fp8(torch.randn(x.shape, device="cuda", generator=gen), 3.0 / FP8_MAX))
        graph.replay()
        torch.cuda.synchronize()
        for out, (x, w, xs, ws, b) in zip(outs, operands):
            expected = torch._scaled_mm(x, w.t(), scale_a=xs, scale_b=ws, bias=b, out_dtype=torch.float16)
            torch.testing.assert_close(out.float(), expected.float(), rtol=2e-3, atol=2e-3)
        assert int(counters.abs().sum()) == 0
    assert counters.numel() == TILE_COUNTERS and probe(torch.device("cuda")) is None


@needs_gpu
def test_float8_input_of_the_linear_runs_our_kernel_with_its_scale():
    linear = nn.Linear(1280, 1280).half().cuda()
    layer = Fp8Linear(linear, None, gemm_counters=new_counters(torch.device("cuda")))  # a cross-attention output
    scale = torch.tensor(2.0 / FP8_MAX, device="cuda")
    x = to_fp8(torch.randn(1, 256, 1280, device="cuda"), scale)
    assert x.dtype == FP8
    expected = (x.float() * scale) @ linear.weight.float().t() + linear.bias.float()
    got = layer(x, scale)
    assert got.shape == (1, 256, 1280)
    assert float((got.float() - expected).norm() / expected.norm()) < 0.05  # the weight's float8 rounding
