"""Device and dtype choice from EngineSettings strings, with errors that say what to install."""

from __future__ import annotations

import torch

DTYPE_BY_NAME = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
START_PEAK_GIB = 8
"""GPU memory the default engine needs free while it starts at 512x512 (a 7.3 GiB peak measured on an H200;
3.1 GiB stay held while it renders)."""
MAKE_ROOM = (
    f"SDXL-Turbo needs about {START_PEAK_GIB} GiB free while it starts at 512x512. "
    "Close other programs that use the GPU (`nvidia-smi` lists them)"
)
"""The advice for a GPU short of memory, shared by `doctor`'s warning and the out-of-memory error."""


def memory_advice(free_bytes: int) -> str | None:
    """A plain warning when a GPU has less memory free than the engine needs to start, else None."""
    if free_bytes >= START_PEAK_GIB * 2**30:
        return None
    return f"only {free_bytes / 2**30:.1f} GiB free: {MAKE_ROOM}, or play a smaller --size."


def resolve_device(name: str) -> torch.device:
    """"auto" = CUDA when available, else CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ValueError(f"device {name!r} requested but CUDA is not available (torch {torch.__version__} is {build})")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """"auto" = float16 on CUDA, float32 elsewhere (half precision on CPU is slow and partly unsupported)."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in DTYPE_BY_NAME:
        raise ValueError(f"dtype must be auto or one of {', '.join(DTYPE_BY_NAME)}, got {name!r}")
    return DTYPE_BY_NAME[name]


def describe_device(device: torch.device) -> str:
    """"NVIDIA H100 80GB HBM3 (cuda:0)" or "CPU"."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    return device.type.upper()
