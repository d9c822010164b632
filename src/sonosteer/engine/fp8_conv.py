"""The UNet resnets' 3x3 convolutions in float8, as one implicit-GEMM Triton kernel (fast path, CUDA).

Each resnet convolution reads the output of a group norm and SiLU, so, like the float8 linears
(`quantize.py`), its input has a hard bound that follows from the norm's weights, and its float8
cast fuses into the kernel that makes it. PyTorch reaches no float8 convolution, so this one is a
GEMM over (pixel) x (tap, input channel) whose A tiles are gathered from the channels-last input
tap by tap, the zero padding a load mask; both scales and the bias are applied in its epilogue.
On an H100 the frame's 34 resnet convolutions, replayed alone, took 0.60 ms against cuDNN's 1.02
in fp16. All 34 take x0 to 2.1 % from fp16 (float8's rounding of their operands, measured with the
op's exact float32 arithmetic on CPU), the 24 at the 32x32 and 16x16 latents to 0.9 %: those are
what `EngineSettings.fp8_conv_max_pixels` chooses by default. In the frame those 24 took 0.14 ms
off an H200's graph, measured against cuDNN in one process (`EngineSettings.fp8_convs`, on by
default; `bench engine --no-fp8-convs`).

Below SPLIT_ROWS output pixels (the 32x32 and 16x16 levels) a tile has too few programs to fill
the GPU, so the nine taps are split over three programs that each write a float32 partial sum;
the module adds them in torch, which inductor fuses into the next kernel (the group norm's).

On CPU (and where Triton is missing) the op runs as the same arithmetic in torch.
"""

from __future__ import annotations

import math
from typing import Callable, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from sonosteer.engine.quantize import FP8_MAX, per_tensor_fp8, to_fp8

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only installs: the op's torch arithmetic is used instead
    triton = None

CHANNEL_MULTIPLE = 64
"""The kernel steps through input channels in tiles of 64 or 128 without masks; convolutions whose
input channels are not a multiple of 64 stay as they are."""
SPLIT_ROWS = 1024
"""At or below this many output pixels (batch x height x width) the taps are split over SPLITS programs."""
SPLITS = 3
SILU_NEGATIVE_MAX = 0.2785
"""Largest |silu(x)| for x < 0 (0.27846 at x = -1.2785)."""
T = TypeVar("T")


def _configs() -> list:
    """Tilings to autotune over (once per shape, at the first call): the winners of an H100 sweep of
    ~1000 (tile, warps, stages, split) choices at the SDXL resnet shapes, with runners-up."""
    shapes = [(64, 128, 64, 4, 5), (64, 128, 128, 4, 4), (64, 64, 128, 4, 4), (64, 128, 64, 4, 4), (128, 128, 128, 8, 4)]
    return [
        triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_warps=warps, num_stages=stages)
        for m, n, k, warps, stages in shapes
    ]


def _channel_tiles_that_fit(configs: list, named_args: dict, **kwargs) -> list:
    """Only tilings whose channel step divides the input channels (no step straddles two taps)."""
    return [c for c in configs if kwargs.get("CIN", named_args.get("CIN")) % c.kwargs["BLOCK_K"] == 0]


if triton is not None:

    @triton.autotune(
        configs=_configs(), key=["M", "H", "W", "CIN", "COUT", "SPLIT"],
        prune_configs_by={"early_config_prune": _channel_tiles_that_fit},
    )
    @triton.jit
    def _conv3x3_fp8_kernel(
        x_ptr, w_ptr, bias_ptr, out_ptr, M, H, W, gemm_scale, CIN: tl.constexpr, COUT: tl.constexpr,
        SPLIT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        """out[m, n] = sum_{tap, c} x[m + tap, c] w[n, tap, c] * gemm_scale + bias[n] for channels-last
        x (B*H*W, CIN) and w (COUT, 9 * CIN), padding 1: taps that leave the image read zeros.

        SPLIT > 1 splits the taps over that many programs per tile, each writing its own float32
        partial sum to out[split] (the bias in split 0's); the caller adds them up."""
        pid = tl.program_id(0)
        blocks_m = tl.cdiv(M, BLOCK_M)
        blocks_n = tl.cdiv(COUT, BLOCK_N)
        pid_m = pid % blocks_m  # neighbouring programs share one weight tile (read once from L2)
        pid_n = pid // blocks_m % blocks_n
        split = pid // (blocks_m * blocks_n)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, BLOCK_K)
        image = offs_m // (H * W)
        row = offs_m % (H * W) // W
        col = offs_m % W
        in_rows = offs_m < M
        in_cols = offs_n < COUT
        first_tap = split * (9 // SPLIT)
        w_ptrs = w_ptr + offs_n[:, None] * (9 * CIN) + first_tap * CIN + offs_k[None, :]
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in range(0, (9 // SPLIT) * CIN, BLOCK_K):  # BLOCK_K divides CIN: no step straddles two taps
            tap = first_tap + k // CIN
            channel = tl.multiple_of(k % CIN, BLOCK_K)  # keeps the loads vectorised along channels
            y = row + tap // 3 - 1
            x = col + tap % 3 - 1
            inside = in_rows & (y >= 0) & (y < H) & (x >= 0) & (x < W)
            pixel = (image * H + y) * W + x
            a = tl.load(x_ptr + pixel[:, None] * CIN + channel + offs_k[None, :], mask=inside[:, None], other=0.0)
            acc = tl.dot(a, tl.trans(tl.load(w_ptrs, mask=in_cols[:, None], other=0.0)), acc)
            w_ptrs += BLOCK_K
        bias = tl.load(bias_ptr + offs_n, mask=in_cols & (split == 0), other=0.0)
        out = acc * gemm_scale + bias[None, :]
        out_ptrs = out_ptr + split * M * COUT + offs_m[:, None] * COUT + offs_n[None, :]
        tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=in_rows[:, None] & in_cols[None, :])


def _split_kernels(weight: torch.Tensor, channels: int, split: int) -> list[torch.Tensor]:
    """The float32 (COUT, CIN, 3, 3) kernels of each split: its taps kept, the others zero."""
    taps = weight.float().reshape(weight.shape[0], 9, channels)
    kernels = []
    for part in range(split):
        kept = torch.zeros_like(taps)
        chosen = slice(part * 9 // split, (part + 1) * 9 // split)
        kept[:, chosen] = taps[:, chosen]
        kernels.append(kept.reshape(weight.shape[0], 3, 3, channels).permute(0, 3, 1, 2))
    return kernels


def _output(x: torch.Tensor, out_channels: int, split: int, dtype: torch.dtype) -> torch.Tensor:
    """(split, B, COUT, H, W) with channels-last strides per image (what the kernel writes), dropped to
    (B, COUT, H, W) when split is 1."""
    batch, _, height, width = x.shape
    out = x.new_empty((split, batch, height, width, out_channels), dtype=dtype).permute(0, 1, 4, 2, 3)
    return out[0] if split == 1 else out


@torch.library.custom_op("sonosteer::conv3x3_fp8", mutates_args=())
def conv3x3_fp8(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, gemm_scale: float, split: int, out_dtype: torch.dtype
) -> torch.Tensor:
    """conv2d(x, weight, padding=1) * gemm_scale + bias for float8 x (B, CIN, H, W) and float8 weight
    (COUT, 9 * CIN) in (tap, channel) order. split 1: (B, COUT, H, W) in out_dtype; split > 1:
    (split, B, COUT, H, W) float32 partial sums over the taps (the bias in the first) that add up to it."""
    batch, channels, height, width = x.shape
    out_channels = weight.shape[0]
    dtype = out_dtype if split == 1 else torch.float32
    if x.is_cuda and triton is not None:
        pixels = x.permute(0, 2, 3, 1).contiguous()  # a view when x is channels-last (as the UNet is on CUDA)
        out = _output(x, out_channels, split, dtype)
        rows = batch * height * width
        grid = lambda meta: (triton.cdiv(rows, meta["BLOCK_M"]) * triton.cdiv(out_channels, meta["BLOCK_N"]) * split,)  # noqa: E731
        _conv3x3_fp8_kernel[grid](
            pixels, weight, bias, out, rows, height, width, gemm_scale, CIN=channels, COUT=out_channels, SPLIT=split
        )
        return out
    parts = [F.conv2d(x.float(), kernel, padding=1) * gemm_scale for kernel in _split_kernels(weight, channels, split)]
    parts[0] = parts[0] + bias.float()[None, :, None, None]
    out = _output(x, out_channels, split, dtype)
    out.copy_(parts[0] if split == 1 else torch.stack(parts))
    return out


@conv3x3_fp8.register_fake
def _conv3x3_fp8_fake(x, weight, bias, gemm_scale, split, out_dtype):
    return _output(x, weight.shape[0], split, out_dtype if split == 1 else torch.float32)


def run_recording_conv_pixels(model: nn.Module, run: Callable[[], T]) -> tuple[T, dict[int, int]]:
    """run()'s result, and the input pixels per image (height x width) of each of `model`'s convolutions
    that it called, by module id."""
    pixels: dict[int, int] = {}

    def record(conv: nn.Module, args: tuple) -> None:  # a pre-hook that returned a value would replace the input
        pixels.setdefault(id(conv), args[0].shape[-2] * args[0].shape[-1])

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        result = run()
    finally:
        for hook in hooks:
            hook.remove()
    return result, pixels


def plain_3x3(conv: nn.Module) -> bool:
    """Whether `conv` is a plain 3x3 convolution with stride 1, padding 1, no dilation and no groups."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def fusable(resnet: nn.Module) -> list[tuple[str, nn.GroupNorm]]:
    """(name, the group norm before it) of each of `resnet`'s convolutions the kernel takes: diffusers'
    ResnetBlock2D with SiLU after affine group norms, 3x3 stride-1 convolutions with padding 1 and
    input channels a multiple of 64, reading the norm's output directly (no resampling in the block)."""
    from diffusers.models.resnet import ResnetBlock2D  # noqa: PLC0415 - engine-only import

    if type(resnet) is not ResnetBlock2D or not isinstance(resnet.nonlinearity, nn.SiLU):
        return []
    if resnet.upsample is not None or resnet.downsample is not None:
        return []
    names = []
    for conv_name, norm_name in (("conv1", "norm1"), ("conv2", "norm2")):
        conv, norm = getattr(resnet, conv_name), getattr(resnet, norm_name)
        if (
            isinstance(norm, nn.GroupNorm)
            and norm.affine
            and plain_3x3(conv)
            and conv.in_channels % CHANNEL_MULTIPLE == 0
        ):
            names.append((conv_name, norm))
    return names


class Fp8Conv3x3(nn.Module):
    """A resnet's 3x3 convolution in float8, its input silu(group_norm(.)) cast with a scale fixed
    from the largest value that can take (`input_bound`), its weight scaled per tensor."""

    def __init__(self, conv: nn.Conv2d, norm: nn.GroupNorm):
        super().__init__()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.out_dtype = conv.weight.dtype
        self.group_channels = norm.num_channels // norm.num_groups
        self.gamma_max = float(norm.weight.detach().abs().max())
        self.beta_max = float(norm.bias.detach().abs().max())
        taps = conv.weight.detach().permute(0, 2, 3, 1).reshape(self.out_channels, 9 * self.in_channels)
        weight_fp8, self.weight_scale = per_tensor_fp8(taps)
        self.register_buffer("weight_fp8", weight_fp8)
        bias = conv.bias.detach() if conv.bias is not None else conv.weight.new_zeros(self.out_channels)
        self.register_buffer("bias", bias.float().clone())

    def input_bound(self, height: int, width: int) -> float:
        """Largest |silu(group_norm(x))| for any x of this size: a group's standardised values stay
        within sqrt(n - 1) (n its element count, a single spike attains it), times gamma plus beta;
        SiLU keeps positive values below themselves and negative ones within SILU_NEGATIVE_MAX."""
        spike = math.sqrt(self.group_channels * height * width - 1)
        return max(self.gamma_max * spike + self.beta_max, SILU_NEGATIVE_MAX)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        input_scale = self.input_bound(height, width) / FP8_MAX
        split = SPLITS if batch * height * width <= SPLIT_ROWS else 1
        # Channels-last here, outside the op, so that the kernel making the input writes that layout:
        # the op's own copy was an extra kernel per convolution (0.28 ms a frame on an H200).
        x8 = to_fp8(x, input_scale).contiguous(memory_format=torch.channels_last)
        y = conv3x3_fp8(x8, self.weight_fp8, self.bias, input_scale * self.weight_scale, split, self.out_dtype)
        return y if split == 1 else y.sum(0).to(self.out_dtype)  # the sum fuses into the next kernel

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size=3, padding=1, float8 e4m3, input silu(group_norm)"
