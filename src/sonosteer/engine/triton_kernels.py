"""Whether our own Triton kernels (the fused float8 GEGLU, the float8 convolution) can run on a device."""

from __future__ import annotations

import importlib.util

import torch


def triton_missing(device: torch.device) -> str | None:
    """Why our Triton kernels cannot run on `device`, or None when they can (CUDA with Triton)."""
    if device.type != "cuda":
        return f"our Triton kernels are CUDA only ({device.type})"
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed"
    return None
