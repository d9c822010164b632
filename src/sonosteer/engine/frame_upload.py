"""One frame's small controls (strengths, masks, prompt blend, noise angle) in one host-to-device copy.

Every per-frame value the generator reads lives in one float32 device tensor; the modules' buffers
are views into it. `apply` writes the values on the host and `upload` sends them with a single
copy from pinned memory, where writing each buffer in place was a kernel launch per value (six
`fill_`s and a copy per changed mask). Two pinned staging buffers alternate, each reused only
after its last copy has run, so the host can write the next frame while the GPU works.
"""

from __future__ import annotations

import math

import numpy as np
import torch

STAGING_BUFFERS = 2


class FrameUpload:
    """Named float32 fields packed into one device tensor, written on the host and uploaded at once.

    fields: name -> shape, in packing order. `view(name)` is the device view a module reads;
    `host(name)` the numpy array to write; `upload()` copies all of them to the device.
    """

    def __init__(self, fields: dict[str, tuple[int, ...]], device: torch.device):
        self._slices: dict[str, tuple[slice, tuple[int, ...]]] = {}
        offset = 0
        for name, shape in fields.items():
            size = math.prod(shape)
            self._slices[name] = (slice(offset, offset + size), tuple(shape))
            offset += size
        self.packed = torch.zeros(offset, dtype=torch.float32, device=device)
        self._values = np.zeros(offset, dtype=np.float32)
        cuda = device.type == "cuda"
        self._staging = [torch.zeros(offset, dtype=torch.float32, pin_memory=cuda) for _ in range(STAGING_BUFFERS)]
        self._staging_arrays = [staging.numpy() for staging in self._staging]
        self._copied = [torch.cuda.Event() if cuda else None for _ in range(STAGING_BUFFERS)]
        self._next = 0

    def view(self, name: str) -> torch.Tensor:
        """The device view of one field (its buffer in the module that reads it)."""
        where, shape = self._slices[name]
        return self.packed[where].view(shape)

    def host(self, name: str) -> np.ndarray:
        """The host array of one field: write it, then `upload()`."""
        where, shape = self._slices[name]
        return self._values[where].reshape(shape)

    def upload(self) -> None:
        """Copy every field to the device: one copy, queued on the current stream (asynchronous on CUDA)."""
        staging, copied = self._staging[self._next], self._copied[self._next]
        if copied is not None:
            copied.synchronize()  # its previous copy has run (at once unless the GPU is far behind)
        self._staging_arrays[self._next][:] = self._values
        self.packed.copy_(staging, non_blocking=True)
        if copied is not None:
            copied.record()
        self._next = (self._next + 1) % STAGING_BUFFERS
