"""Where a frame's GPU time goes: kernel time per category (GEMM, convolution, attention, norms, ...).

Profiles the generator compiled without CUDA graphs (the same inductor kernels, visible to the
profiler one by one); the sum of kernel times against the graph's wall time shows the launch gaps.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

CATEGORIES = (
    # Inductor's own kernels first: their names carry the fused ops ("..._fused_convolution_relu_3" is
    # the bias and ReLU after a cuDNN convolution, not the convolution).
    ("Triton reduction (norms)", ("triton_red", "triton_per")),
    ("Triton pointwise (incl. conv and GEMM epilogues)", ("triton_poi",)),
    ("fused float8 GEGLU (ours, Triton)", ("geglu_fp8",)),
    ("float8 resnet convolution (ours, Triton)", ("conv3x3_fp8",)),
    ("float8 linear (ours, Triton, TMA)", ("linear_fp8_tma",)),
    ("attention", ("flash", "fmha", "attn", "attention", "sdpa")),
    ("convolution", ("conv", "implicit_gemm", "winograd", "fprop")),
    ("GEMM", ("gemm", "nvjet", "cutlass", "xmma", "sm90", "matmul")),
    ("memset / copy", ("memset", "memcpy")),
)


def categorize(kernel_name: str) -> str:
    """The CATEGORIES entry of a CUDA kernel's name (first match), or "other"."""
    name = kernel_name.lower()
    for category, keys in CATEGORIES:
        if any(k in name for k in keys):
            return category
    return "other"


def kernel_breakdown(
    step: Callable[[], object], steps: int = 10, top: int = 15
) -> tuple[list[list[object]], float, int, list[list[object]]]:
    """Rows (category, ms per frame, kernels per frame), total kernel ms and kernels per frame, and the
    `top` kernel names by time as rows (name, ms per frame, launches per frame)."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    per_category: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    per_name: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            for entry in (per_category[categorize(event.name)], per_name[event.name]):
                entry[0] += event.device_time / 1000.0 / steps
                entry[1] += 1 / steps
    rows = [[c, ms, round(n)] for c, (ms, n) in sorted(per_category.items(), key=lambda kv: -kv[1][0])]
    names = sorted(per_name.items(), key=lambda kv: -kv[1][0])[:top]
    top_rows = [[name[:90], ms, round(n)] for name, (ms, n) in names]
    return rows, sum(r[1] for r in rows), sum(r[2] for r in rows), top_rows
