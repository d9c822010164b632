"""The one-step SDXL-Turbo generator: noise -> UNet -> Euler step to x0 -> TAESD decode -> uint8 HWC.

Everything a frame varies by is a registered buffer written in place between calls (prompt
pair and blend, noise pair and angle, and the steering buffers inside the UNet), so `forward`
takes no arguments, has no data-dependent Python branch and allocates nothing it keeps: one
graph for `torch.compile(fullgraph=True)`, captured into one CUDA graph on CUDA; eager on CPU.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sonosteer.engine.slerp import slerp


def one_step_schedule(scheduler_config: dict[str, Any]) -> tuple[float, float]:
    """(timestep, sigma) of the single step of SDXL-Turbo's EulerAncestral schedule (trailing: 999, ~14.6146)."""
    from diffusers import EulerAncestralDiscreteScheduler  # noqa: PLC0415 - heavy import, engine-only

    scheduler = EulerAncestralDiscreteScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(1)
    return float(scheduler.timesteps[0]), float(scheduler.sigmas[0])


class OneStepGenerator(nn.Module):
    """UNet + decoder + the per-frame input buffers; `forward()` returns the frame as (H, W, 3) uint8.

    batch > 1 (offline rendering): every item shares the prompt blend and steering and has its own
    noise; `forward()` then returns (batch, H, W, 3).

    Buffers (float32 unless noted), all written in place by the engine:
      prompt_a / prompt_b: (1, 77, context) token embeddings; pooled_a / pooled_b: (1, pooled).
      blend: () SLERP position between prompt A (0) and B (1), per token (`sonosteer.engine.slerp`).
      noise_a / noise_b: (batch, 4, H/8, W/8) unit Gaussian noise; angle: () radians,
        noise = cos(angle) * noise_a + sin(angle) * noise_b.
      time_ids (model dtype): [H, W, 0, 0, H, W], SDXL's size/crop conditioning.
    """

    def __init__(
        self,
        unet: nn.Module,
        decoder: nn.Module,
        *,
        height: int,
        width: int,
        timestep: float,
        sigma: float,
        sequence_length: int,
        pooled_width: int,
        dtype: torch.dtype,
        cross_kv: nn.Module | None = None,
        batch: int = 1,
    ):
        super().__init__()
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.batch, self.height, self.width = batch, height, width
        self.unet = unet
        self.decoder = decoder
        self.dtype = dtype
        self.cross_kv = cross_kv
        self.sigma = float(sigma)
        self.input_scale = 1.0 / math.sqrt(self.sigma**2 + 1.0)
        self.latent_scale = float(decoder.config.scaling_factor)
        device = next(unet.parameters()).device
        latent_shape = (batch, int(unet.config.in_channels), height // 8, width // 8)
        context = int(unet.config.cross_attention_dim)
        f32 = {"device": device, "dtype": torch.float32}
        buffers = {
            "prompt_a": torch.zeros(1, sequence_length, context, **f32),
            "prompt_b": torch.zeros(1, sequence_length, context, **f32),
            "pooled_a": torch.zeros(1, pooled_width, **f32),
            "pooled_b": torch.zeros(1, pooled_width, **f32),
            "blend": torch.zeros((), **f32),
            "noise_a": torch.zeros(latent_shape, **f32),
            "noise_b": torch.zeros(latent_shape, **f32),
            "angle": torch.zeros((), **f32),
            "timestep": torch.tensor([timestep], **f32),
            "time_ids": torch.tensor([[height, width, 0, 0, height, width]], device=device, dtype=dtype),
        }
        for name, tensor in buffers.items():
            self.register_buffer(name, tensor, persistent=False)

    def denoise(self) -> torch.Tensor:
        """x0 latent (float32) of the current prompt blend, noise angle and steering."""
        if self.cross_kv is not None:  # blend the cached K/V; the token embeddings are then not read
            self.cross_kv(self.blend)
            embeds = self.prompt_a.to(self.dtype)
        else:
            embeds = slerp(self.prompt_a, self.prompt_b, self.blend).to(self.dtype)
        pooled = slerp(self.pooled_a, self.pooled_b, self.blend).to(self.dtype)
        time_ids = self.time_ids
        if self.batch > 1:  # one prompt blend for every item; each item has its own noise
            embeds, pooled, time_ids = (x.expand(self.batch, *x.shape[1:]) for x in (embeds, pooled, time_ids))
        noise = torch.cos(self.angle) * self.noise_a + torch.sin(self.angle) * self.noise_b
        noisy = noise * self.sigma  # text-to-image: the clean latent is zero
        eps = self.unet(
            (noisy * self.input_scale).to(self.dtype),
            self.timestep,
            encoder_hidden_states=embeds,
            added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids},
            return_dict=False,
        )[0]
        return noisy - self.sigma * eps.float()

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """(H, W, 3) uint8 RGB of a latent through the tiny autoencoder's decoder; (batch, H, W, 3) for a batch."""
        image = self.decoder.decode((x0 / self.latent_scale).to(self.dtype), return_dict=False)[0]
        rgb = (image.float() * 0.5 + 0.5).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
        rgb = rgb.permute(0, 2, 3, 1).contiguous()
        return rgb[0] if self.batch == 1 else rgb

    def forward(self) -> torch.Tensor:
        return self.decode(self.denoise())

    def with_batch(self, batch: int, seed: int = 0) -> "OneStepGenerator":
        """A generator of `batch` items sharing this one's models, prompt pair, blend, angle and steering,
        with unit Gaussian noise pairs drawn from `seed` (offline rendering and throughput)."""
        other = OneStepGenerator(
            self.unet,
            self.decoder,
            height=self.height,
            width=self.width,
            timestep=float(self.timestep),
            sigma=self.sigma,
            sequence_length=self.prompt_a.shape[1],
            pooled_width=self.pooled_a.shape[1],
            dtype=self.dtype,
            cross_kv=self.cross_kv,
            batch=batch,
        )
        for name in ("prompt_a", "prompt_b", "pooled_a", "pooled_b", "blend", "angle"):
            getattr(other, name).copy_(getattr(self, name))
        gen = torch.Generator().manual_seed(seed)
        for noise in (other.noise_a, other.noise_b):
            noise.copy_(torch.randn(noise.shape, generator=gen))
        return other
