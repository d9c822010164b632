"""Pick and build a Renderer: SDXL-Turbo when it can run, otherwise the labelled preview renderer.

"auto" chooses SDXL-Turbo when CUDA is available and the weights are on disk or may be
downloaded; otherwise the preview, with the reason in plain words for the terminal and the UI.
"""

from __future__ import annotations

from dataclasses import dataclass

from sonosteer.engine.errors import EngineError, GpuOutOfMemoryError
from sonosteer.engine.renderer import ProgressFn, Renderer
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.weights import hub_offline, locate, parts_for

KINDS = ("auto", "sdxl-turbo", "preview")


@dataclass(frozen=True)
class KindDecision:
    """Which renderer to build and why (one plain line)."""

    kind: str
    reason: str


@dataclass(frozen=True)
class RendererChoice:
    """The built renderer and the plain-words reason it was chosen."""

    renderer: Renderer
    reason: str


def cuda_status() -> tuple[bool, str]:
    """(CUDA usable, plain words about it)."""
    import torch  # noqa: PLC0415

    if torch.cuda.is_available():
        return True, f"CUDA GPU {torch.cuda.get_device_name(0)}"
    if torch.version.cuda is None:
        return False, f"no CUDA GPU: torch {torch.__version__} is a CPU-only build"
    return False, f"no CUDA GPU found (torch {torch.__version__} is built for CUDA {torch.version.cuda}; check the driver)"


def decide_kind(
    kind: str, *, cuda_available: bool, cuda_reason: str, missing: list[str], can_download: bool
) -> KindDecision:
    """The renderer kind for a request, from what this machine has; raises ValueError for an unknown kind.

    missing: one line per weights part not on disk (empty when everything is there).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown renderer {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "preview":
        return KindDecision("preview", "preview renderer, as requested")
    if kind == "sdxl-turbo":
        if cuda_available:
            return KindDecision("sdxl-turbo", f"SDXL-Turbo on {cuda_reason}, as requested")
        return KindDecision("sdxl-turbo", f"SDXL-Turbo on the CPU, as requested ({cuda_reason}): expect seconds per frame")
    if not cuda_available:
        return KindDecision("preview", f"preview renderer: {cuda_reason}")
    if missing and not can_download:
        why = "HF_HUB_OFFLINE=1 forbids downloads" if hub_offline() else "downloads are turned off"
        return KindDecision(
            "preview",
            f"preview renderer: SDXL-Turbo weights are missing and {why} ({'; '.join(missing)}); "
            "`sonosteer doctor` shows how to get them",
        )
    if missing:
        return KindDecision("sdxl-turbo", f"SDXL-Turbo on {cuda_reason} (downloading the missing weights first)")
    return KindDecision("sdxl-turbo", f"SDXL-Turbo on {cuda_reason}")


def _missing_weights(settings: EngineSettings) -> list[str]:
    return [f"{s.part.title} ({s.part.source})" for s in (locate(p) for p in parts_for(settings)) if not s.ok]


def _preview(settings: EngineSettings) -> Renderer:
    from sonosteer.engine.preview import PreviewRenderer  # noqa: PLC0415 - written by the preview layer

    return PreviewRenderer(settings.height, settings.width)


def create_renderer(
    kind: str = "auto", settings: EngineSettings | None = None, progress: ProgressFn | None = None
) -> RendererChoice:
    """Build the renderer `kind` asks for ("auto", "sdxl-turbo" or "preview").

    An explicit "sdxl-turbo" raises (WeightsMissingError, ...) when it cannot start; "auto" falls
    back to the preview and says why.
    """
    settings = settings or EngineSettings()
    settings.validate()
    if kind in ("auto", "sdxl-turbo"):
        cuda_available, cuda_reason = cuda_status()
    else:
        cuda_available, cuda_reason = False, ""
    missing = _missing_weights(settings) if kind == "auto" and cuda_available else []
    decision = decide_kind(
        kind,
        cuda_available=cuda_available,
        cuda_reason=cuda_reason,
        missing=missing,
        can_download=settings.allow_download and not hub_offline(),
    )
    if decision.kind == "preview":
        return RendererChoice(_preview(settings), decision.reason)
    from sonosteer.engine.steered_engine import SteeredEngine  # noqa: PLC0415 - loads torch models

    try:
        engine = SteeredEngine.from_settings(settings, progress)
    except EngineError as exc:  # a GPU out of memory included (GpuOutOfMemoryError)
        if kind != "auto":
            raise
        return _preview_instead(settings, exc)
    return RendererChoice(engine, decision.reason)


def _preview_instead(settings: EngineSettings, why: Exception) -> RendererChoice:
    """The preview, for "auto" when SDXL-Turbo could not start, and why."""
    return RendererChoice(_preview(settings), f"preview renderer: SDXL-Turbo could not start: {why}")


def warm_up(
    choice: RendererChoice, kind: str, settings: EngineSettings, progress: ProgressFn | None = None
) -> RendererChoice:
    """Warm the chosen renderer up. With "auto", an SDXL-Turbo engine that runs out of GPU memory while
    compiling gives way to the preview (the engine is closed, its memory freed) and the reason says so."""
    try:
        choice.renderer.warmup(progress)
    except GpuOutOfMemoryError as exc:
        if kind != "auto":
            raise
        fallback = _preview_instead(settings, exc)
        fallback.renderer.warmup(progress)
        return fallback
    return choice
