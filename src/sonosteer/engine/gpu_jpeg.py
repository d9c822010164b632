"""JPEG encoding on the GPU (nvJPEG through torchvision), so only the JPEG bytes cross to the host.

A 512x512 RGB frame is 786 kB raw and ~80 kB as JPEG; encoding it where it was rendered also
takes the encoder off the host's CPU, where it competes with the server for the GIL.
torchvision is optional: `probe` says why it is unusable instead of raising.
"""

from __future__ import annotations

import torch


def encode(frame_hwc: torch.Tensor, quality: int) -> bytes:
    """JPEG bytes of one (H, W, 3) uint8 CUDA frame; waits for the encode (the length is known only then)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
    from torchvision.io import encode_jpeg  # noqa: PLC0415 - optional dependency

    return encode_jpeg(frame_hwc.permute(2, 0, 1), quality=quality).cpu().numpy().tobytes()


def probe(device: torch.device, quality: int = 85) -> str | None:
    """None when nvJPEG encoding works on `device`; otherwise the reason, in plain words."""
    if device.type != "cuda":
        return "nvJPEG needs a CUDA device"
    try:
        import torchvision.io  # noqa: F401, PLC0415 - optional dependency
    except ModuleNotFoundError:
        return "torchvision is not installed (pip install torchvision for GPU JPEG encoding)"
    except Exception as exc:  # noqa: BLE001 - a torchvision built for another torch fails in many ways
        return f"torchvision cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0]}); reinstall it to match torch"
    test = torch.zeros(64, 64, 3, dtype=torch.uint8, device=device)
    test[:, :32] = 200  # an edge, so the encoder does real work
    try:
        jpeg = encode(test, quality)
    except RuntimeError as exc:  # torchvision built without nvJPEG, driver trouble, ...
        return f"torchvision's GPU JPEG encoder failed: {str(exc).splitlines()[0]}"
    if not (jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")):
        return "torchvision's GPU JPEG encoder returned something that is not a JPEG"
    return None
