"""Where a frame's GPU time goes: kernel time per category (GEMM, convolution, attention, norms, ...).

Profiles the generator compiled without CUDA graphs (the same inductor kernels, visible to the
profiler one by one); the sum of kernel times against the graph's wall time shows the launch gaps.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

CATEGORIES = (
    ("attention", ("flash", "fmha", "attn", "attention", "sdpa")),
    ("convolution", ("conv", "implicit_gemm", "winograd", "fprop")),
    ("GEMM", ("gemm", "nvjet", "cutlass", "xmma", "sm90", "matmul")),
    ("Triton reduction (norms)", ("triton_red", "triton_per")),
    ("Triton pointwise", ("triton_poi",)),
    ("memset / copy", ("memset", "memcpy")),
)


def categorize(kernel_name: str) -> str:
    name = kernel_name.lower()
    for category, keys in CATEGORIES:
        if any(k in name for k in keys):
            return category
    return "other"


def kernel_breakdown(step: Callable[[], object], steps: int = 10) -> tuple[list[list[object]], float, int]:
    """Rows (category, ms per frame, kernels per frame), total kernel ms per frame, kernels per frame."""
    from torch.profiler import ProfilerActivity, profile  # noqa: PLC0415

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    per_category: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            entry = per_category[categorize(event.name)]
            entry[0] += event.device_time / 1000.0 / steps
            entry[1] += 1 / steps
    rows = [[c, ms, round(n)] for c, (ms, n) in sorted(per_category.items(), key=lambda kv: -kv[1][0])]
    return rows, sum(r[1] for r in rows), sum(r[2] for r in rows)
