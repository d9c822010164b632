"""Opt-in float8 linears for the fast mode: weights per output channel, activations per row, on the fly.

Why our own module and not torchao's tensor subclasses: on the full UNet the subclass path did
not finish compiling within 9 minutes, and its per-row recipe wants bfloat16 weights. Here each
converted layer is a plain module whose forward is a few tensor ops around `torch._scaled_mm`,
which inductor compiles like any other graph (the activation scaling fuses into the kernels that
produce the activations). Only the transformer linears with both sides >= 640 are converted: they
run at M = tokens (256 or 1024) and are bound by their weight bytes, which float8 halves. The
cross-attention K/V projections stay in the model dtype: they run once per prompt, not per frame.
"""

from __future__ import annotations

import torch
from torch import nn

FP8 = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8).max)  # 448
MIN_FEATURES = 640
_SCALE_FLOOR = 1e-12  # an all-zero row gets scale ~0 instead of a division by zero


def row_scales(x: torch.Tensor) -> torch.Tensor:
    """(rows, 1) float32 scales that map each row's largest magnitude onto float8's largest value."""
    return x.abs().amax(dim=-1, keepdim=True).float().clamp(min=_SCALE_FLOOR) / FP8_MAX


def to_fp8(x: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """x / scales rounded to float8 e4m3 (scales broadcast over x's rows)."""
    return (x.float() / scales).clamp(-FP8_MAX, FP8_MAX).to(FP8)


class Fp8Linear(nn.Module):
    """y = x W^T + b with W stored as float8 per output channel and x scaled to float8 per row per call."""

    def __init__(self, linear: nn.Linear, gemm_dtype: torch.dtype):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.out_dtype = linear.weight.dtype
        self.gemm_dtype = gemm_dtype
        weight = linear.weight.detach()
        scales = row_scales(weight)  # (out, 1)
        self.register_buffer("weight_fp8", to_fp8(weight, scales))  # (out, in), row-major: .t() is column-major
        self.register_buffer("weight_scale", scales.t().contiguous())  # (1, out)
        bias = linear.bias.detach().clone() if linear.bias is not None else None
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        scales = row_scales(rows)
        y = torch._scaled_mm(
            to_fp8(rows, scales).contiguous(),  # the float8 GEMM takes row-major activations only
            self.weight_fp8.t(), scale_a=scales, scale_b=self.weight_scale, out_dtype=self.gemm_dtype
        ).to(self.out_dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, float8 e4m3"


def gemm_output_dtype(device: torch.device, wanted: torch.dtype) -> torch.dtype:
    """`wanted` if this device's scaled GEMM takes per-row scales with that output type, else bfloat16."""
    a = torch.ones(16, 32, device=device).to(FP8)
    b = torch.ones(16, 32, device=device).to(FP8)
    try:
        torch._scaled_mm(a, b.t(), scale_a=torch.ones(16, 1, device=device), scale_b=torch.ones(1, 16, device=device),
                         out_dtype=wanted)
    except RuntimeError:
        return torch.bfloat16
    return wanted


def quantize_fp8(unet: nn.Module, keep: nn.Module | None = None, min_features: int = MIN_FEATURES) -> int:
    """Replace the UNet's transformer linears (both sides >= min_features) by Fp8Linear in place; returns how many.

    keep: a submodule whose linears stay as they are (the per-prompt cross-attention K/V).
    """
    if not hasattr(torch, "_scaled_mm"):
        raise RuntimeError(f"quantize='fp8' needs torch with float8 GEMMs (torch {torch.__version__} has none)")
    kept = {id(m) for m in keep.modules()} if keep is not None else set()
    first = next(unet.parameters())
    gemm_dtype = gemm_output_dtype(first.device, first.dtype)
    targets = []
    for parent_name, parent in unet.named_modules():
        if ".attentions." not in f".{parent_name}." or id(parent) in kept:
            continue
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear) and id(child) not in kept and min(child.in_features, child.out_features) >= min_features:
                targets.append((parent, name, child))
    for parent, name, child in targets:
        setattr(parent, name, Fp8Linear(child, gemm_dtype))
    if not targets:
        raise ValueError("no transformer linear layers to convert: not an SDXL-architecture UNet")
    return len(targets)
