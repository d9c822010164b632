"""A picture of what the bridge plays: strengths, prompt blend and noise angle over a stretch of a track."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sonosteer.blocks import BLOCK_NAMES
from sonosteer.bridge.planner import FramePlanner


def plan_series(planner: FramePlanner, start_s: float, duration_s: float, fps: float = 50.0) -> dict[str, np.ndarray]:
    """Run the planner over [start_s, start_s + duration_s) at `fps`; arrays of what it planned."""
    if duration_s <= 0 or fps <= 0:
        raise ValueError("duration_s and fps must be positive")
    times = start_s + np.arange(int(round(duration_s * fps))) / fps
    frames = [planner.plan(float(t)) for t in times]
    return {
        "time_s": times,
        "strength": np.array([[b.strength for b in f.blocks] for f in frames]),
        "mask_row": np.array([[_mask_centre(b.mask) for b in f.blocks] for f in frames]),
        "prompt_blend": np.array([f.prompt_blend for f in frames]),
        "noise_angle_rad": np.array([f.noise_angle_rad for f in frames]),
    }


def _mask_centre(mask: np.ndarray) -> float:
    """Vertical centre of a mask's weight (0 = top, 1 = bottom); NaN for an empty mask."""
    rows = mask.sum(axis=1)
    total = rows.sum()
    return float(((np.arange(len(rows)) + 0.5) / len(rows) * rows).sum() / total) if total > 0 else float("nan")


def plot_preview(series: dict[str, np.ndarray], path: Path | str, title: str = "") -> Path:
    """Four stacked panels: block strengths, mask centres, prompt blend, noise angle (mod 2 pi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = series["time_s"]
    fig, axes = plt.subplots(4, 1, figsize=(12, 9), sharex=True, height_ratios=[3, 1.5, 1, 1])
    for i, name in enumerate(BLOCK_NAMES):
        axes[0].plot(t, series["strength"][:, i], label=name, lw=1.2)
        axes[1].plot(t, series["mask_row"][:, i], label=name, lw=1.2)
    axes[0].set_ylabel("strength\n(mean activations)")
    axes[0].legend(loc="upper right", ncol=4, fontsize=8)
    axes[1].set_ylabel("mask centre\n(0 top, 1 bottom)")
    axes[1].set_ylim(1.05, -0.05)
    axes[2].plot(t, series["prompt_blend"], color="k", lw=1.2)
    axes[2].set_ylabel("prompt blend\n(A 0, B 1)")
    axes[2].set_ylim(-0.05, 1.05)
    axes[3].plot(t, np.mod(series["noise_angle_rad"], 2 * np.pi), color="tab:purple", lw=1.0)
    axes[3].set_ylabel("noise angle\n(rad, mod 2 pi)")
    axes[3].set_xlabel("media time (s)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title or "sonosteer bridge preview")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
