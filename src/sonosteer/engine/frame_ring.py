"""A ring of host frame buffers: a frame handed out is never overwritten by the next few renders.

On CUDA the buffers are pinned, so the device-to-host copy is a DMA transfer that can run
asynchronously; the engine waits for it before handing the frame out.
"""

from __future__ import annotations

import numpy as np
import torch


class FrameRing:
    """`size` (H, W, 3) uint8 host tensors used in turn; `next()` returns the one to fill now."""

    def __init__(self, size: int, height: int, width: int, pinned: bool):
        if size < 2:
            raise ValueError(f"a frame ring needs at least 2 buffers, got {size}")
        self.slots = [torch.empty((height, width, 3), dtype=torch.uint8, pin_memory=pinned) for _ in range(size)]
        self.arrays = [slot.numpy() for slot in self.slots]
        self._index = -1

    def __len__(self) -> int:
        return len(self.slots)

    def next(self) -> tuple[torch.Tensor, np.ndarray]:
        """The next slot as a tensor (to copy into) and the numpy view of the same memory (to hand out)."""
        self._index = (self._index + 1) % len(self.slots)
        return self.slots[self._index], self.arrays[self._index]
