"""How a generator is compiled: one inductor graph, the on-disk kernel cache, one CUDA graph."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from sonosteer.engine.cuda_graph import CapturedGraph
from sonosteer.engine.settings import EngineSettings


OP_MODULES = ("fp8_conv", "fused_decoder", "fused_geglu", "tma_linear", "triton_attention")
"""The engine modules that register our custom ops (`sonosteer::...`), which compiled graphs call."""


def ops_fingerprint(sources: Iterable[Path]) -> str:
    """A short hash of the files that define our custom ops. Their schemas and fake kernels shape the
    compiled code, but inductor's cache key (torch 2.11) holds only their names (pytorch#187319): a
    graph compiled against another version of an op would be reused and fail, or worse, run."""
    digest = hashlib.sha256()
    for path in sources:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def compile_cache_folder(settings: EngineSettings) -> Path:
    """Where this version of the engine keeps inductor's caches: the settings' folder, one subfolder
    per version of our custom ops."""
    here = Path(__file__).parent
    return settings.resolved_compile_cache_dir() / f"ops-{ops_fingerprint(here / f'{name}.py' for name in OP_MODULES)}"


def use_compile_cache(folder: Path) -> None:
    """Point inductor's on-disk caches at `folder`, unless the user chose a folder with TORCHINDUCTOR_CACHE_DIR.

    Inductor writes its default folder into the variable the first time it looks, so a value equal
    to that default is treated as unset.
    """
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir  # noqa: PLC0415

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == os.path.abspath(default_cache_dir()):
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)


def check_inductor_options(options: Iterable[tuple[str, object]]) -> None:
    """Raise ValueError for an option name this torch's inductor does not have (it would be silently ignored)."""
    from torch._inductor import config  # noqa: PLC0415 - inductor loads only when compiling

    for name, _value in options:
        target = config
        for part in name.split("."):
            if not hasattr(target, part):
                raise ValueError(
                    f"unknown inductor option {name!r} for torch {torch.__version__}: see torch/_inductor/config.py "
                    "for the names this version has"
                )
            target = getattr(target, part)


def compile_plan(settings: EngineSettings, cuda: bool) -> tuple[bool, bool]:
    """(compiled, graphed): compile at all (default: on CUDA), and replay as a CUDA graph (CUDA + inductor)."""
    compiled = settings.compile if settings.compile is not None else cuda
    return compiled, compiled and cuda and settings.compile_backend == "inductor"


def compile_generator(
    generator: nn.Module, settings: EngineSettings, graphed: bool, mutable_buffers: Iterable[torch.Tensor]
) -> Callable[[], torch.Tensor]:
    """`generator` compiled as one graph; with `graphed` (CUDA + inductor), replayed as one CUDA graph.

    mutable_buffers: the tensors written in place between calls (static addresses for graph trees).
    """
    use_compile_cache(compile_cache_folder(settings))
    for buffer in mutable_buffers:
        torch._dynamo.mark_static_address(buffer)
    options: dict = {"fullgraph": True, "dynamic": False, "backend": settings.compile_backend}
    if graphed:
        from torch._inductor import list_mode_options  # noqa: PLC0415 - inductor loads only when compiling

        from sonosteer.engine.inductor_choices import cache_key_options, compiling_with_persistent_rows  # noqa: PLC0415

        inductor = dict(list_mode_options(settings.compile_mode))
        inductor["triton.cudagraphs"] = settings.graph_capture == "trees"
        check_inductor_options(settings.inductor_options)
        if settings.persistent_norms:
            inductor.update(cache_key_options())
        inductor.update(settings.inductor_options)
        options["options"] = inductor
    compiled = torch.compile(generator, **options)
    if graphed and settings.persistent_norms:
        compiled = compiling_with_persistent_rows(compiled)
    if graphed and settings.graph_capture == "manual":
        return CapturedGraph(compiled)
    return compiled
