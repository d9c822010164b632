"""The analysis' worker threads, and wall/CPU seconds per stage across them.

Parallelism is by task (one stem family or one chunk's separation per task), so the numeric
libraries inside run single-threaded: BLAS/OpenMP through threadpoolctl, torch through
set_num_threads (applied once torch is imported, by whichever task imports it), ONNX Runtime by
its session options. The heavy kernels (numpy, scipy.fft, numba `nogil`, torch, ONNX Runtime)
release the GIL, so threads share the cores without copying audio between processes.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Self

MAX_WORKERS = 4


def default_workers() -> int:
    """One worker per core available to this process, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


@dataclass
class StageTimes:
    """Wall and CPU seconds per stage, measured on the thread that ran the stage; merge across threads."""

    wall_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.wall_s[name] += time.perf_counter() - wall
            self.cpu_s[name] += time.thread_time() - cpu

    def merge(self, other: StageTimes) -> None:
        for name, seconds in other.wall_s.items():
            self.wall_s[name] += seconds
        for name, seconds in other.cpu_s.items():
            self.cpu_s[name] += seconds


class SingleThreadedKernels:
    """Keeps BLAS/OpenMP and torch at one thread each while the pool runs; restores them after."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._torch_threads: int | None = None
        self._blas = None

    def __enter__(self) -> Self:
        from threadpoolctl import threadpool_limits

        self._blas = threadpool_limits(limits=1)
        self.limit_torch()
        return self

    def limit_torch(self) -> None:
        """Call after importing torch (a no-op when torch is not imported or already limited)."""
        import sys

        torch = sys.modules.get("torch")
        with self._lock:
            if torch is not None and self._torch_threads is None:
                self._torch_threads = torch.get_num_threads()
                torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        import sys

        with self._lock:
            if self._torch_threads is not None:
                sys.modules["torch"].set_num_threads(self._torch_threads)
                self._torch_threads = None
        if self._blas is not None:
            self._blas.restore_original_limits()
            self._blas = None


@contextmanager
def analysis_pool(workers: int) -> Iterator[tuple[ThreadPoolExecutor, SingleThreadedKernels]]:
    """A thread pool of `workers` threads with single-threaded numeric kernels; queued tasks are
    cancelled when the block exits early (error or Ctrl-C)."""
    with SingleThreadedKernels() as kernels:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sonosteer-analysis")
        try:
            yield pool, kernels
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
