"""Inductor's heuristics with one change: rows of up to 2048 elements reduce in one pass.

Inductor compiles a row reduction as a persistent kernel (the row held in registers, read once)
only up to 1024 elements; wider rows loop over the row twice, once for the statistics and once to
normalise. SDXL's 180 layer norms a frame over 1280-wide rows of 256 tokens are latency-bound, and
in one pass they took the frame's graph from 6.86 to 6.70 ms on an H200 (docs/engine-performance.md).

Imported only when compiling: it loads inductor.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from torch._inductor import config as inductor_config
from torch._inductor.choices import InductorChoices
from torch._inductor.runtime.hints import ReductionHint
from torch._inductor.virtualized import V

PERSISTENT_ROW_LIMIT = 2048
"""Widest row (elements) that reduces in one pass; inductor's own limit is 1024."""

T = TypeVar("T")


class PersistentRowChoices(InductorChoices):
    """InductorChoices whose inner (row) reductions up to PERSISTENT_ROW_LIMIT elements are persistent."""

    @staticmethod
    def should_use_persistent_reduction(features: Any, cooperative_reduction: bool, *args: Any) -> bool:
        if InductorChoices.should_use_persistent_reduction(features, cooperative_reduction, *args):
            return True
        numel = features.reduction_numel
        return (
            not cooperative_reduction
            and features.get_reduction_hint() == ReductionHint.INNER
            and numel.is_number
            and int(numel) <= PERSISTENT_ROW_LIMIT
        )

    def uuid(self) -> str:
        """Part of inductor's cache key (where its config names this class): kernels differ with the limit."""
        return f"sonosteer.PersistentRowChoices.{PERSISTENT_ROW_LIMIT}"


def cache_key_options() -> dict[str, object]:
    """Inductor options that put these heuristics into the compile cache's key, where inductor's config has
    the hook (`inductor_choices_class`): a graph compiled without them is then not reused with them."""
    return {"inductor_choices_class": PersistentRowChoices} if hasattr(inductor_config, "inductor_choices_class") else {}


def compiling_with_persistent_rows(fn: Callable[[], T]) -> Callable[[], T]:
    """`fn` (a torch.compile'd function, compiled at its first calls) called with PersistentRowChoices as
    inductor's heuristics; they are per thread, and restored after each call."""

    def call() -> T:
        with V.set_choices_handler(PersistentRowChoices()):
            return fn()

    return call
