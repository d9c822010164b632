"""`sonosteer bench engine --versus OPTIONS`: two variants of the engine built in one process, their
frames timed alternately, so that their difference is measured pair by pair.

The same engine measured in two processes on one GPU machine differed by up to 0.2 ms a frame
(an H200, eleventh round): as much as the changes being measured. Two engines in one process share
the clocks, the allocator and the autotuned kernels, and alternating their frames cancels drift;
the median of the per-round differences comes with a bootstrap interval.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import time

import numpy as np
import torch

from sonosteer.bench_report import append_benchmark
from sonosteer.engine.bench import (
    bench_controls,
    bench_parts,
    check_controls,
    controls_for,
    engine_settings,
    percentiles,
    stage_printer,
)
from sonosteer.engine.compiling import check_inductor_options
from sonosteer.engine.devices import resolve_device, resolve_dtype
from sonosteer.engine.quantize import relative_error
from sonosteer.engine.steered_engine import SteeredEngine

SAME_FRAME_OPTIONS = ("tiny", "real_weights", "model", "decoder", "saes", "variant", "size", "device")
"""Options that `--versus` may not change: both engines must make the same frame from the same weights."""
BOOTSTRAP_RESAMPLES = 2000


def variant_args(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with the --versus options applied on top (exits with a usage error for a bad option, or
    one that would change the frame being made)."""
    from sonosteer.engine.bench_options import add_arguments  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="--versus", add_help=False)
    add_arguments(parser)
    variant = parser.parse_args(shlex.split(args.versus), namespace=copy.deepcopy(args))
    changed = [name for name in SAME_FRAME_OPTIONS if getattr(variant, name) != getattr(args, name)]
    if changed:
        options = ", ".join("--" + name.replace("_", "-") for name in changed)
        parser.error(f"may not change {options}: both engines must make the same frame from the same weights")
    variant.versus = None
    return variant


def median_interval(samples: np.ndarray, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of the median of `samples` (percentile method, fixed seed)."""
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(samples, size=(BOOTSTRAP_RESAMPLES, samples.size), replace=True), axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def run_versus(args: argparse.Namespace) -> list[list[object]]:
    """Build engine A from `args` and B from `args` + `args.versus`, time their frames alternately and
    append the table; returns its rows."""
    variants = {"A": args, "B": variant_args(args)}
    device = resolve_device(args.device)
    settings = {name: engine_settings(a, device) for name, a in variants.items()}
    for chosen in settings.values():
        check_inductor_options(chosen.inductor_options)  # before minutes of building and compiling
    stage = stage_printer()
    engines: dict[str, SteeredEngine] = {}
    controls_of = {}
    x0: dict[str, torch.Tensor] = {}
    rows: list[list[object]] = []
    for name, a in variants.items():
        stage(f"{name}: building the engine")
        parts = bench_parts(a, settings[name], device, resolve_dtype(a.dtype, device))
        controls = controls_of[name] = bench_controls(parts)
        engine = engines[name] = SteeredEngine(parts, settings[name])
        engine.apply(check_controls(controls))
        with torch.no_grad():
            x0[name] = engine.generator.denoise().float()
        engine.apply(controls)
        if settings[name].compile:
            stage(f"{name}: compiling" + (" and capturing the CUDA graph" if device.type == "cuda" else ""))
            engine.warmup()
            rows.append([f"{name}: compile + CUDA graph capture (warm-up)", engine.warmup_s, engine.warmup_s, "s"])
    stage("timing the two engines' frames alternately")
    graph_ms: dict[str, list[float]] = {name: [] for name in engines}
    frame_ms: dict[str, list[float]] = {name: [] for name in engines}
    for round_no in range(args.warmup_frames + args.frames):
        order = list(engines) if round_no % 2 == 0 else list(engines)[::-1]  # alternating cancels order effects
        for name in order:
            engine = engines[name]
            start = time.perf_counter()
            engine.apply(controls_for(round_no, controls_of[name]))
            engine.render()  # returns once the frame is on the host
            if round_no >= args.warmup_frames:
                frame_ms[name].append((time.perf_counter() - start) * 1e3)
                graph_ms[name].append(engine.last_timings_ms["gpu"])
    generator = "generator graph on the GPU" if device.type == "cuda" else "generator"
    for name in engines:
        rows.append([f"{name}: {generator}", *percentiles(graph_ms[name]), "ms"])
        rows.append([f"{name}: frame (apply + render)", *percentiles(frame_ms[name]), "ms"])
    for measure, samples in ((generator, graph_ms), ("frame", frame_ms)):
        differences = np.asarray(samples["B"]) - np.asarray(samples["A"])
        median = float(np.median(differences))
        rows.append([f"B - A, {measure}: median of the per-round differences", median, median, "ms"])
        rows.append([f"B - A, {measure}: 95 % bootstrap interval of that median (low, high)", *median_interval(differences), "ms"])
    difference = relative_error(x0["B"], x0["A"])
    rows.append(["x0 relative difference of B from A (eager)", difference, difference, ""])
    method = (
        f"two engines in one process, {args.size}x{args.size}, batch 1, "
        f"{'loaded' if args.real_weights else ('tiny' if args.tiny else 'full-size') + ' random'} weights. "
        f"A: {engines['A'].label}. B = A + `{args.versus}`: {engines['B'].label}. {args.frames} rounds after "
        f"{args.warmup_frames} warm-up, each one frame of A and one of B, their order alternating; columns: median, "
        "p99 (or value, value)"
    )
    append_benchmark(
        "Engine: two variants side by side in one process", method, ["measure", "median", "p99", "unit"], rows,
        path=args.output,
    )
    for engine in engines.values():
        engine.close()
    return rows
