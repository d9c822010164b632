"""Benchmark of the bridge: microseconds per `plan(t)`, four blocks linked, every axis active, one core."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sonosteer.bridge.planner import FramePlanner
from sonosteer.bridge.settings import Scene, apply_update
from sonosteer.bridge.synthetic import write_synthetic_bundle

TARGET_US = 300.0


def full_scene() -> Scene:
    """All four blocks linked with blended physics (all four models), pitch-aligned and drawn masks,
    a coupled same-rank pair, an auto-ranked block, a linked prompt and auto noise composition."""
    drawn = [[1.0 if (r + c) % 3 else 0.5 for c in range(16)] for r in range(16)]
    return apply_update(
        Scene(name="bench: everything on"),
        {
            "blocks": {
                "down.2.1": {
                    "link_target": "bass",
                    "rank": "R1",
                    "feature_id": 11,
                    "mode": "manual",
                    "position_source": "chroma",
                },
                "mid.0": {
                    "link_target": "vocals",
                    "rank": "R1",
                    "feature_id": 22,
                    "mode": "manual",
                    "position_source": "pitch",
                    "spatial": {"mode": "pitch"},
                    "silence": "drift_home",
                },
                "up.0.0": {
                    "link_target": "other",
                    "rank": "R2",
                    "feature_id": 33,
                    "mode": "manual",
                    "position_source": "brightness",
                    "intensity_curve": {"kind": "gamma", "gamma": 0.7},
                    "spatial": {"mask": drawn},
                },
                "up.0.1": {
                    "link_target": "global",
                    "rank": "auto",
                    "feature_id": 44,
                    "position_source": "tension",
                    "intensity_source": "flux",
                },
            },
            "prompt": {
                "a": "a misty forest",
                "b": "a neon city",
                "mode": "linked",
                "linked": {"link_target": "vocals", "position_source": "pitch"},
            },
            "composition": {"mode": "auto", "distance": 0.7},
        },
    )


def pin_to_one_core() -> str:
    """Run this process on a single CPU core where the OS allows it; returns a description."""
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to CPU core {core}"
    return "not pinned (no sched_setaffinity on this OS)"


def measure(
    planner: FramePlanner, n_frames: int, fps: float = 50.0, irregular: bool = False, seed: int = 0
) -> np.ndarray:
    """Wall-clock microseconds of each plan(t) call over n_frames frames from t = 0."""
    rng = np.random.default_rng(seed)
    step = 1.0 / fps
    if irregular:
        steps = step * rng.uniform(0.3, 2.5, n_frames)
        steps[rng.random(n_frames) < 0.01] = 0.0  # pauses
    else:
        steps = np.full(n_frames, step)
    duration = planner.bundle.duration_s
    times = np.mod(np.cumsum(steps), duration - 0.1)  # wraps around: a seek back to the start
    out = np.empty(n_frames)
    clock = time.perf_counter_ns
    for k, t in enumerate(times.tolist()):
        t0 = clock()
        planner.plan(t)
        out[k] = clock() - t0
    return out / 1000.0


def run_bench(
    n_frames: int = 20000, bundle_path: Path | None = None, output: Path | str = "BENCHMARKS.md"
) -> list[list[object]]:
    """Measure and append the table to `output`; returns the rows."""
    from sonosteer.audio.bundle import load_bundle
    from sonosteer.bench_report import append_benchmark

    pinned = pin_to_one_core()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(bundle_path) if bundle_path else write_synthetic_bundle(tmp, duration_s=300.0)
        scene = full_scene()
        if bundle_path:
            stems = bundle.stems
            missing = {b.link_target for b in scene.blocks.values()} - set(stems)
            if missing:
                raise SystemExit(f"bundle {bundle.key} lacks stems {sorted(missing)} used by the benchmark scene")
        planner = FramePlanner(bundle, scene)
        measure(planner, 500)  # warm-up
        rows = []
        for label, irregular in (("50 FPS, steady", False), ("irregular calls (0.3-2.5 frames, pauses)", True)):
            us = measure(planner, n_frames, irregular=irregular)
            rows.append(
                [label, n_frames, float(np.median(us)), float(np.percentile(us, 99)), float(us.max()), TARGET_US]
            )
        source = (
            f"bundle {bundle.key}"
            if bundle_path
            else f"synthetic {bundle.duration_s:.0f} s bundle at {bundle.frame_rate_hz:.0f} Hz"
        )
    append_benchmark(
        "Bridge: FramePlanner.plan(t)",
        f"{source}, {len(bundle.stems)} stems; 4 blocks linked (blended physics with all four models, "
        "pitch-aligned + drawn "
        f"masks, coupled same-rank pair, auto rank), linked prompt, auto noise composition; {pinned}; "
        "time.perf_counter_ns around each call",
        ["calls", "frames", "median us", "p99 us", "max us", "target us"],
        rows,
        path=output,
    )
    return rows
