"""One CUDA graph around a compiled, argument-free function: capture once, then replay per frame.

Why not inductor's CUDA-graph trees: the generator takes no inputs (every per-frame value is a
buffer written in place), so the trees' per-call bookkeeping (input checks, pool management,
step marks) is pure host overhead. A plain `torch.cuda.CUDAGraph` replay costs one launch.
"""

from __future__ import annotations

from typing import Callable

import torch

WARMUP_CALLS = 2
"""Calls on a side stream before capture: the first compiles, the second lets lazy library state settle."""


class CapturedGraph:
    """`fn` captured into a CUDA graph at the first call; each call replays it and returns the same tensor.

    The output lives in the graph's memory pool and is overwritten by the next replay: copy what
    must live longer. Inputs are read from the addresses seen at capture, so they must be
    updated in place.
    """

    def __init__(self, fn: Callable[[], torch.Tensor]):
        self._fn = fn
        self._graph: torch.cuda.CUDAGraph | None = None
        self._output: torch.Tensor | None = None

    @property
    def captured(self) -> bool:
        return self._graph is not None

    @property
    def fn(self) -> Callable[[], torch.Tensor]:
        """The function captured: called directly, it launches the graph's kernels one by one (for profiling)."""
        return self._fn

    def _capture(self) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_CALLS):
                self._fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._output = self._fn()
        self._graph = graph

    def __call__(self) -> torch.Tensor:
        if self._graph is None:
            self._capture()
        self._graph.replay()
        return self._output
