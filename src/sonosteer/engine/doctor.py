"""`sonosteer doctor`: what this machine can run, which weights are where, and how to get what is missing."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from sonosteer import __version__
from sonosteer.engine.factory import cuda_status, decide_kind
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.weights import PartStatus, hub_offline, locate, parts_for


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def gpu_lines() -> list[str]:
    """torch build, CUDA and each GPU (name, memory, compute capability)."""
    import torch  # noqa: PLC0415

    from sonosteer.engine.devices import memory_advice  # noqa: PLC0415 - imports torch

    lines = [f"torch {torch.__version__} ({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU-only build'})"]
    available, reason = cuda_status()
    if not available:
        lines.append(f"GPU: none: {reason}.")
        lines.append("  For real-time SDXL-Turbo: an NVIDIA GPU and a CUDA build of torch (pytorch.org, 'Get started').")
        return lines
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        free, total = torch.cuda.mem_get_info(i)
        lines.append(
            f"GPU {i}: {props.name}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), "
            f"compute capability {props.major}.{props.minor}"
        )
        if advice := memory_advice(free):
            lines.append(f"  {advice}")
    from sonosteer.engine import gpu_jpeg, triton_attention  # noqa: PLC0415
    from sonosteer.engine.quantize import float8_gemm_missing  # noqa: PLC0415
    from sonosteer.engine.triton_kernels import triton_missing  # noqa: PLC0415

    device = torch.device("cuda")
    attention_problem = triton_attention.probe(device)
    lines.append(
        "attention: our Triton kernel (no memset; float8 output and the cross-attention query inside with float8)"
        if attention_problem is None
        else f"attention: cuDNN's SDPA: our Triton kernel cannot run here: {attention_problem}"
    )
    if float8_problem := float8_gemm_missing(device):
        lines.append(f"float8 linears: off (fp16): {float8_problem}")
    else:
        problem = triton_missing(device)
        kernels = (
            f"fused GEGLU kernel and float8 convolutions of the 32x32 and 16x16 latents (Triton {_version('triton')})"
            if problem is None
            else f"no fused GEGLU kernel: {problem}"
        )
        lines.append(f"float8 linears: on, checked against fp16 at each start; {kernels}")
    jpeg_problem = gpu_jpeg.probe(device)
    lines.append(
        f"JPEG encoding: on the GPU (nvJPEG, torchvision {_version('torchvision')})"
        if jpeg_problem is None
        else f"JPEG encoding: on the CPU (libjpeg-turbo): {jpeg_problem}"
    )
    return lines


def weights_lines(statuses: list[PartStatus]) -> list[str]:
    lines = []
    for status in statuses:
        head = f"{status.part.title} ({status.part.source})"
        if status.ok:
            lines.append(f"  found    {head}\n           in {status.folder}")
        else:
            lines.append(f"  MISSING  {head}: {status.problem_text()}\n           get it: {status.how_to_get()}")
    return lines


def report(settings: EngineSettings, download: bool = False) -> tuple[str, bool]:
    """The doctor's text and whether SDXL-Turbo can run here now (CUDA and all weights)."""
    from huggingface_hub import constants  # noqa: PLC0415

    lines = [
        f"sonosteer {__version__}, Python {platform.python_version()} ({sys.executable})",
        "diffusers {}, transformers {}, huggingface_hub {}, accelerate {}".format(
            *(_version(p) for p in ("diffusers", "transformers", "huggingface_hub", "accelerate"))
        ),
        *gpu_lines(),
        f"Hugging Face cache: {constants.HF_HUB_CACHE}" + (" (offline: HF_HUB_OFFLINE=1)" if hub_offline() else ""),
        f"compile cache: {settings.resolved_compile_cache_dir()}",
        "weights:" if not download else "weights (downloading what is missing):",
    ]
    statuses = [locate(part, download=False) for part in parts_for(settings)]
    if download:
        statuses = [s if s.ok else locate(s.part, download=True) for s in statuses]
    lines += weights_lines(statuses)
    missing = [f"{s.part.title}" for s in statuses if not s.ok]
    cuda_available, cuda_reason = cuda_status()
    decision = decide_kind(
        "auto",
        cuda_available=cuda_available,
        cuda_reason=cuda_reason,
        missing=missing,
        can_download=settings.allow_download and not hub_offline(),
    )
    if missing and any(s.part.is_hub_id for s in statuses if not s.ok):
        lines.append("  fetch everything missing at once: sonosteer doctor --download")
    lines.append(f"renderer `auto` would use: {decision.reason}")
    return "\n".join(lines), cuda_available and not missing
