"""The float8 resnet convolution: PyTorch's convolution of the float8 operands, split partial sums
that add up, a bound its input never exceeds, the installed resnet close to fp32 and restorable; on
a GPU, the Triton kernel computes the op's arithmetic and a compiled resnet matches it eagerly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.resnet import ResnetBlock2D
from engine_fixtures import tiny_settings
from test_engine_fused_geglu import needs_float8_gpu
from torch import nn

from sonosteer.engine.fp8_conv import SPLIT_ROWS, Fp8Conv3x3, conv3x3_fp8, fusable, run_recording_conv_pixels
from sonosteer.engine.quantize import FP8_MAX, Fp8Linear, quantize_fp8, restore, to_fp8
from sonosteer.engine.steered_engine import SteeredEngine


def _operands(batch=2, channels=64, out_channels=96, height=6, width=5, seed=0, device="cpu"):
    """float8 input (channels-last), the float8 weight in PyTorch's (COUT, CIN, 3, 3) layout, and in the op's."""
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, channels, height, width, device=device, generator=generator) * 2.0
    x8 = to_fp8(x, 8.0 / FP8_MAX).contiguous(memory_format=torch.channels_last)
    kernel8 = to_fp8(torch.randn(out_channels, channels, 3, 3, device=device, generator=generator) * 0.05, 0.25 / FP8_MAX)
    taps8 = kernel8.permute(0, 2, 3, 1).reshape(out_channels, 9 * channels).contiguous()
    bias = torch.randn(out_channels, device=device, generator=generator) * 0.1
    return x8, kernel8, taps8, bias


def test_the_op_is_pytorchs_convolution_of_the_float8_operands():
    x8, kernel8, taps8, bias = _operands()
    expected = F.conv2d(x8.float(), kernel8.float(), bias, padding=1) * 1.0  # the (COUT, CIN, 3, 3) kernel, as PyTorch lays it out
    out = conv3x3_fp8(x8, taps8, bias, 1.0, 1, torch.float32)
    assert out.shape == expected.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-4)
    scaled = conv3x3_fp8(x8, taps8, bias * 0, 0.5, 1, torch.float32)
    torch.testing.assert_close(scaled, 0.5 * (expected - bias[None, :, None, None]), rtol=1e-5, atol=1e-4)


def test_split_partials_add_up_and_each_holds_its_own_taps():
    x8, kernel8, taps8, bias = _operands(seed=1)
    whole = conv3x3_fp8(x8, taps8, bias, 1.0, 1, torch.float32)
    partials = conv3x3_fp8(x8, taps8, bias, 1.0, 3, torch.float16)
    assert partials.shape == (3, *whole.shape) and partials.dtype == torch.float32  # partial sums stay float32
    torch.testing.assert_close(partials.sum(0), whole, rtol=1e-4, atol=1e-2)  # float32 sums in another order
    # The second split holds the middle row of taps (kernel row 1), without the bias.
    middle = torch.zeros_like(kernel8.float())
    middle[:, :, 1, :] = kernel8.float()[:, :, 1, :]
    torch.testing.assert_close(partials[1], F.conv2d(x8.float(), middle, padding=1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("split", [1, 3])
def test_the_ops_fake_kernel_and_schema_agree_with_the_op(split):
    x8, _, taps8, bias = _operands(batch=1, seed=2)
    torch.library.opcheck(conv3x3_fp8, (x8, taps8, bias, 0.01, split, torch.float16), test_utils=("test_faketensor",))


def _resnet(in_channels: int, out_channels: int, seed: int, **kwargs) -> ResnetBlock2D:
    torch.manual_seed(seed)
    resnet = ResnetBlock2D(in_channels=in_channels, out_channels=out_channels, temb_channels=32, **kwargs).eval()
    with torch.no_grad():
        for norm in (resnet.norm1, resnet.norm2):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_(0.0, 0.1)
    return resnet


def test_only_3x3_convolutions_after_a_group_norm_and_silu_fit():
    resnet = _resnet(64, 128, seed=0)
    assert [(name, norm) for name, norm in fusable(resnet)] == [("conv1", resnet.norm1), ("conv2", resnet.norm2)]
    assert [name for name, _ in fusable(_resnet(96, 128, seed=0))] == ["conv2"]  # 96 input channels: not a multiple of 64
    assert fusable(_resnet(64, 64, seed=0, up=True)) == []  # upsampling between the norm and the convolution
    assert fusable(_resnet(64, 64, seed=0, non_linearity="mish")) == []
    assert fusable(nn.Conv2d(64, 64, 3, padding=1)) == []


@pytest.mark.parametrize(("height", "width"), [(8, 8), (3, 5)])
def test_no_input_exceeds_the_bound_and_a_single_spike_reaches_it(height, width):
    norm = nn.GroupNorm(4, 64, eps=1e-9)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.weight[5] = 2.0  # the largest gamma, in group 0
        norm.bias.zero_()
    module = Fp8Conv3x3(nn.Conv2d(64, 64, 3, padding=1), norm)
    bound = module.input_bound(height, width)
    assert bound == pytest.approx(2.0 * math.sqrt(16 * height * width - 1))
    spike = torch.zeros(1, 64, height, width)
    spike[0, 5, 1, 2] = 1000.0
    random = torch.randn(50, 64, height, width) * torch.rand(50, 1, 1, 1) * 100
    with torch.no_grad():
        largest_spike = float(F.silu(norm(spike)).abs().max())
        largest_random = float(F.silu(norm(random)).abs().max())
    assert 0.999 * bound < largest_spike <= bound * (1 + 1e-6)  # attained, up to float32 rounding
    assert largest_random < bound


def test_installed_resnet_stays_close_to_float32_and_restores():
    resnet = _resnet(128, 64, seed=3)
    originals = resnet.conv1, resnet.conv2
    temb = torch.randn(2, 32)
    for height in (16, 32):  # 2 x 16 x 16 = 512 pixels are split over three programs, 2 x 32 x 32 are not
        x = torch.randn(2, 128, height, height)
        with torch.no_grad():
            expected = resnet(x, temb)
        replaced = quantize_fp8(resnet, convs=True)
        assert isinstance(resnet.conv1, Fp8Conv3x3) and isinstance(resnet.conv2, Fp8Conv3x3)
        assert (2 * height * height <= SPLIT_ROWS) == (height == 16)
        with torch.no_grad():
            quantized = resnet(x, temb)
        error = float((quantized - expected).norm() / expected.norm())
        # Float8 rounds inputs and weights to 3 mantissa bits (relative step 2^-3); the residual path
        # stays exact, and the loose fixed input scale costs precision only in the smallest values.
        assert 0.0 < error < 0.05, error
        restore(replaced)
        assert (resnet.conv1, resnet.conv2) == originals
        with torch.no_grad():
            assert torch.equal(resnet(x, temb), expected)


@needs_float8_gpu
@pytest.mark.parametrize(
    ("height", "channels", "out_channels", "split"),
    [(64, 320, 320, 1), (32, 1920, 640, 3), (16, 1280, 1280, 3), (16, 2560, 1280, 1), (9, 320, 200, 3)],
)
def test_triton_kernel_computes_the_ops_arithmetic(height, channels, out_channels, split):
    x8, _, taps8, bias = _operands(1, channels, out_channels, height, height, seed=height, device="cuda")
    poison = torch.full((split, 1, height, height, out_channels), float("nan"), device="cuda")
    del poison  # the caching allocator hands its NaN-filled block to the op's output: unwritten elements show
    gemm_scale = 0.1 / math.sqrt(9 * channels)  # keeps the sums of 9 x CIN products well inside fp16's range
    out = conv3x3_fp8(x8, taps8, bias, gemm_scale, split, torch.float16)
    expected = conv3x3_fp8(x8.cpu(), taps8.cpu(), bias.cpu(), gemm_scale, split, torch.float16)
    assert expected.float().isfinite().all()
    assert out.shape == expected.shape and out.stride() == expected.stride()
    assert not out.float().isnan().any()
    error = float((out.cpu().float() - expected.float()).norm() / expected.float().norm())
    # Hopper's float8 MMA accumulates with reduced precision over the 9 x CIN reduction: 0.19-0.38 %
    # measured on an H200 (2026-12-03) against the exact float32 sums of the CPU arithmetic.
    assert error < 6e-3, error


@needs_float8_gpu
def test_compiled_resnet_with_the_kernel_matches_it_eagerly():
    resnet = _resnet(640, 640, seed=4).half().cuda().to(memory_format=torch.channels_last)
    temb = torch.randn(1, 32, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        for height in (32, 16):  # unsplit and split
            x = torch.randn(1, 640, height, height, device="cuda", dtype=torch.float16).contiguous(memory_format=torch.channels_last)
            exact = resnet(x, temb).float()
            replaced = quantize_fp8(resnet, convs=True)
            eager = resnet(x, temb).float()
            compiled = torch.compile(resnet, fullgraph=True)(x, temb).float()
            restore(replaced)
            torch._dynamo.reset()
            eager_error = float((eager - exact).norm() / exact.norm())
            compiled_error = float((compiled - exact).norm() / exact.norm())
            print(f"{height}x{height}: float8 error against fp16: eager {eager_error:.4f}, compiled {compiled_error:.4f}")
            assert 0.0 < eager_error < 0.05 and compiled_error < 1.5 * eager_error + 1e-3


@needs_float8_gpu
def test_compiled_resnet_runs_no_layout_copy_before_the_kernel():
    resnet = _resnet(640, 640, seed=5).half().cuda().to(memory_format=torch.channels_last)
    temb = torch.randn(1, 32, device="cuda", dtype=torch.float16)
    x = torch.randn(1, 640, 16, 16, device="cuda", dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    replaced = quantize_fp8(resnet, convs=True)
    try:
        with torch.no_grad():
            compiled = torch.compile(resnet, fullgraph=True)
            compiled(x, temb)
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
                compiled(x, temb)
                torch.cuda.synchronize()
    finally:
        restore(replaced)
        torch._dynamo.reset()
    kernels = [event.name for event in profile.events() if event.device_type == torch.autograd.DeviceType.CUDA]
    assert sum("_conv3x3_fp8_kernel" in name for name in kernels) == 2
    # The input's channels-last layout comes from the kernel that casts it (an ATen copy inside the op
    # was one more kernel per convolution, 0.28 ms a frame on an H200).
    assert not [name for name in kernels if "at::native" in name], kernels


def test_recorded_pixels_are_each_convolutions_input_size():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.Conv2d(8, 4, 3, padding=1))
    x = torch.randn(2, 8, 8, 6)
    result, pixels = run_recording_conv_pixels(model, lambda: model(x))
    assert pixels == {id(model[0]): 48, id(model[1]): 48, id(model[2]): 12}  # per image: 8x6, then 4x3 after stride 2
    assert torch.equal(result, model(x))  # the hooks left the outputs alone
    assert all(not conv._forward_pre_hooks for conv in model)  # and are gone


def test_a_predicate_chooses_which_convolutions_become_float8():
    model = nn.ModuleList([_resnet(64, 64, seed=6), _resnet(64, 128, seed=7)])
    chosen = {id(model[0].conv2), id(model[1].conv1)}
    replaced = quantize_fp8(model, convs=lambda conv: id(conv) in chosen)
    kinds = [type(r.conv1).__name__ + "/" + type(r.conv2).__name__ for r in model]
    assert kinds == ["Conv2d/Fp8Conv3x3", "Fp8Conv3x3/Conv2d"]
    restore(replaced)
    assert not any(isinstance(m, Fp8Conv3x3) for m in model.modules())


def _float8_engine(tiny_weights, monkeypatch, plant=None, **settings):
    """The tiny engine built as on a float8 GPU with Triton (CPU arithmetic), float8 linears down to 32
    features; `plant(unet, chosen)` adds convolution replacements of its own to the plan."""
    import sonosteer.engine.steered_engine as steered_engine

    def quantize(unet, fuse_geglu=False, convs=False, attention_outputs=False, fast_accum=False, tma=False):
        replaced = quantize_fp8(unet, min_features=32)
        return replaced + (plant(unet, convs) if convs else [])

    monkeypatch.setattr(steered_engine, "resolve_quantize", lambda *args: "fp8")
    monkeypatch.setattr(steered_engine, "triton_missing", lambda device: None)
    monkeypatch.setattr(steered_engine, "quantize_fp8", quantize)
    return SteeredEngine.from_settings(tiny_settings(tiny_weights, fp8_convs=True, **settings))


def test_the_engine_converts_the_convolutions_up_to_the_pixel_limit(tiny_weights, monkeypatch):
    admitted = []

    def plant(unet, chosen):
        admitted.extend(conv for conv in unet.modules() if isinstance(conv, nn.Conv2d) and chosen(conv))
        return []

    # 128 px frames: a 16x16 latent, then 8x8 and 4x4; a limit of 16 pixels admits the 4x4 level alone,
    # the convolutions of its resnets (an upsampler's sees 8x8 after upsampling).
    unet = _float8_engine(tiny_weights, monkeypatch, plant, fp8_conv_max_pixels=16).generator.unet
    lowest = [*unet.down_blocks[-1].resnets, *unet.mid_block.resnets, *unet.up_blocks[0].resnets]
    expected = {id(conv) for resnet in lowest for conv in resnet.modules() if isinstance(conv, nn.Conv2d)}
    assert {id(conv) for conv in admitted} == expected and len(expected) >= 12


def test_auto_puts_the_float8_convolutions_back_first_when_they_move_x0_too_far(tiny_weights, monkeypatch):
    def plant(unet, chosen):
        resnet = next(m for m in unet.modules() if isinstance(m, ResnetBlock2D) and chosen(m.conv2))
        converted = Fp8Conv3x3(resnet.conv2, resnet.norm2)
        converted.weight_scale *= 30.0  # a convolution whose float8 output is far off
        original, resnet.conv2 = resnet.conv2, converted
        return [(resnet, "conv2", original)]

    with pytest.warns(UserWarning, match="float8 convolutions moved x0"):
        engine = _float8_engine(tiny_weights, monkeypatch, plant, quantize="auto", fp8_conv_max_pixels=None)
    unet = engine.generator.unet
    assert engine.quantize == "fp8" and engine.fp8_convs == 0 and "fp8 convs" not in engine.label
    assert not any(isinstance(m, Fp8Conv3x3) for m in unet.modules())
    assert any(isinstance(m, Fp8Linear) for m in unet.modules())  # the float8 linears stay
    assert 0.0 < engine.float8_x0_error < 0.02  # measured again without the convolutions
    assert engine.render().shape == (128, 128, 3)
