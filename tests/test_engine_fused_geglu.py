"""The fused float8 GEGLU: diffusers' GEGLU within float8 rounding, the installed feed-forward close
to fp16 and restorable, the op's fake kernel consistent; on a GPU, the Triton kernel computes the
same function as the op's torch arithmetic."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU, SwiGLU
from diffusers.models.attention import BasicTransformerBlock
from engine_fixtures import tiny_settings
from torch import nn

from sonosteer.engine.fused_geglu import TMA_MAX_PROGRAMS, Fp8Geglu, fusable, geglu_fp8, tma_programs
from sonosteer.engine.steered_engine import SteeredEngine
from sonosteer.engine.quantize import FP8_MAX, Fp8Linear, geglu_bound, layer_norm_bound, quantize_fp8, restore, to_fp8


def _has_float8_gpu() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


def needs_float8_gpu(test):
    """A GPU test that skips where the GPU has no float8 tensor cores."""
    return pytest.mark.gpu(pytest.mark.skipif(not _has_float8_gpu(), reason="needs a GPU with float8 tensor cores")(test))


def _norm_and_geglu(width: int, inner: int, seed: int) -> tuple[nn.LayerNorm, GEGLU]:
    torch.manual_seed(seed)
    norm, geglu = nn.LayerNorm(width), GEGLU(width, inner)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_(0.0, 0.1)
    return norm, geglu


def test_fused_geglu_gives_diffusers_geglu_within_float8_rounding():
    norm, geglu = _norm_and_geglu(128, 256, seed=0)
    output_bound = geglu_bound(geglu, norm)
    fused = Fp8Geglu(geglu, layer_norm_bound(norm), output_bound)
    x = norm(torch.randn(300, 128, generator=torch.Generator().manual_seed(1)) * 3.0).detach()
    with torch.no_grad():
        y, expected = fused(x), geglu(x)
    assert y.dtype == torch.float8_e4m3fn and y.shape == expected.shape
    error = float((y.float() * output_bound / FP8_MAX - expected).norm() / expected.norm())
    # Float8 e4m3 rounds to 3 mantissa bits (relative step 2^-3): inputs, weights and output each add
    # up to 6 %, and the loose fixed scales push small values into coarser subnormal steps.
    assert 0.0 < error < 0.12, error


def test_the_op_fake_kernel_and_schema_agree_with_the_op():
    x = to_fp8(torch.randn(64, 128), 4.0 / FP8_MAX)
    weight = to_fp8(torch.randn(512, 128) * 0.05, 0.25 / FP8_MAX)
    bias = torch.randn(512) * 0.1
    torch.library.opcheck(geglu_fp8, (x, weight, bias, 1e-4, 0.01), test_utils=("test_faketensor",))
    out = geglu_fp8(x, weight, bias, 1e-4, 0.01)
    hidden, gate = (x.float() @ weight.float().t() * 1e-4 + bias).chunk(2, dim=-1)
    assert out.shape == (64, 256)
    assert torch.equal(out, to_fp8(hidden * F.gelu(gate), 0.01))


def test_only_diffusers_geglus_that_fit_the_tiling_fuse():
    assert fusable(GEGLU(128, 256)) and fusable(GEGLU(1280, 5120))
    assert not fusable(GEGLU(96, 256))  # K not a multiple of 128
    assert not fusable(GEGLU(128, 200))  # N not a multiple of 128
    assert not fusable(SwiGLU(128, 256))  # another activation
    assert not fusable(nn.GELU())
    with pytest.raises(ValueError, match="does not fit"):
        Fp8Geglu(GEGLU(96, 256), 1.0, 1.0)


def test_fused_feed_forward_installs_stays_close_to_fp16_and_restores():
    torch.manual_seed(3)
    block = BasicTransformerBlock(128, 2, 64, cross_attention_dim=64).eval()
    net = block.ff.net
    original_geglu, original_out = net[0], net[2]
    hidden = torch.randn(2, 96, 128)
    text = torch.randn(2, 7, 64)
    with torch.no_grad():
        expected = block(hidden, encoder_hidden_states=text)
    replaced = quantize_fp8(block, min_features=128, fuse_geglu=True)
    assert isinstance(net[0], Fp8Geglu) and isinstance(net[2], Fp8Linear)
    assert net[0].output_bound == net[2].input_bound  # the kernel's float8 output is the next GEMM's input
    with torch.no_grad():
        fused = block(hidden, encoder_hidden_states=text)
    assert 0.0 < float((fused - expected).norm() / expected.norm()) < 0.05
    restore(replaced)
    assert net[0] is original_geglu and net[2] is original_out
    assert not any(isinstance(m, (Fp8Geglu, Fp8Linear)) for m in block.modules())


class _KernelThatFails(nn.Module):
    def forward(self, x):
        raise RuntimeError("Failed to find C compiler")  # what Triton says on a machine without one


def test_triton_kernels_that_fail_here_give_way_to_library_kernels(tiny_weights, monkeypatch):
    import sonosteer.engine.steered_engine as steered_engine

    calls: list[bool] = []

    def quantize(unet, fuse_geglu=False, convs=False, attention_outputs=False, fast_accum=False, tma=False):  # too narrow to fuse: plant a failure
        calls.append((fuse_geglu, convs, attention_outputs))
        replaced = quantize_fp8(unet, min_features=32)
        if fuse_geglu:
            block = next(m for m in unet.modules() if isinstance(m, BasicTransformerBlock))
            replaced.append((block.ff.net, "0", block.ff.net[0]))
            block.ff.net[0] = _KernelThatFails()
        return replaced

    monkeypatch.setattr(steered_engine, "resolve_quantize", lambda *args: "fp8")  # as on a float8 GPU
    monkeypatch.setattr(steered_engine, "triton_missing", lambda device: None)  # as with Triton on CUDA
    monkeypatch.setattr(steered_engine, "quantize_fp8", quantize)
    with pytest.warns(UserWarning, match="float8 Triton kernels failed on this machine"):
        engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, quantize="auto"))
    assert [(geglu, bool(convs), outputs) for geglu, convs, outputs in calls] == [(True, True, True), (False, False, False)]
    assert engine.quantize == "fp8" and engine.fused_geglus == engine.fp8_convs == 0
    assert "fused GEGLU" not in engine.label and "fp8 convs" not in engine.label
    assert not any(isinstance(m, _KernelThatFails) for m in engine.generator.unet.modules())
    assert any(isinstance(m, Fp8Linear) for m in engine.generator.unet.modules())
    assert 0.0 < engine.float8_x0_error < 0.1
    assert engine.render().shape == (engine.settings.height, engine.settings.width, 3)


def test_tma_loads_run_at_the_batches_where_they_were_faster_and_the_autotuned_kernel_beyond():
    assert tma_programs(256, 5120) == 320 and tma_programs(1024, 2560) == 640 <= TMA_MAX_PROGRAMS  # batch 1
    assert tma_programs(200, 5120) == tma_programs(256, 5120)  # ragged rows take a whole tile
    fused = Fp8Geglu(GEGLU(1280, 5120), input_bound=8.0, output_bound=3.0, tma=True)
    tokens = 256  # the 16x16 latent's, per image
    assert fused.runs_tma(tokens, on_cuda=True) and fused.runs_tma(2 * tokens, on_cuda=True)  # batch 1 and 2
    assert not fused.runs_tma(4 * tokens, on_cuda=True)  # batch 4: 1280 programs, the pointer kernel was faster
    assert fused.runs_tma(4 * tokens, on_cuda=False)  # on CPU the op is torch arithmetic either way
    assert not Fp8Geglu(GEGLU(1280, 5120), input_bound=8.0, output_bound=3.0).runs_tma(tokens, on_cuda=True)


@needs_float8_gpu
@pytest.mark.parametrize(("rows", "width", "inner"), [(256, 1280, 5120), (1024, 640, 2560), (200, 1280, 5120)])
@pytest.mark.parametrize(("pdl", "tma"), [(False, False), (True, False), (False, True), (True, True)])
def test_triton_kernel_computes_the_ops_arithmetic(rows, width, inner, pdl, tma):
    if (pdl or tma) and torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("programmatic dependent launch and TMA need Hopper or newer")
    generator = torch.Generator(device="cuda").manual_seed(rows)
    x = to_fp8(torch.randn(rows, width, device="cuda", generator=generator) * 2.0, 8.0 / FP8_MAX)
    weight = to_fp8(torch.randn(2 * inner, width, device="cuda", generator=generator) * 0.03, 0.15 / FP8_MAX)
    bias = torch.randn(2 * inner, device="cuda", generator=generator) * 0.1
    gemm_scale, out_scale = 8.0 / FP8_MAX * 0.15 / FP8_MAX, 3.0 / FP8_MAX
    poison = torch.full((rows, inner), float("nan"), device="cuda").to(torch.float8_e4m3fn)
    del poison  # the caching allocator hands its NaN-filled block to the op's output: unwritten elements show
    out = geglu_fp8(x, weight, bias, gemm_scale, out_scale, pdl, tma)
    expected = geglu_fp8(x.cpu(), weight.cpu(), bias.cpu(), gemm_scale, out_scale)
    if tma:  # the pointer kernel's arithmetic: the same bits but where its autotuning chose another K tiling
        pointer = geglu_fp8(x, weight, bias, gemm_scale, out_scale).float()
        assert (out.float() == pointer).float().mean() > 0.995
    assert not out.float().isnan().any()
    # Summation order differs from the CPU's: an element may round to the neighbouring float8 value.
    same = (out.cpu().float() == expected.float()).float().mean()
    assert same > 0.97, same
    error = float((out.cpu().float() - expected.float()).norm() / expected.float().norm())
    assert error < 0.01, error


@needs_float8_gpu
def test_compiled_block_with_the_fused_kernel_matches_it_eagerly():
    torch.manual_seed(4)
    block = BasicTransformerBlock(256, 4, 64, cross_attention_dim=128).eval().half().cuda()
    hidden = torch.randn(1, 256, 256, device="cuda", dtype=torch.float16)
    text = torch.randn(1, 77, 128, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        exact = block(hidden, encoder_hidden_states=text).float()
        quantize_fp8(block, min_features=128, fuse_geglu=True)
        assert isinstance(block.ff.net[0], Fp8Geglu)
        eager = block(hidden, encoder_hidden_states=text).float()
        compiled = torch.compile(block, fullgraph=True)(hidden, encoder_hidden_states=text).float()
    eager_error = float((eager - exact).norm() / exact.norm())
    compiled_error = float((compiled - exact).norm() / exact.norm())
    # Inductor may round the layer norm differently before the float8 cast (flipping some elements
    # by one float8 step), so the compiled block matches eager to within float8 error, not bitwise.
    print(f"float8 error against fp16: eager {eager_error:.4f}, compiled {compiled_error:.4f}")
    assert 0.0 < eager_error < 0.05 and compiled_error < 1.5 * eager_error + 1e-3
    assert float((compiled - eager).norm() / exact.norm()) < eager_error
