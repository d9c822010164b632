"""Opt-in float8 linears for the fast mode: weights per output channel, activations per row, on the fly.

The scales are factored out of the GEMM: the product of the float8 operands runs as cuBLASLt's
plain float8 GEMM (one scale per tensor, its fastest float8 path: 3.25 ms for a frame's GEMMs
against 3.86 in fp16, while the per-row scaled kernel took 6.8), and the row and channel scales
multiply its output in the same elementwise kernel that adds the bias. Only linears whose input
comes from a row-wise kernel are converted (the layer norms before self-attention QKV, the
cross-attention query and the feed-forward, and the GEGLU before the feed-forward output), so
that inductor can fuse each row's amax and float8 cast into that kernel instead of adding one.
The attention output projections (input from the attention kernel), the transformer in/out
projections and the per-prompt cross-attention K/V stay in the model dtype.

Why our own module and not torchao's tensor subclasses: on the full UNet the subclass path did
not finish compiling within 9 minutes.
"""

from __future__ import annotations

import torch
from torch import nn

FP8 = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8).max)  # 448
MIN_FEATURES = 640
CONVERTED_SUFFIXES = (".attn1.to_qkv", ".attn1.to_q", ".attn1.to_k", ".attn1.to_v", ".attn2.to_q", ".ff.net.0.proj", ".ff.net.2")
"""Transformer-block linears whose input is made by a row-wise kernel (layer norm or GEGLU)."""
_SCALE_FLOOR = 1e-12  # an all-zero row gets scale ~0 instead of a division by zero


def row_scales(x: torch.Tensor) -> torch.Tensor:
    """(rows, 1) float32 scales that map each row's largest magnitude onto float8's largest value."""
    return x.abs().amax(dim=-1, keepdim=True).float().clamp(min=_SCALE_FLOOR) / FP8_MAX


def to_fp8(x: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """x / scales rounded to float8 e4m3 (scales broadcast over x's rows)."""
    return (x.float() / scales).clamp(-FP8_MAX, FP8_MAX).to(FP8)


class Fp8Linear(nn.Module):
    """y = x W^T + b with W stored as float8 per output channel and x scaled to float8 per row per call.

    The GEMM gets unit-free operands and the fixed scale 1/448 on each side, so its output
    (|value| <= in_features) fits the model dtype; the per-row and per-channel scales (times 448
    each) are applied to that output together with the bias.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.out_dtype = linear.weight.dtype
        weight = linear.weight.detach()
        scales = row_scales(weight)  # (out, 1)
        self.register_buffer("weight_fp8", to_fp8(weight, scales))  # (out, in), row-major: .t() is column-major
        self.register_buffer("weight_scale", scales.t().contiguous() * FP8_MAX)  # (1, out)
        self.register_buffer("gemm_scale", torch.tensor(1.0 / FP8_MAX, device=weight.device))
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        scales = row_scales(rows)
        product = torch._scaled_mm(
            to_fp8(rows, scales).contiguous(),  # the float8 GEMM takes row-major activations only
            self.weight_fp8.t(), scale_a=self.gemm_scale, scale_b=self.gemm_scale, out_dtype=self.out_dtype
        )
        y = product.float() * (scales * FP8_MAX) * self.weight_scale
        if self.bias is not None:
            y = y + self.bias
        return y.to(self.out_dtype).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, float8 e4m3"


def quantize_fp8(unet: nn.Module, keep: nn.Module | None = None, min_features: int = MIN_FEATURES) -> int:
    """Replace the UNet's CONVERTED_SUFFIXES linears (both sides >= min_features) by Fp8Linear; returns how many.

    keep: a submodule whose linears stay as they are (the per-prompt cross-attention K/V).
    """
    if not hasattr(torch, "_scaled_mm"):
        raise RuntimeError(f"quantize='fp8' needs torch with float8 GEMMs (torch {torch.__version__} has none)")
    kept = {id(m) for m in keep.modules()} if keep is not None else set()
    targets = []
    for parent_name, parent in unet.named_modules():
        for name, child in parent.named_children():
            if (
                isinstance(child, nn.Linear)
                and f".{parent_name}.{name}".endswith(CONVERTED_SUFFIXES)
                and id(child) not in kept
                and min(child.in_features, child.out_features) >= min_features
            ):
                targets.append((parent, name, child))
    for parent, name, child in targets:
        setattr(parent, name, Fp8Linear(child))
    if not targets:
        raise ValueError("no transformer linear layers to convert: not an SDXL-architecture UNet")
    return len(targets)
