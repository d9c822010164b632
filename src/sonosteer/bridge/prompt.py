"""Prompt destinations: where between prompt A and prompt B each frame sits, and loading a new B.

Modes: slider (the performer's crossfader), reactive (the rank-weighted average energy of the
linked stems pushes towards B, quiet passages drift back to A), linked (one stem drives the
blend through a dance model on [0, 1]: blend = intensity x position, both spring-smoothed). Loading a destination
freezes the current blend as the new A, makes the new prompt B, and starts again from blend 0:
you always travel from where you are. The engine SLERPs (see slerp.py); the bridge only says
which two prompts and where between them.
"""

from __future__ import annotations

import math

from sonosteer.bridge.frame_controls import PromptBlend, PromptRef
from sonosteer.bridge.settings import MAX_BLEND_DEPTH, FrozenBlend, PromptSettings
from sonosteer.bridge.spring import DESIGN_BPM, Spring

REACTIVE_TIME_S = 0.5
"""Time constant of the reactive blend (so the scene breathes with the music, not with each hit)."""
SNAP_EPS = 1e-3
"""A frozen blend this close to an end is stored as that end."""


def to_prompt_ref(a: str | FrozenBlend) -> PromptRef:
    """The engine-side (hashable) form of a scene's prompt A."""
    if isinstance(a, FrozenBlend):
        return PromptBlend(to_prompt_ref(a.a), a.b, a.t)
    return a


def _collapse_deepest(a: FrozenBlend) -> str | FrozenBlend:
    """Replace the innermost frozen blend by its nearer end (keeps the chain short)."""
    if isinstance(a.a, FrozenBlend):
        return a.model_copy(update={"a": _collapse_deepest(a.a)})
    return a.a if a.t < 0.5 else a.b


def freeze_destination(prompt: PromptSettings, current_blend: float, new_b: str) -> PromptSettings:
    """Prompt settings after loading `new_b`: A = the current blend of (A, B), B = new_b, blend = 0."""
    if not isinstance(new_b, str) or not new_b.strip():
        raise ValueError("a destination is a non-empty prompt")
    t = min(max(float(current_blend), 0.0), 1.0)
    if not prompt.b or t <= SNAP_EPS:
        new_a: str | FrozenBlend = prompt.a
    elif t >= 1.0 - SNAP_EPS:
        new_a = prompt.b
    else:
        new_a = FrozenBlend(a=prompt.a, b=prompt.b, t=t)
        while new_a.depth > MAX_BLEND_DEPTH:
            new_a = _collapse_deepest(new_a)
    return prompt.model_copy(update={"a": new_a, "b": new_b, "blend": 0.0})


class PromptModulator:
    """The blend position each frame for the scene's prompt mode."""

    __slots__ = ("mode", "slider", "reactive", "spring", "position", "blend")

    def __init__(self, prompt: PromptSettings, bpm: float = DESIGN_BPM):
        self.mode = prompt.mode
        self.slider = prompt.blend
        self.reactive = prompt.blend
        self.spring = Spring.from_preset(prompt.linked.physics_preset, bpm, x=prompt.blend)
        self.position = Spring.from_preset("linear", bpm, x=prompt.linked.position_fixed)
        self.blend = prompt.blend

    def configure(self, prompt: PromptSettings, bpm: float = DESIGN_BPM) -> None:
        """New settings, keeping the motion state (so changing a field never makes the scene jump)."""
        old_x, old_v = self.spring.x, self.spring.v
        self.spring = Spring.from_preset(prompt.linked.physics_preset, bpm, x=old_x)
        self.spring.v = old_v
        self.mode = prompt.mode
        self.slider = prompt.blend

    def restart(self, blend: float = 0.0) -> None:
        """Travel from `blend` again (after a destination is loaded)."""
        self.reactive = blend
        self.spring.reset(blend)
        self.blend = blend
        self.slider = blend

    def step(self, dt: float, reactive_target: float, linked_intensity: float, linked_position: float) -> float:
        if self.mode == "slider":
            blend = self.slider
        elif self.mode == "reactive":
            if dt > 0.0:
                self.reactive += (reactive_target - self.reactive) * (1.0 - math.exp(-dt / REACTIVE_TIME_S))
            blend = self.reactive
        else:
            blend = self.spring.step(dt, linked_intensity) * self.position.step(dt, linked_position)
        blend = 0.0 if blend < 0.0 else (1.0 if blend > 1.0 else blend)
        self.blend = blend
        return blend
