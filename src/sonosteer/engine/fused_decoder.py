"""TAESD's decoder with each convolution's bias, ReLU and residual add applied inside cuDNN's kernel.

Compiled as it is, every convolution of the tiny decoder is a cuDNN kernel followed by an inductor
kernel for its bias and ReLU (and, at the end of a block, the skip add), which at 512x512 with 64
channels re-reads and re-writes 33 MB. cuDNN applies them in its epilogue instead
(`torch.cudnn_convolution_relu`, `torch.cudnn_convolution_add_relu`): on an H100, a 64-channel 3x3
convolution at 512 px took 51.7 us fused against 72.2 us as convolution plus inductor's kernel.
The two calls are custom ops, so torch.compile keeps them as they are; on CPU they run as plain
convolution, add and ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _out_shape(x: torch.Tensor, weight: torch.Tensor, padding: int) -> tuple[int, int, int, int]:
    size = weight.shape[-1]
    return x.shape[0], weight.shape[0], x.shape[2] + 2 * padding - size + 1, x.shape[3] + 2 * padding - size + 1


def _layout(x: torch.Tensor, weight: torch.Tensor) -> torch.memory_format:
    """The output layout PyTorch's convolution picks: channels_last when the input or the weight is."""
    from torch._prims_common import suggest_memory_format  # noqa: PLC0415

    channels_last = torch.channels_last in (suggest_memory_format(x), suggest_memory_format(weight))
    return torch.channels_last if channels_last else torch.contiguous_format


@torch.library.custom_op("sonosteer::conv_bias_relu", mutates_args=())
def conv_bias_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """relu(conv2d(x, weight, bias)) with stride 1, in one cuDNN kernel on CUDA."""
    if x.is_cuda:
        out = torch.cudnn_convolution_relu(x, weight, bias, (1, 1), (padding, padding), (1, 1), 1)
    else:
        out = F.relu(F.conv2d(x, weight, bias, padding=padding))
    return out.contiguous(memory_format=_layout(x, weight))


@conv_bias_relu.register_fake
def _conv_bias_relu_fake(x, weight, bias, padding):
    return x.new_empty(_out_shape(x, weight, padding)).contiguous(memory_format=_layout(x, weight))


@torch.library.custom_op("sonosteer::conv_bias_add_relu", mutates_args=())
def conv_bias_add_relu(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor, padding: int
) -> torch.Tensor:
    """relu(conv2d(x, weight, bias) + residual) with stride 1, in one cuDNN kernel on CUDA."""
    if x.is_cuda:
        out = torch.cudnn_convolution_add_relu(x, weight, residual, 1.0, bias, (1, 1), (padding, padding), (1, 1), 1)
    else:
        out = F.relu(F.conv2d(x, weight, bias, padding=padding) + residual)
    return out.contiguous(memory_format=_layout(x, weight))


@conv_bias_add_relu.register_fake
def _conv_bias_add_relu_fake(x, weight, bias, residual, padding):
    return x.new_empty(_out_shape(x, weight, padding)).contiguous(memory_format=_layout(x, weight))


def _fusable(conv: nn.Module) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.kernel_size[0] == conv.kernel_size[1]
        and conv.padding == (conv.kernel_size[0] // 2,) * 2
    )


class ConvReLU(nn.Module):
    """relu(conv(x)) as one fused call (`conv` keeps its parameters)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_bias_relu(x, self.conv.weight, self.conv.bias, self.conv.padding[0])


class FusedTinyBlock(nn.Module):
    """diffusers' AutoencoderTinyBlock (conv-ReLU-conv-ReLU-conv, + skip, ReLU) in three fused calls."""

    def __init__(self, block: nn.Module):
        super().__init__()
        first, _, second, _, third = block.conv
        self.first, self.second, self.third, self.skip = ConvReLU(first), ConvReLU(second), third, block.skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.second(self.first(x))
        return conv_bias_add_relu(h, self.third.weight, self.third.bias, self.skip(x), self.third.padding[0])


def _relu_block(block: nn.Module) -> bool:
    convs = list(block.conv)
    return (
        len(convs) == 5
        and all(_fusable(c) for c in convs[::2])
        and all(isinstance(a, nn.ReLU) for a in (convs[1], convs[3], block.fuse))
    )


def fuse_decoder_epilogues(decoder: nn.Module) -> int:
    """Rewrite an AutoencoderTiny's decoder layers in place (ReLU decoders only); returns the fused convolutions."""
    from diffusers.models.unets.unet_2d_blocks import AutoencoderTinyBlock  # noqa: PLC0415 - engine-only import

    layers = list(decoder.decoder.layers)
    fused, count, i = [], 0, 0
    while i < len(layers):
        layer = layers[i]
        following = layers[i + 1] if i + 1 < len(layers) else None
        if _fusable(layer) and isinstance(following, nn.ReLU):
            fused.append(ConvReLU(layer))
            count, i = count + 1, i + 2
            continue
        if isinstance(layer, AutoencoderTinyBlock) and _relu_block(layer):
            fused.append(FusedTinyBlock(layer))
            count += 3
        else:
            fused.append(layer)
        i += 1
    decoder.decoder.layers = nn.Sequential(*fused)
    return count
