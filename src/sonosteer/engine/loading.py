"""Load the engine's parts from resolved local folders, through diffusers' and transformers' own loaders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from sonosteer.engine.architectures import SDXL_TURBO_SCHEDULER_CONFIG
from sonosteer.engine.errors import WeightsCorruptError
from sonosteer.engine.prompts import PromptEmbedding, PromptEncoder
from sonosteer.engine.sae import BlockSae, load_saes
from sonosteer.engine.weights import ResolvedWeights

ProgressFn = Callable[[float, str], None]


@dataclass
class EngineParts:
    """Everything the engine is built from, already on its device and in its dtype.

    prompt_encoder maps a prompt to its SDXL conditioning (normally a cached PromptEncoder).
    """

    unet: nn.Module
    decoder: nn.Module
    prompt_encoder: Callable[[str], PromptEmbedding]
    saes: dict[str, BlockSae]
    scheduler_config: dict[str, Any] = field(default_factory=lambda: dict(SDXL_TURBO_SCHEDULER_CONFIG))
    sequence_length: int = 77
    description: str = ""


def _variant(folder: Path, subfolder: str, stem: str, preferred: str | None) -> str | None:
    """`preferred` when its weights file is there, else None (the plain file)."""
    if preferred and (folder / subfolder / f"{stem}.{preferred}.safetensors").is_file():
        return preferred
    return None


def _transformers_dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    import transformers  # noqa: PLC0415

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def _load(what: str, where: Path, loader: Callable[[], Any]) -> Any:
    from safetensors import SafetensorError  # noqa: PLC0415

    try:
        return loader()
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise WeightsCorruptError(
            f"{what} in {where} cannot be loaded ({type(exc).__name__}: {str(exc)[:300]}); "
            "delete the damaged files and download them again (`sonosteer doctor` shows how)"
        ) from exc


def _prepare(module: nn.Module, device: torch.device) -> nn.Module:
    """On the device, in eval mode, without gradients (the dtype was set by from_pretrained)."""
    return module.to(device).eval().requires_grad_(False)


def read_scheduler_config(model_dir: Path) -> dict[str, Any]:
    """The model's scheduler config, or SDXL-Turbo's published one when the folder has none."""
    path = model_dir / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        return dict(SDXL_TURBO_SCHEDULER_CONFIG)
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise WeightsCorruptError(f"{path} is not valid JSON ({exc})") from exc


def load_parts(
    weights: ResolvedWeights,
    device: torch.device,
    dtype: torch.dtype,
    prompt_cache_size: int = 32,
    progress: ProgressFn | None = None,
) -> EngineParts:
    """Load UNet, decoder, text encoders + tokenizers and SAEs; each failure names its component and folder."""
    from diffusers import AutoencoderTiny, UNet2DConditionModel  # noqa: PLC0415 - heavy, engine-only
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer  # noqa: PLC0415

    def step(fraction: float, message: str) -> None:
        if progress:
            progress(fraction, message)

    model = weights.model_dir
    step(0.0, "loading the SDXL-Turbo UNet")
    unet_variant = _variant(model, "unet", "diffusion_pytorch_model", weights.model_variant)
    unet = _load(
        "the UNet",
        model / "unet",
        lambda: UNet2DConditionModel.from_pretrained(model, subfolder="unet", variant=unet_variant, torch_dtype=dtype),
    )
    step(0.45, "loading the text encoders")
    encoders = []
    for sub, cls in (("text_encoder", CLIPTextModel), ("text_encoder_2", CLIPTextModelWithProjection)):
        variant = _variant(model, sub, "model", weights.model_variant)
        encoders.append(
            _load(
                f"the text encoder ({sub})",
                model / sub,
                lambda sub=sub, cls=cls, variant=variant: cls.from_pretrained(
                    model, subfolder=sub, variant=variant, **_transformers_dtype_kwarg(dtype)
                ),
            )
        )
    tokenizers = [
        _load(f"the tokenizer ({sub})", model / sub, lambda sub=sub: CLIPTokenizer.from_pretrained(model, subfolder=sub))
        for sub in ("tokenizer", "tokenizer_2")
    ]
    step(0.75, "loading the TAESDXL decoder")
    decoder = _load(
        "the TAESDXL decoder",
        weights.decoder_dir,
        lambda: AutoencoderTiny.from_pretrained(weights.decoder_dir, torch_dtype=dtype),
    )
    step(0.85, "loading the SAEs")
    saes = load_saes(weights.saes_dir)
    step(1.0, "weights loaded")
    encoders = [_prepare(e, device) for e in encoders]
    return EngineParts(
        unet=_prepare(unet, device),
        decoder=_prepare(decoder, device),
        prompt_encoder=PromptEncoder(tokenizers, encoders, cache_size=prompt_cache_size),
        saes=saes,
        scheduler_config=read_scheduler_config(model),
        sequence_length=int(tokenizers[0].model_max_length),
        description=f"{model} ({unet_variant or 'full precision'} weights) + {weights.decoder_dir.name}",
    )
