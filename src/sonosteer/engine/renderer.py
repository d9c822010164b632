"""The Renderer protocol: what every engine kind (SDXL-Turbo, preview) offers the server.

Plain typing only (no torch import), so the server and tests can depend on it anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from sonosteer.bridge.frame_controls import FrameControls

ProgressFn = Callable[[float, str], None]
"""progress(fraction in [0, 1], message) for long steps such as loading and compiling."""


@dataclass(frozen=True)
class FeatureInfo:
    """What a block's SAE offers: how many features, and which are dead (never fire)."""

    n_features: int
    dead_ids: frozenset[int] = field(default_factory=frozenset)


@runtime_checkable
class Renderer(Protocol):
    """Turns FrameControls into uint8 RGB frames of a fixed size.

    kind: "sdxl-turbo" or "preview". label: one human line for the terminal and the UI status,
    e.g. "SDXL-Turbo, CUDA graph, fp16" or "preview renderer (no CUDA)".
    render() returns an (height, width, 3) uint8 array that stays valid for `ring_size - 1`
    further renders; copy it if it must live longer.
    last_timings_ms: the split of the latest render (e.g. {"apply": .., "gpu": .., "d2h": ..}).

    A renderer may also encode its frames itself (SDXL-Turbo with nvJPEG on the GPU): then it has
    `encodes_jpeg = True`, `launch()` (start the current frame, return at once) and
    `collect_jpeg(quality) -> bytes` (wait for it), which the server uses instead of `render()`
    plus its own CPU encoder; between the two it may `apply` the next frame's controls.
    """

    kind: str
    label: str
    height: int
    width: int
    ring_size: int
    last_timings_ms: dict[str, float]

    def warmup(self, progress: ProgressFn | None = None) -> None: ...

    def apply(self, controls: FrameControls) -> None: ...

    def render(self) -> np.ndarray: ...

    def features(self) -> dict[str, FeatureInfo]: ...

    def close(self) -> None: ...
