"""FrameControls: the plain-data contract between the bridge and the engine (design.md contract 2).

One instance describes one frame. The engine applies it with in-place writes into fixed GPU
buffers; a changed feature id (flagged by `feature_dirty`) is the rare, slower path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sonosteer.blocks import BLOCKS, MASK_SIZE


@dataclass(frozen=True)
class PromptBlend:
    """A prompt point between two others: SLERP(embed(a), embed(b), t), t in [0, 1].

    Loading a new destination freezes the current blend as the new prompt A, so `a` may itself
    be a PromptBlend (a short chain; the bridge collapses t = 0 / t = 1 and caps the depth). The
    engine resolves a PromptBlend once, when it first sees it (it is hashable: use it as a cache
    key), with `sonosteer.bridge.slerp.resolve_prompt` or the same formula in torch, and then
    SLERPs the cached A and B embeddings every frame. The formula is `sonosteer.bridge.slerp.slerp`.
    """

    a: str | PromptBlend
    b: str | PromptBlend
    t: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.t <= 1.0:
            raise ValueError(f"PromptBlend.t must be in [0, 1], got {self.t}")

    @property
    def depth(self) -> int:
        """Number of nested blends (1 for a blend of two plain prompts)."""
        da = self.a.depth if isinstance(self.a, PromptBlend) else 0
        db = self.b.depth if isinstance(self.b, PromptBlend) else 0
        return 1 + max(da, db)


PromptRef = str | PromptBlend
"""A prompt the engine can embed: plain text, or a frozen blend of two prompt refs."""


def full_mask() -> np.ndarray:
    """A 16x16 mask of ones: steer everywhere."""
    return np.ones((MASK_SIZE, MASK_SIZE), dtype=np.float32)


@dataclass
class BlockControls:
    """Steering of one block for one frame.

    feature_id: SAE feature index (0..5119).
    strength: in units of the feature's mean activation (1.0 = one mean activation).
    mask: (16, 16) float32 in [0, 1], row 0 at the top of the image.
    feature_dirty: True when feature_id differs from the previous frame's (engine copies a decoder column).
    """

    feature_id: int = 0
    strength: float = 0.0
    mask: np.ndarray = field(default_factory=full_mask)
    feature_dirty: bool = True


@dataclass
class FrameControls:
    """Everything the engine needs for one frame.

    blocks: one BlockControls per steered block, in `sonosteer.blocks.BLOCKS` order.
    prompt_a / prompt_b: the two prompt destinations; prompt_blend in [0, 1] is the SLERP position
        (`sonosteer.bridge.slerp.slerp`, along the embedding's last axis). prompt_a may be a
        PromptBlend (a frozen earlier blend); it changes only when a destination is loaded.
    Masks may be shared, read-only arrays: copy them into the engine's buffer, never write to them.
    seed_a / seed_b: seeds of the two noise tensors; noise_angle_rad is the circular-walk angle,
        noise = cos(angle) * noise_a + sin(angle) * noise_b.
    media_time_s: the audio time this frame is rendered for.
    frame_index: the planner's running frame counter.
    """

    blocks: list[BlockControls] = field(default_factory=lambda: [BlockControls() for _ in BLOCKS])
    prompt_a: PromptRef = ""
    prompt_b: str = ""
    prompt_blend: float = 0.0
    seed_a: int = 0
    seed_b: int = 1
    noise_angle_rad: float = 0.0
    media_time_s: float = 0.0
    frame_index: int = 0

    def validate(self) -> None:
        """Raise ValueError with a clear message if any field is out of its documented range."""
        if len(self.blocks) != len(BLOCKS):
            raise ValueError(f"FrameControls needs {len(BLOCKS)} blocks, got {len(self.blocks)}")
        for block, bc in zip(BLOCKS, self.blocks):
            if bc.mask.shape != (MASK_SIZE, MASK_SIZE):
                raise ValueError(
                    f"block {block.short_name}: mask must be {MASK_SIZE}x{MASK_SIZE}, got {bc.mask.shape}"
                )
            if not math.isfinite(bc.strength):
                raise ValueError(f"block {block.short_name}: strength must be finite, got {bc.strength}")
        for name, ref in (("prompt_a", self.prompt_a), ("prompt_b", self.prompt_b)):
            if not isinstance(ref, (str, PromptBlend)):
                raise ValueError(f"{name} must be a str or PromptBlend, got {type(ref).__name__}")
        if not 0.0 <= self.prompt_blend <= 1.0:
            raise ValueError(f"prompt_blend must be in [0, 1], got {self.prompt_blend}")
        if not math.isfinite(self.noise_angle_rad):
            raise ValueError(f"noise_angle_rad must be finite, got {self.noise_angle_rad}")
