"""SAE steering without hooks: the four UNet attention blocks are replaced by a wrapper that adds
`scale * activation_map * direction` to the block's output.

The wrapper's per-frame state lives in registered buffers that are only ever written in place
(`fill_` / `copy_`), so a captured CUDA graph keeps reading the current values; the addition
always runs (scale 0 adds exact zeros), so the graph has no branch. Adding to the block output
equals adding to the block's update (output minus input), which is what the SAEs encode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sonosteer.blocks import BLOCKS, Block
from sonosteer.engine.errors import SaeMismatchError


class SteeredBlock(nn.Module):
    """One steered attention block.

    Buffers (not saved with the UNet's state_dict):
      direction: (channels,) unit feature direction (a renormalised SAE decoder column).
      scale: () strength x the feature's mean activation, i.e. activation units.
      activation_map: (grid_h, grid_w) spatial weights in [0, 1] at the block's resolution.
    The engine replaces scale and activation_map by float32 views of its one per-frame upload
    (`frame_upload.py`); their product is cast to the block's dtype.
    """

    def __init__(self, inner: nn.Module, channels: int, grid_hw: tuple[int, int], dtype: torch.dtype):
        super().__init__()
        device = next(inner.parameters()).device
        self.inner = inner
        self.register_buffer("direction", torch.zeros(channels, device=device, dtype=dtype), persistent=False)
        self.register_buffer("scale", torch.zeros((), device=device, dtype=dtype), persistent=False)
        self.register_buffer("activation_map", torch.ones(grid_hw, device=device, dtype=dtype), persistent=False)

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        result = self.inner(hidden_states, *args, **kwargs)
        sample = result[0] if isinstance(result, tuple) else result.sample
        steered = sample + (self.scale * self.activation_map).to(sample.dtype) * self.direction[:, None, None]
        if isinstance(result, tuple):
            return (steered, *result[1:])
        return type(result)(sample=steered)


def block_channels(module: nn.Module) -> int:
    """Channels a diffusers Transformer2DModel block outputs."""
    channels = getattr(module, "out_channels", None) or getattr(module, "in_channels", None)
    if channels is None:
        raise SaeMismatchError(f"{type(module).__name__} has no in_channels/out_channels: not an attention block")
    return int(channels)


def block_grid(unet_config: Any, block: Block, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """Spatial size (h, w) of `block`'s output for a latent of `latent_hw`, from the UNet's level structure."""
    n_levels = len(unet_config.block_out_channels)
    head, index = block.module_path.split(".")[:2]
    if head == "down_blocks":
        level = int(index)
    elif head == "mid_block":
        level = n_levels - 1
    elif head == "up_blocks":
        level = n_levels - 1 - int(index)
    else:
        raise ValueError(f"cannot place block {block.module_path} in the UNet's levels")
    factor = 2**level
    return latent_hw[0] // factor, latent_hw[1] // factor


def install_steering(
    unet: nn.Module, d_models: dict[str, int], latent_hw: tuple[int, int], dtype: torch.dtype
) -> dict[str, SteeredBlock]:
    """Replace the four blocks of `unet` by SteeredBlocks; `d_models` maps block short name to SAE width.

    Raises SaeMismatchError when an SAE's width differs from its block's channel count.
    """
    wrappers = {}
    for block in BLOCKS:
        inner = unet.get_submodule(block.module_path)
        if isinstance(inner, SteeredBlock):
            raise ValueError(f"block {block.short_name} is already steered")
        channels = block_channels(inner)
        if d_models[block.short_name] != channels:
            raise SaeMismatchError(
                f"the SAE for block {block.short_name} has d_model={d_models[block.short_name]}, but "
                f"{block.module_path} outputs {channels} channels: this SAE belongs to another model"
            )
        wrapper = SteeredBlock(inner, channels, block_grid(unet.config, block, latent_hw), dtype)
        parent_path, child = block.module_path.rsplit(".", 1)
        setattr(unet.get_submodule(parent_path), child, wrapper)
        wrappers[block.short_name] = wrapper
    return wrappers


def resize_mask(mask: np.ndarray, grid_hw: tuple[int, int]) -> torch.Tensor:
    """The 16x16 FrameControls mask at a block's resolution.

    Shrinking averages the mask over each block cell's footprint (area); growing is bilinear.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
    if tuple(grid_hw) == tuple(tensor.shape):
        return tensor
    shrinking = grid_hw[0] <= tensor.shape[0] and grid_hw[1] <= tensor.shape[1]
    mode = {"mode": "area"} if shrinking else {"mode": "bilinear", "align_corners": False}
    return F.interpolate(tensor[None, None], size=tuple(grid_hw), **mode)[0, 0]
