"""The analysis's models run on CUDA when there is one; a GPU that runs out of memory (the renderer may hold
most of it while a new song is analysed) hands the work to the CPU: slower, same result."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


def default_device() -> str:
    """"cuda" when torch sees a GPU, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cuda_or_cpu(run: Callable[[str], T], device: str) -> tuple[T, str]:
    """run(device), or run("cpu") when that GPU runs out of memory; returns the result and the device it came from.
    Other errors are not caught."""
    import torch

    if device != "cpu":
        try:
            return run(device), device
        except torch.OutOfMemoryError:
            pass  # retried below, once this exception and the GPU tensors its frames hold are gone
        torch.cuda.empty_cache()
    return run("cpu"), "cpu"
