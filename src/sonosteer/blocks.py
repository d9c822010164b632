"""The four steered SDXL-Turbo UNet attention blocks and the SAE checkpoint naming (design.md)."""

from __future__ import annotations

from dataclasses import dataclass

MASK_SIZE = 16
"""Side of the spatial steering mask; every steered block is 16x16 at 512x512 output."""

SAE_N_FEATURES = 5120
SAE_D_MODEL = 1280


@dataclass(frozen=True)
class Block:
    """One steered block: its short name, its module path inside the UNet, what it shapes."""

    short_name: str
    module_path: str
    role: str

    @property
    def sae_folder(self) -> str:
        """Folder name of this block's SAE inside the sdxl-unbox checkpoint repo."""
        return f"unet.{self.module_path}_k10_hidden5120_auxk256_bs4096_lr0.0001"


BLOCKS: tuple[Block, ...] = (
    Block("down.2.1", "down_blocks.2.attentions.1", "composition, mood, scenes"),
    Block("mid.0", "mid_block.attentions.0", "abstract spatial structure"),
    Block("up.0.0", "up_blocks.0.attentions.0", "local details (faces, objects)"),
    Block("up.0.1", "up_blocks.0.attentions.1", "style, textures, palettes"),
)

BLOCK_NAMES: tuple[str, ...] = tuple(b.short_name for b in BLOCKS)


def block_by_name(short_name: str) -> Block:
    """Look a block up by its short name, with an error that lists the valid names."""
    for block in BLOCKS:
        if block.short_name == short_name:
            return block
    raise KeyError(f"unknown block {short_name!r}; expected one of {', '.join(BLOCK_NAMES)}")
