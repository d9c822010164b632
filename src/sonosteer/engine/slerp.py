"""Prompt-embedding SLERP in torch: the formula of `sonosteer.bridge.slerp` (its reference), per vector.

The result is a per-vector linear combination `w_a * a + w_b * b`: `weights_from_geometry` returns
the two weights (shape (..., 1)), which the fast attention path also uses to blend precomputed K/V.
Branch-free (torch.where), so it runs inside a captured graph.
"""

from __future__ import annotations

import torch

EPS = 1e-6


def pair_geometry(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-vector (|a|, |b|, u.w) of two embeddings, each (..., 1) float32: all SLERP needs besides t."""
    a = a.float()
    b = b.float()
    na = a.norm(dim=-1, keepdim=True)
    nb = b.norm(dim=-1, keepdim=True)
    uw = ((a / na.clamp_min(EPS)) * (b / nb.clamp_min(EPS))).sum(-1, keepdim=True)
    return na, nb, uw


def weights_from_geometry(
    na: torch.Tensor, nb: torch.Tensor, uw: torch.Tensor, t: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (w_a, w_b), each (..., 1), with slerp(a, b, t) = w_a * a + w_b * b along the last axis.

    Direction along the great circle, norm interpolated linearly; parallel/opposite vectors or
    zero norms fall back to the normalised lerp (and plain lerp when that vanishes), as the bridge does.
    """
    t = torch.as_tensor(t, dtype=torch.float32, device=na.device)
    inv_a = 1.0 / na.clamp_min(EPS)
    inv_b = 1.0 / nb.clamp_min(EPS)
    omega = torch.acos(uw.clamp(-1.0, 1.0))
    sin = torch.sin(omega)
    great = (sin >= EPS) & (na >= EPS) & (nb >= EPS)
    safe_sin = torch.where(great, sin, torch.ones_like(sin))
    # direction = c_a * u + c_b * w with u = a / |a|, w = b / |b|
    c_a = torch.where(great, torch.sin((1.0 - t) * omega) / safe_sin, (1.0 - t).expand_as(sin))
    c_b = torch.where(great, torch.sin(t * omega) / safe_sin, t.expand_as(sin))
    uu, ww = (na * inv_a) ** 2, (nb * inv_b) ** 2  # 1 unless a norm is below EPS
    dnorm = torch.sqrt((c_a**2 * uu + c_b**2 * ww + 2.0 * c_a * c_b * uw).clamp_min(0.0))
    norm = (1.0 - t) * na + t * nb
    scale = norm / dnorm.clamp_min(EPS)
    usable = dnorm >= EPS
    w_a = torch.where(usable, scale * c_a * inv_a, (1.0 - t).expand_as(sin))
    w_b = torch.where(usable, scale * c_b * inv_b, t.expand_as(sin))
    return w_a, w_b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """SLERP of a and b (float32) along the last axis at t in [0, 1]."""
    w_a, w_b = weights_from_geometry(*pair_geometry(a, b), t)
    return w_a * a.float() + w_b * b.float()
