"""Rolling statistics of recent samples (latencies, intervals), safe to feed from one thread and read from another."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RollingStats:
    """The last `size` samples; median / percentile / rate over them. Thread-safe."""

    def __init__(self, size: int = 64):
        self._samples: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._samples.append(float(value))
            self.count += 1

    def values(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._samples, dtype=np.float64, count=len(self._samples))

    def median(self, default: float = 0.0) -> float:
        v = self.values()
        return float(np.median(v)) if v.size else default

    def percentile(self, q: float, default: float = 0.0) -> float:
        v = self.values()
        return float(np.percentile(v, q)) if v.size else default

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()


class RateMeter:
    """Events per second over a sliding window of event times (seconds, any monotonic clock)."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._first_s: float | None = None
        self._lock = threading.Lock()

    def tick(self, now_s: float) -> None:
        with self._lock:
            if self._first_s is None:
                self._first_s = now_s
            self._times.append(now_s)
            self._trim(now_s)

    def rate(self, now_s: float) -> float:
        """Events in the last window divided by the window (or by the time since the first event)."""
        with self._lock:
            self._trim(now_s)
            if self._first_s is None:
                return 0.0
            span = min(self.window_s, now_s - self._first_s)
            return len(self._times) / span if span > 0 else 0.0

    def _trim(self, now_s: float) -> None:
        while self._times and self._times[0] < now_s - self.window_s:
            self._times.popleft()
