"""Seeds -> unit Gaussian latent noise, reproducible on every device (drawn on the CPU) and cached."""

from __future__ import annotations

import torch

from sonosteer.engine.lru_cache import LruCache


def seeded_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """float32 standard normal noise of `shape` from `seed` (a CPU generator: same values on any machine)."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=generator, dtype=torch.float32)


class NoiseBank:
    """Noise tensors by seed, on the engine's device, least recently used dropped first."""

    def __init__(self, shape: tuple[int, ...], device: torch.device, cache_size: int = 32):
        self.shape = tuple(shape)
        self.device = device
        self.cache: LruCache[int, torch.Tensor] = LruCache(
            lambda seed: seeded_noise(seed, self.shape).to(device), cache_size
        )

    def __call__(self, seed: int) -> torch.Tensor:
        return self.cache.get(int(seed))
