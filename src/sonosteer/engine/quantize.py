"""Opt-in float8 quantisation of the UNet's large linear layers (torchao), for the fastest mode.

Per-tensor scales, dynamic activation quantisation: torchao's per-row recipe needs bfloat16
weights, and the product's reference path is float16. Only layers with both sides >= 640 are
converted (the transformer projections and feed-forwards); convolutions stay float16.
"""

from __future__ import annotations

from torch import nn

MIN_FEATURES = 640


def quantize_fp8(unet: nn.Module) -> None:
    """Convert the UNet's large nn.Linear layers to float8 in place; a clear error without torchao or CUDA."""
    try:
        from torchao.quantization import (  # noqa: PLC0415 - optional dependency
            Float8DynamicActivationFloat8WeightConfig,
            PerTensor,
            quantize_,
        )
    except ImportError as exc:
        raise RuntimeError("quantize='fp8' needs torchao: pip install 'sonosteer[fast]' (or pip install torchao)") from exc
    device = next(unet.parameters()).device
    if device.type != "cuda":
        raise RuntimeError("quantize='fp8' needs a CUDA GPU with float8 support (Hopper or newer)")

    converted: set[int] = set()  # shared submodules (the fast path's K/V projections) are visited more than once

    def large_linear(module: nn.Module, _name: str) -> bool:
        if id(module) in converted or not isinstance(module, nn.Linear):
            return False
        if min(module.in_features, module.out_features) < MIN_FEATURES:
            return False
        converted.add(id(module))
        return True

    quantize_(unet, Float8DynamicActivationFloat8WeightConfig(granularity=PerTensor()), filter_fn=large_linear)
