"""A picture of a bundle: the main channels per stem, the beat grid, tension and novelty over time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sonosteer.audio.bundle import AnalysisBundle

PLOT_STEMS = ("drums", "bass", "vocals", "other", "drums_low", "drums_high", "other_mid")
STEM_COLORS = {"bass": "#f28e2b", "drums": "#d62ff0", "vocals": "#17becf", "other": "#59a14f",
               "drums_low": "#b0259f", "drums_high": "#ff7ff5", "other_mid": "#8cd17d"}


def plot_bundle(bundle: AnalysisBundle, out_path: Path | str, max_points: int = 4000) -> Path:
    """Draw the bundle to a PNG (matplotlib, Agg) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = bundle.times_s
    step = max(1, len(t) // max_points)

    def ds(x: np.ndarray) -> np.ndarray:
        """Max-pool to the plotted resolution so short transients stay visible."""
        n = (len(x) // step) * step
        return np.asarray(x[:n]).reshape(-1, step).max(axis=1) if step > 1 else np.asarray(x)

    tt = t[: (len(t) // step) * step : step] if step > 1 else t
    stems = [s for s in PLOT_STEMS if s in bundle.stems]
    rows = len(stems) + 2
    fig, axes = plt.subplots(rows, 1, figsize=(14, 1.25 * rows + 1.4), sharex=True, constrained_layout=True)
    m = bundle.manifest
    fig.suptitle(
        f"{m['source']['name']}  |  {bundle.duration_s:.1f} s  |  {bundle.tempo_bpm:.1f} BPM "
        f"({m['backends']['beat_tracker']})  |  separator: {m['backends']['separator']}",
        fontsize=11,
    )
    downbeats = bundle.downbeats_s
    for ax, stem in zip(axes, stems):
        color = STEM_COLORS.get(stem, "#444444")
        ax.fill_between(tt, 0, ds(bundle.channel(stem, "energy_smooth")), color=color, alpha=0.35, lw=0, label="energy_smooth")
        ax.plot(tt, ds(bundle.channel(stem, "flash")), color=color, lw=0.6, alpha=0.9, label="flash")
        ax.plot(tt, ds(bundle.channel(stem, "brightness")), color="#333333", lw=0.7, alpha=0.7, label="brightness")
        pitch = np.asarray(bundle.channel(stem, "pitch_normalized"))
        if pitch.any():
            ax.plot(tt, pitch[::step][: len(tt)], color="#1f3b99", lw=0.7, alpha=0.8, label="pitch (norm)")
        trans = np.flatnonzero(np.asarray(bundle.channel(stem, "transient")) > 0)
        if len(trans) and len(trans) < 3000:
            ax.plot(t[trans], np.full(len(trans), 1.04), "|", color=color, ms=4, alpha=0.8)
        cls = bundle.stem_info(stem)["classification"]
        ax.set_ylabel(stem, rotation=0, ha="right", va="center", fontsize=9)
        ax.text(1.001, 0.5, f"perc {cls['percussive']:.2f}\nmel {cls['melody']:.2f}\nharm {cls['harmony']:.2f}",
                transform=ax.transAxes, fontsize=7, va="center")
        ax.set_ylim(0, 1.1)
        ax.set_yticks([])
        for db in downbeats[:: max(1, len(downbeats) // 60)]:
            ax.axvline(db, color="#999999", lw=0.3, alpha=0.6)
    axes[0].legend(loc="upper left", fontsize=7, ncol=4, framealpha=0.6)
    ax = axes[len(stems)]
    ax.plot(tt, ds(bundle.channel("global", "tension")), color="#c0392b", lw=1.0, label="tension")
    ax.plot(tt, ds(bundle.channel("global", "novelty_phrase")), color="#2c3e50", lw=0.7, label="novelty (phrase)")
    ax.plot(tt, ds(bundle.channel("global", "novelty_section")), color="#8e44ad", lw=1.0, label="novelty (section)")
    ax.set_ylabel("mix", rotation=0, ha="right", va="center", fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([])
    ax.legend(loc="upper left", fontsize=7, ncol=3, framealpha=0.6)
    ax = axes[-1]
    beats = bundle.beats_s
    ax.vlines(beats, 0, 0.6, color="#555555", lw=0.5)
    ax.vlines(downbeats, 0, 1.0, color="#c0392b", lw=0.9)
    ax.set_ylabel("beats", rotation=0, ha="right", va="center", fontsize=9)
    ax.set_yticks([])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, bundle.duration_s)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path
