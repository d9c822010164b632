"""Where the model weights are: Hugging Face ids (hub cache, downloaded on demand) or local folders.

Each of the three parts (SDXL-Turbo, the TAESDXL decoder, the four SAEs) is located and checked
file by file, so a missing or half-downloaded part is reported with the exact files it lacks and
the command that fetches them. Nothing here imports torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from sonosteer.blocks import BLOCKS
from sonosteer.engine.errors import WeightsMissingError
from sonosteer.engine.settings import DEFAULT_DECODER, DEFAULT_MODEL, DEFAULT_SAES, EngineSettings

SAE_FILES = ("config.json", "state_dict.pth", "mean.pt")
"""Files the engine reads from each block's SAE folder (std.pt beside them is not needed)."""
SAE_SUBFOLDERS = ("", "final")
"""The sdxl-unbox training code writes checkpoints into `<block folder>/final/`; both layouts load."""
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class WeightsPart:
    """One part of the weights: what it is, where it comes from, which files it needs.

    requirements: one tuple per needed file, holding the relative paths that satisfy it (any one).
    patterns: hub glob patterns that fetch exactly what is needed.
    """

    title: str
    source: str
    default_source: str
    requirements: tuple[tuple[str, ...], ...]
    patterns: tuple[str, ...]

    @property
    def is_hub_id(self) -> bool:
        """True for "owner/name" that is not an existing folder; anything else is a local path."""
        if Path(self.source).expanduser().is_dir():
            return False
        return bool(_HUB_ID.fullmatch(self.source)) and not self.source.startswith((".", "~"))


@dataclass(frozen=True)
class PartStatus:
    """Where a part was found (folder) and what it lacks (missing relative paths, or a problem line)."""

    part: WeightsPart
    folder: Path | None
    missing: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.folder is not None and not self.missing and self.problem is None

    def problem_text(self) -> str:
        """What is wrong, without naming the part (empty when nothing is)."""
        if self.problem:
            return self.problem
        if not self.missing:
            return ""
        shown = ", ".join(self.missing[:6]) + (f" and {len(self.missing) - 6} more" if len(self.missing) > 6 else "")
        return f"{shown} not found in {self.folder}"

    def how_to_get(self) -> str:
        """The command (hub id) or the instruction (local folder) that supplies what is missing."""
        if self.part.is_hub_id:
            return download_command(self.part.source, self.part.patterns)
        return (
            f"put the files of {self.part.title} into {self.part.source} (the layout of `{self.part.default_source}`), "
            f"or use the hub id `{self.part.default_source}`"
        )

    def describe_missing(self) -> str:
        """One line: what is missing, and how to get it."""
        line = f"{self.part.title} ({self.part.source}): {self.problem_text()}. Get it with: {self.how_to_get()}"
        return line + (" (or: sonosteer doctor --download)" if self.part.is_hub_id else "")


@dataclass(frozen=True)
class ResolvedWeights:
    """Local folders holding every file the engine loads."""

    model_dir: Path
    decoder_dir: Path
    saes_dir: Path
    model_variant: str | None


def _weight_file(subfolder: str, stem: str, variant: str | None) -> tuple[str, ...]:
    plain = f"{subfolder}/{stem}.safetensors"
    return (f"{subfolder}/{stem}.{variant}.safetensors", plain) if variant else (plain,)


def model_part(source: str = DEFAULT_MODEL, variant: str | None = "fp16") -> WeightsPart:
    """SDXL-Turbo in the diffusers layout: UNet, both CLIP text encoders and tokenizers, scheduler config."""
    requirements = [("scheduler/scheduler_config.json",)]
    for sub, stem in (("unet", "diffusion_pytorch_model"), ("text_encoder", "model"), ("text_encoder_2", "model")):
        requirements += [(f"{sub}/config.json",), _weight_file(sub, stem, variant)]
    for sub in ("tokenizer", "tokenizer_2"):
        requirements += [(f"{sub}/{name}",) for name in ("vocab.json", "merges.txt", "tokenizer_config.json")]
    suffix = f".{variant}.safetensors" if variant else ".safetensors"
    patterns = (
        "scheduler/scheduler_config.json",
        "unet/config.json",
        f"unet/diffusion_pytorch_model{suffix}",
        "text_encoder*/config.json",
        f"text_encoder*/model{suffix}",
        "tokenizer*/*",
    )
    return WeightsPart("SDXL-Turbo", source, DEFAULT_MODEL, tuple(requirements), patterns)


def decoder_part(source: str = DEFAULT_DECODER) -> WeightsPart:
    """TAESDXL in the diffusers AutoencoderTiny layout."""
    files = ("config.json", "diffusion_pytorch_model.safetensors")
    return WeightsPart("TAESDXL decoder", source, DEFAULT_DECODER, tuple((f,) for f in files), files)


def saes_part(source: str = DEFAULT_SAES) -> WeightsPart:
    """The four sdxl-unbox SAEs, one folder per steered block."""
    requirements = tuple(
        tuple(str(Path(block.sae_folder, sub, name)) for sub in SAE_SUBFOLDERS) for block in BLOCKS for name in SAE_FILES
    )
    patterns = tuple(f"{block.sae_folder}/*" for block in BLOCKS)
    return WeightsPart("SAEs for the four blocks", source, DEFAULT_SAES, requirements, patterns)


def parts_for(settings: EngineSettings) -> tuple[WeightsPart, WeightsPart, WeightsPart]:
    return model_part(settings.model, settings.model_variant), decoder_part(settings.decoder), saes_part(settings.saes)


def hub_offline() -> bool:
    """True when the environment forbids hub downloads (read at call time, not at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def missing_files(folder: Path, part: WeightsPart) -> tuple[str, ...]:
    """The first-choice path of each requirement that no alternative satisfies."""
    return tuple(alts[0] for alts in part.requirements if not any((folder / alt).is_file() for alt in alts))


def locate(part: WeightsPart, download: bool = False) -> PartStatus:
    """Find a part on disk (local folder or hub cache), downloading what is missing when allowed."""
    if not part.is_hub_id:
        folder = Path(part.source).expanduser()
        if not folder.is_dir():
            return PartStatus(part, None, problem=f"folder {folder} does not exist")
        return PartStatus(part, folder, missing_files(folder, part))
    from huggingface_hub import snapshot_download  # noqa: PLC0415 - keeps `sonosteer --help` light

    download = download and not hub_offline()
    try:
        folder = Path(snapshot_download(part.source, allow_patterns=list(part.patterns), local_files_only=not download))
    except Exception as exc:  # noqa: BLE001 - hub errors vary by version; the message is what matters
        reason = "not in the Hugging Face cache" if not download else f"download failed ({type(exc).__name__}: {exc})"
        if not download and hub_offline():
            reason += " and HF_HUB_OFFLINE=1 forbids downloading"
        return PartStatus(part, None, problem=reason)
    return PartStatus(part, folder, missing_files(folder, part))


def resolve_weights(
    settings: EngineSettings, download: bool | None = None, progress: Callable[[float, str], None] | None = None
) -> ResolvedWeights:
    """Local folders for all three parts, or one WeightsMissingError naming everything missing."""
    download = settings.allow_download if download is None else download
    statuses = []
    parts = parts_for(settings)
    for i, part in enumerate(parts):
        if progress:
            verb = "locating or downloading" if download and part.is_hub_id else "locating"
            progress(i / len(parts), f"{verb} {part.title} ({part.source})")
        statuses.append(locate(part, download))
    problems = [s.describe_missing() for s in statuses if not s.ok]
    if problems:
        raise WeightsMissingError(problems)
    model, decoder, saes = (s.folder for s in statuses)
    assert model is not None and decoder is not None and saes is not None
    return ResolvedWeights(model, decoder, saes, settings.model_variant)


def download_command(repo_id: str, patterns: tuple[str, ...]) -> str:
    """The shell command that fetches `patterns` of `repo_id` with the installed huggingface_hub CLI."""
    try:
        version = tuple(int(x) for x in metadata.version("huggingface_hub").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        version = (1, 0)
    quoted = [f'"{p}"' for p in patterns]
    if version >= (1, 0):  # typer CLI: a repeated --include
        return f"hf download {repo_id} " + " ".join(f"--include {q}" for q in quoted)
    tool = "hf" if version >= (0, 34) else "huggingface-cli"
    return f"{tool} download {repo_id} --include " + " ".join(quoted)
