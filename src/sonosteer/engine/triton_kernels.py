"""Whether our own Triton kernels (attention, the fused float8 GEGLU, the float8 convolution) can run on a
device, and whether they launch with programmatic dependent launch."""

from __future__ import annotations

import importlib.util

import torch
from torch import nn


def triton_missing(device: torch.device) -> str | None:
    """Why our Triton kernels cannot run on `device`, or None when they can (CUDA with Triton)."""
    if device.type != "cuda":
        return f"our Triton kernels are CUDA only ({device.type})"
    if importlib.util.find_spec("triton") is None:
        return "Triton is not installed"
    return None


def tma_missing(device: torch.device) -> str | None:
    """Why our float8 GEMMs cannot load their tiles by TMA on `device`, or None when they can (Hopper or
    newer, with a Triton that has host-side tensor descriptors)."""
    if (reason := triton_missing(device)) is not None:
        return reason
    if importlib.util.find_spec("triton.tools.tensor_descriptor") is None:
        return "this Triton has no host-side tensor descriptors (Triton 3.4 or newer)"
    if torch.cuda.get_device_capability(device) < (9, 0):
        return f"TMA needs Hopper or newer ({torch.cuda.get_device_name(device)})"
    return None


def pdl_missing(device: torch.device) -> str | None:
    """Why our kernels cannot use programmatic dependent launch on `device`, or None when they can (Hopper+).

    With it, a kernel's blocks start while the kernel before it finishes and wait (griddepcontrol.wait)
    before their first read, to hide part of each launch's latency. Opt-in: measured slower in the frame.
    """
    if (reason := triton_missing(device)) is not None:
        return reason
    if torch.cuda.get_device_capability(device) < (9, 0):
        return f"programmatic dependent launch needs Hopper or newer ({torch.cuda.get_device_name(device)})"
    return None


def set_programmatic_launch(model: nn.Module, on: bool) -> None:
    """Turn programmatic dependent launch on or off for every kernel of ours in `model` (modules and
    attention processors with a `pdl` attribute)."""
    for module in model.modules():
        for holder in (module, getattr(module, "processor", None)):
            if hasattr(holder, "pdl"):
                holder.pdl = on
