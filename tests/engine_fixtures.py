"""Tiny SDXL-Turbo-shaped weights written in the real on-disk formats, for loading through the real code path.

`write_tiny_weights(root)` writes
  model/    diffusers layout: scheduler, unet (fp16 variant), text_encoder(_2) (fp16 variant), tokenizer(_2)
  decoder/  AutoencoderTiny layout (config.json + diffusion_pytorch_model.safetensors)
  saes/     sdxl-unbox layout: unet.<block>_k10_hidden5120_auxk256_bs4096_lr0.0001/{config.json,
            state_dict.pth, mean.pt, std.pt}, with mean/std saved as if from cuda:0
The tokenizers are the real CLIP BPE vocabulary, derived from the `bpe_simple_vocab_16e6.txt.gz`
that ships in the clip-anytorch wheel the way CLIP's own SimpleTokenizer builds its vocabulary.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import math
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from sonosteer.blocks import BLOCKS
from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.architectures import (
    SDXL_TURBO_SCHEDULER_CONFIG,
    TINY_BLOCK_CHANNELS,
    TINY_TAESD_CONFIG,
    TINY_TEXT_ENCODER_2_CONFIG,
    TINY_TEXT_ENCODER_CONFIG,
    TINY_UNET_CONFIG,
)

TINY_N_FEATURES = 48
DEAD_FEATURE = {"down.2.1": 7, "mid.0": 3, "up.0.0": 11, "up.0.1": 5}
"""One dead feature (mean activation 0) per block, like up.0.1 #4329 in the real SAEs."""
CLIP_MERGES = 49152 - 256 - 2
"""CLIP's vocabulary: 256 bytes, 256 end-of-word bytes, 48894 merges, 2 special tokens = 49408."""


@dataclass(frozen=True)
class TinyWeights:
    model: Path
    decoder: Path
    saes: Path


def clip_bpe_path() -> Path:
    """The CLIP BPE merges file shipped in the clip-anytorch wheel (installed with --no-deps)."""
    try:
        files = metadata.files("clip-anytorch") or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).endswith("bpe_simple_vocab_16e6.txt.gz"):
            return Path(f.locate())
    raise RuntimeError(
        "CLIP's BPE vocabulary is missing: `pip install --no-deps clip-anytorch==2.6.0` (`make install` does this)"
    )


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte -> printable unicode table."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def write_clip_tokenizer(folder: Path, pad_token: str) -> None:
    """vocab.json + merges.txt + configs of a real CLIP tokenizer, in the Hugging Face layout."""
    lines = gzip.open(clip_bpe_path()).read().decode("utf-8").split("\n")
    merges = lines[1 : CLIP_MERGES + 1]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    special["pad_token"] = pad_token
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {**special, "do_lower_case": True, "errors": "replace", "model_max_length": 77}
    config["tokenizer_class"] = "CLIPTokenizer"
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def save_as_if_from_cuda(tensor: torch.Tensor, path: Path) -> None:
    """torch.save `tensor` with its storage location recorded as cuda:0, as the published mean.pt/std.pt are."""
    buffer = io.BytesIO()
    torch.save(tensor, buffer)
    buffer.seek(0)
    cpu = b"X\x03\x00\x00\x00cpu"  # pickle BINUNICODE "cpu"
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert cpu in data, "unexpected torch.save pickle layout"
                data = data.replace(cpu, b"X\x06\x00\x00\x00cuda:0")
            target.writestr(info, data)


def write_block_sae(folder: Path, d_model: int, n_features: int, dead: int, seed: int) -> None:
    """One SAE checkpoint in the sdxl-unbox format, decoder columns deliberately not unit-norm."""
    gen = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"n_dirs_local": n_features, "d_model": d_model, "k": 4, "auxk": 8, "dead_steps_threshold": 2441}
    (folder / "config.json").write_text(json.dumps(config))
    decoder = torch.randn(d_model, n_features, generator=gen)
    decoder = decoder / decoder.norm(dim=0) * (0.5 + torch.rand(n_features, generator=gen))
    state = {
        "encoder.weight": torch.randn(n_features, d_model, generator=gen),
        "decoder.weight": decoder,
        "pre_bias": torch.zeros(d_model),
        "latent_bias": torch.zeros(n_features),
        "stats_last_nonzero": torch.zeros(n_features, dtype=torch.long),
    }
    torch.save({"state_dict": state}, folder / "state_dict.pth")
    mean = 5.0 + 20.0 * torch.rand(n_features, generator=gen)
    mean[dead] = 0.0
    save_as_if_from_cuda(mean, folder / "mean.pt")
    save_as_if_from_cuda(mean / 3.0, folder / "std.pt")


def write_tiny_weights(root: Path, seed: int = 0) -> TinyWeights:
    """Write the whole tiny weight set under `root` and return the three folders."""
    from diffusers import AutoencoderTiny, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    model, decoder_dir, saes = root / "model", root / "decoder", root / "saes"
    (model / "scheduler").mkdir(parents=True)
    (model / "scheduler" / "scheduler_config.json").write_text(json.dumps(SDXL_TURBO_SCHEDULER_CONFIG))
    (model / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLPipeline"}))
    UNet2DConditionModel(**TINY_UNET_CONFIG).half().save_pretrained(model / "unet", variant="fp16")
    CLIPTextModel(CLIPTextConfig(**TINY_TEXT_ENCODER_CONFIG)).half().save_pretrained(
        model / "text_encoder", variant="fp16"
    )
    CLIPTextModelWithProjection(CLIPTextConfig(**TINY_TEXT_ENCODER_2_CONFIG)).half().save_pretrained(
        model / "text_encoder_2", variant="fp16"
    )
    write_clip_tokenizer(model / "tokenizer", pad_token="<|endoftext|>")
    write_clip_tokenizer(model / "tokenizer_2", pad_token="!")
    taesd = AutoencoderTiny(**TINY_TAESD_CONFIG)
    with torch.no_grad():  # random TAESD decodes to ~black, flat frames; centre and stretch its output
        taesd.decoder.layers[-1].bias.fill_(0.5)
        taesd.decoder.layers[-1].weight.mul_(4.0)
    taesd.save_pretrained(decoder_dir)
    for i, block in enumerate(BLOCKS):
        write_block_sae(saes / block.sae_folder, TINY_BLOCK_CHANNELS, TINY_N_FEATURES, DEAD_FEATURE[block.short_name], i)
    return TinyWeights(model, decoder_dir, saes)


def tiny_settings(weights: TinyWeights, **overrides):
    """EngineSettings pointing at the tiny weights (CPU, float32, eager unless overridden)."""
    from sonosteer.engine.settings import EngineSettings

    base = {"model": str(weights.model), "decoder": str(weights.decoder), "saes": str(weights.saes)}
    base.update(device="cpu", dtype="float32", height=128, width=128)
    return EngineSettings(**{**base, **overrides})


def control_sequence() -> list[FrameControls]:
    """Frames that change, one after another: strength, mask, feature, prompt blend, noise angle, prompts, seeds."""
    controls = FrameControls(prompt_a="a harbour at dawn", prompt_b="a neon arcade", seed_a=5, seed_b=6)
    frames = []

    def snapshot() -> None:
        frames.append(copy.deepcopy(controls))

    snapshot()
    controls.blocks[0].strength = 2.5
    snapshot()
    mask = np.zeros((16, 16), np.float32)
    mask[4:12, 2:9] = 1.0
    controls.blocks[0].mask = mask
    snapshot()
    controls.blocks[2].feature_id, controls.blocks[2].strength = 17, -3.0
    snapshot()
    controls.prompt_blend = 1.0
    snapshot()
    controls.noise_angle_rad = 0.25 * math.pi
    snapshot()
    controls.prompt_b, controls.seed_b = "a glacier", 77
    snapshot()
    return frames
