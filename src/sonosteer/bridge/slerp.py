"""Reference SLERP for prompt embeddings: the formula the engine implements (in torch) too.

For each vector along the last axis (each token of a (77, 2048) prompt embedding, the pooled
(1280,) embedding as one vector), with u = a/|a|, w = b/|b| and omega = arccos(u.w):

    direction = (sin((1 - t) omega) u + sin(t omega) w) / sin(omega)
    slerp(a, b, t) = ((1 - t) |a| + t |b|) * direction / |direction|

Direction moves along the great circle, the norm moves linearly: equal norms are kept exactly,
t = 0 gives a and t = 1 gives b. Where sin(omega) < 1e-6 (parallel or opposite vectors) or a
norm is zero, the direction falls back to the normalised linear interpolation (and to plain
linear interpolation when that is zero too).
"""

from __future__ import annotations

from typing import Callable, TypeVar

import numpy as np

from sonosteer.bridge.frame_controls import PromptBlend, PromptRef

EPS = 1e-6

E = TypeVar("E")


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of a and b along the last axis (see the module docstring)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"slerp needs equal shapes, got {a.shape} and {b.shape}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"slerp position t must be in [0, 1], got {t}")
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    u = a / np.maximum(na, EPS)
    w = b / np.maximum(nb, EPS)
    cos = np.clip(np.sum(u * w, axis=-1, keepdims=True), -1.0, 1.0)
    omega = np.arccos(cos)
    sin = np.sin(omega)
    great = (sin >= EPS) & (na >= EPS) & (nb >= EPS)
    safe_sin = np.where(great, sin, 1.0)
    direction = np.where(
        great,
        (np.sin((1.0 - t) * omega) * u + np.sin(t * omega) * w) / safe_sin,
        (1.0 - t) * u + t * w,
    )
    dnorm = np.linalg.norm(direction, axis=-1, keepdims=True)
    norm = (1.0 - t) * na + t * nb
    out = np.where(dnorm >= EPS, norm * direction / np.maximum(dnorm, EPS), (1.0 - t) * a + t * b)
    return out


def resolve_prompt(
    ref: PromptRef,
    embed: Callable[[str], E],
    slerp_fn: Callable[[E, E, float], E] = slerp,
    cache: dict[PromptRef, E] | None = None,
) -> E:
    """The embedding of a prompt ref: `embed(text)` for text, SLERP of the parts for a PromptBlend.

    `embed` and `slerp_fn` may work on any array type (the engine passes its torch versions);
    `cache`, keyed by the (hashable) refs, avoids embedding the same text twice.
    """
    if cache is not None and ref in cache:
        return cache[ref]
    if isinstance(ref, PromptBlend):
        value = slerp_fn(
            resolve_prompt(ref.a, embed, slerp_fn, cache), resolve_prompt(ref.b, embed, slerp_fn, cache), ref.t
        )
    elif isinstance(ref, str):
        value = embed(ref)
    else:
        raise TypeError(f"a prompt ref is a str or PromptBlend, got {type(ref).__name__}")
    if cache is not None:
        cache[ref] = value
    return value
