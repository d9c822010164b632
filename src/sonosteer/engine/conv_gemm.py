"""The UNet resnets' small 3x3 convolutions as one GEMM over an im2col matrix (opt-in, for measuring).

At batch 1, cuDNN's implicit-GEMM kernels run SDXL's resnet convolutions at 200-460 TFLOPS. On an H200,
cuBLAS's GEMM over the same products was faster at every resnet shape (5-8 us a call at 16 and 32 px),
but an im2col kernel of its own cost more than that (BENCHMARKS.md, ninth round). Written as indexing, the
im2col matrix is a pointwise function of the convolution's input, so inductor can compute it in the kernel
that already produces that input (the group norm's normalisation and SiLU), at 9x that kernel's output
bytes; only inputs of at most GEMM_MAX_PIXELS pixels are worth those bytes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GEMM_MAX_PIXELS = 32 * 32
"""Largest input (H * W) computed as im2col + GEMM; SDXL's 16 and 32 px levels at 512 px frames."""


def im2col_3x3(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N*H*W, 9*C): each pixel's 3x3 neighbourhood (zero padding 1), columns in (ky, kx, c)
    order, the order of a channels-last weight's rows. Indexing rather than a copy of 9 slices, so inductor
    can fuse it into the kernel that writes x."""
    n, c, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (N, H+2, W+2, C)
    taps = torch.arange(3, device=x.device)
    rows = (torch.arange(h, device=x.device)[:, None] + taps)[:, None, :, None]  # (H, 1, 3, 1)
    cols = (torch.arange(w, device=x.device)[:, None] + taps)[None, :, None, :]  # (1, W, 1, 3)
    return padded[:, rows, cols, :].reshape(n * h * w, 9 * c)  # (N, H, W, 3, 3, C)


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


class GemmConv3x3(nn.Module):
    """A 3x3 convolution computed as im2col + GEMM for inputs of at most GEMM_MAX_PIXELS pixels, and as the
    convolution itself above (`conv` keeps its parameters). The output is channels-last, as cuDNN's is."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not plain_3x3(conv):
            raise ValueError(f"{conv} is not a 3x3 convolution with stride 1 and padding 1")
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if h * w > GEMM_MAX_PIXELS:  # static under torch.compile: one branch per shape
            return self.conv(x)
        return conv_as_gemm(im2col_3x3(x), self.conv).view(n, h, w, -1).permute(0, 3, 1, 2)


def conv_as_gemm(cols: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """(pixels, Cout): `conv` applied to the im2col matrix `cols` of its input, as one GEMM (with its bias)."""
    weight = conv.weight
    rows = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)  # a view of a channels-last weight
    return cols @ rows.t() if conv.bias is None else torch.addmm(conv.bias, cols, rows.t())


def resnet_convs(unet: nn.Module) -> list[tuple[nn.Module, str]]:
    """(resnet, "conv1" or "conv2") for every plain 3x3 convolution of `unet`'s resnets (diffusers' ResnetBlock2D)."""
    from diffusers.models.resnet import ResnetBlock2D  # noqa: PLC0415 - engine-only import

    return [
        (module, name)
        for module in unet.modules()
        if type(module) is ResnetBlock2D
        for name in ("conv1", "conv2")
        if plain_3x3(getattr(module, name))
    ]


def convert_resnet_convs(unet: nn.Module) -> int:
    """Wrap every resnet convolution of `unet` (`resnet_convs`) in GemmConv3x3 in place; returns how many.
    Which ones run as GEMMs is decided per call by their input size."""
    convs = resnet_convs(unet)
    for resnet, name in convs:
        setattr(resnet, name, GemmConv3x3(getattr(resnet, name)))
    return len(convs)
