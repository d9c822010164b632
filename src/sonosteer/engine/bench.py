"""`sonosteer bench engine`: per-frame time of the steered one-step generator, eager and compiled.

Builds the full-size SDXL-Turbo UNet and TAESDXL architectures from their published configs with
random weights (timing does not depend on weight values), random unit SAE directions and random
prompt conditioning, so it needs no weights files. `--tiny` runs the tiny architecture instead
(a CPU smoke test); `--real-weights` loads the weights named by --model/--decoder/--saes, so that
the error against the reference path is the trained model's. Prints a table and appends it to
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
import zlib
from typing import Callable

import numpy as np
import torch

from sonosteer.bench_report import append_benchmark
from sonosteer.blocks import BLOCKS
from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.architectures import (
    SDXL_SEQUENCE_LENGTH,
    SDXL_TURBO_UNET_CONFIG,
    TAESDXL_CONFIG,
    TINY_TAESD_CONFIG,
    TINY_UNET_CONFIG,
    pooled_width,
)
from sonosteer.engine.compiling import check_inductor_options, compile_generator, compile_plan
from sonosteer.engine.devices import resolve_device, resolve_dtype
from sonosteer.engine.host_profile import host_breakdown
from sonosteer.engine.kernel_profile import kernel_breakdown
from sonosteer.engine.cli_options import settings_from_args
from sonosteer.engine.loading import EngineParts, load_parts
from sonosteer.engine.prompts import PromptEmbedding
from sonosteer.engine.quantize import relative_error
from sonosteer.engine.sae import BlockSae
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.steered_engine import SteeredEngine
from sonosteer.engine.weights import resolve_weights


class RandomConditioning:
    """Prompt -> random conditioning of SDXL's shapes, seeded by the prompt text (benchmark only)."""

    def __init__(self, context: int, pooled: int, device: torch.device):
        self.context, self.pooled, self.device = context, pooled, device

    def __call__(self, prompt: str) -> PromptEmbedding:
        gen = torch.Generator().manual_seed(zlib.crc32(prompt.encode()))
        tokens = torch.randn(1, SDXL_SEQUENCE_LENGTH, self.context, generator=gen)
        return PromptEmbedding(tokens.to(self.device), torch.randn(1, self.pooled, generator=gen).to(self.device))


def random_saes(d_model: int, n_features: int) -> dict[str, BlockSae]:
    """Unit random directions and mean activations in the published range (~9..68) for the four blocks."""
    saes = {}
    for i, block in enumerate(BLOCKS):
        gen = torch.Generator().manual_seed(i)
        directions = torch.randn(n_features, d_model, generator=gen)
        directions /= directions.norm(dim=1, keepdim=True)
        mean = 9.0 + 59.0 * torch.rand(n_features, generator=gen, dtype=torch.float64)
        saes[block.short_name] = BlockSae(block, None, directions, mean.numpy(), frozenset(), 10)
    return saes


def random_parts(tiny: bool, device: torch.device, dtype: torch.dtype) -> EngineParts:
    """The steered engine's parts with random weights: full-size SDXL-Turbo + TAESDXL, or the tiny ones."""
    from diffusers import AutoencoderTiny, UNet2DConditionModel  # noqa: PLC0415

    unet_config = TINY_UNET_CONFIG if tiny else SDXL_TURBO_UNET_CONFIG
    previous_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # initialise in place on the device, in the final dtype (no 10 GB fp32 copy)
    try:
        with torch.device(device):
            unet = UNet2DConditionModel(**unet_config).eval().requires_grad_(False)
            decoder = AutoencoderTiny(**(TINY_TAESD_CONFIG if tiny else TAESDXL_CONFIG)).eval().requires_grad_(False)
    finally:
        torch.set_default_dtype(previous_dtype)
    channels = unet_config["block_out_channels"][-1]
    return EngineParts(
        unet=unet,
        decoder=decoder,
        prompt_encoder=RandomConditioning(unet_config["cross_attention_dim"], pooled_width(unet_config), device),
        saes=random_saes(channels, 48 if tiny else 5120),
        description=("tiny" if tiny else "full-size") + " SDXL-Turbo architecture, random weights",
    )


def percentiles(samples_ms: list[float]) -> tuple[float, float]:
    return float(np.median(samples_ms)), float(np.percentile(samples_ms, 99))


def _timed(step: Callable[[], None], frames: int, sync: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def controls_for(frame: int, base: FrameControls) -> FrameControls:
    """A bridge-like frame: strengths move every frame, features stay (the common, cheap path)."""
    for i, bc in enumerate(base.blocks):
        bc.strength = 2.0 + math.sin(0.1 * frame + i)
    base.prompt_blend = 0.5 + 0.5 * math.sin(0.05 * frame)
    base.noise_angle_rad = 0.02 * frame
    base.frame_index = frame
    return base


def bench_parts(args: argparse.Namespace, settings: EngineSettings, device: torch.device, dtype: torch.dtype) -> EngineParts:
    """The engine's parts: the weights named in `settings` with --real-weights, else random ones from seed 0."""
    if args.real_weights:
        return load_parts(resolve_weights(settings), device, dtype, settings.prompt_cache_size)
    torch.manual_seed(0)  # the reference and the measured engine get the same random weights
    return random_parts(args.tiny, device, dtype)


def _reference_output(
    args: argparse.Namespace, device: torch.device, dtype: torch.dtype, controls: FrameControls
) -> tuple[torch.Tensor, np.ndarray]:
    """x0 and frame of the reference path (diffusers attention, no quantisation, eager) for `controls`."""
    settings = settings_from_args(
        args, height=args.size, width=args.size, device=str(device), compile=False, attention="reference",
        quantize="none", channels_last=args.channels_last,
    )
    engine = SteeredEngine(bench_parts(args, settings, device, dtype), settings)
    engine.apply(controls)
    with torch.no_grad():
        x0 = engine.generator.denoise().clone()
    frame = engine.render().astype(np.int16)
    engine.close()
    return x0, frame


def _batch_rows(
    engine: SteeredEngine, settings: EngineSettings, batch: int, args: argparse.Namespace, sync: Callable[[], None]
) -> list[list[object]]:
    """Offline throughput: the engine's generator at `batch` items per call, compiled like the engine."""
    batched = engine.generator.with_batch(batch)
    compiled, graphed = compile_plan(settings, engine.device.type == "cuda")
    start = time.perf_counter()
    if compiled:
        generate = compile_generator(batched, settings, graphed, list(batched.buffers()))
    else:
        generate = batched
    with torch.no_grad():
        for _ in range(3 if compiled else 1):
            generate()
    sync()
    compile_s = time.perf_counter() - start
    with torch.no_grad():
        per_call = percentiles(_timed(lambda: generate(), max(10, args.frames // batch), sync))
    return [
        [f"batch {batch}: warm-up (compile + CUDA graph capture when compiled)", compile_s, compile_s, "s"],
        [f"batch {batch}: generator call ({batch} frames)", *per_call, "ms"],
        [f"batch {batch}: throughput (from the median / p99 call)", *(1e3 * batch / ms for ms in per_call), "frames/s"],
    ]


def stage_printer() -> Callable[[str], None]:
    """A function that prints a stage of the benchmark with the seconds since the first call, on
    stderr: the table comes at the end, and a first compile takes minutes."""
    start = time.perf_counter()

    def stage(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f} s] {message}", file=sys.stderr, flush=True)

    return stage


def engine_settings(args: argparse.Namespace, device: torch.device) -> EngineSettings:
    """The engine settings that the benchmark's options describe, on `device`."""
    compile_ = (not args.no_compile) if device.type == "cuda" else bool(args.compile)
    return settings_from_args(
        args,
        height=args.size,
        width=args.size,
        device=str(device),
        compile=compile_,
        compile_backend=args.backend,
        channels_last=args.channels_last,
        attention=args.attention,
        compile_mode=args.compile_mode,
        quantize=args.quantize,
        fuse_geglu=args.fuse_geglu,
        fp8_convs=args.fp8_convs,
        fp8_conv_max_pixels=args.fp8_conv_max_pixels,
        fp8_fast_accum=args.fp8_fast_accum,
        tma_gemms=args.tma_gemms,
        persistent_norms=args.persistent_norms,
        graph_capture=args.graph_capture,
        inductor_options=tuple(args.inductor),
        attention_kernel=args.attention_kernel,
        launch_pdl=args.pdl,
    )


def bench_controls(parts: EngineParts) -> FrameControls:
    """The benchmark's frame: two prompts and seeds, one feature per block (strengths move per frame)."""
    controls = FrameControls(prompt_a="a", prompt_b="b", seed_a=1, seed_b=2)
    for i, (block, bc) in enumerate(zip(BLOCKS, controls.blocks)):
        bc.feature_id = (100 + 7 * i) % parts.saes[block.short_name].directions.shape[0]
    return controls


def check_controls(controls: FrameControls) -> FrameControls:
    """The frame that errors are measured on (a copy: `controls_for` changes its argument in place)."""
    return controls_for(123, copy.deepcopy(controls))


def run(args: argparse.Namespace) -> list[list[object]]:
    """Run the benchmark described by parsed `args`; returns the table rows (also printed and appended)."""
    if args.real_weights and args.tiny:
        raise SystemExit("--tiny builds a random tiny model: leave it out with --real-weights")
    if args.versus is not None:
        from sonosteer.engine.bench_versus import run_versus  # noqa: PLC0415 - it builds on this module

        return run_versus(args)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    cuda = device.type == "cuda"
    settings = engine_settings(args, device)
    compile_ = bool(settings.compile)
    check_inductor_options(settings.inductor_options)  # before minutes of building and compiling
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    stage = stage_printer()
    stage("loading the weights" if args.real_weights else "building the model with random weights")
    build_start = time.perf_counter()
    parts = bench_parts(args, settings, device, dtype)
    build_s = time.perf_counter() - build_start
    controls = bench_controls(parts)
    check = check_controls(controls)
    reference = None
    if args.compare_reference:
        stage("rendering the reference frame (diffusers attention, fp16, eager)")
        reference = _reference_output(args, device, dtype, check)
    stage("building the engine" + (" (float8 is checked against fp16 on the first frame)" if cuda else ""))
    if cuda:  # the peak memory row is the measured engine's alone
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    build_start = time.perf_counter()
    engine = SteeredEngine(parts, settings)
    build_s += time.perf_counter() - build_start
    if cuda:  # the float8 check holds the fp16 and float8 linears at once while building
        build_peak_gib = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    if reference is not None:
        engine.apply(check)
        with torch.no_grad():
            x0 = engine.generator.denoise()
        reference_error = relative_error(x0, reference[0])
    engine.apply(controls)
    host = torch.empty((args.size, args.size, 3), dtype=torch.uint8, pin_memory=cuda)
    frame_no = iter(range(10**9))
    rows: list[list[object]] = []

    def eager_frame() -> None:
        engine.apply(controls_for(next(frame_no), controls))
        with torch.no_grad():
            host.copy_(engine.generator(), non_blocking=True)

    frame_step = eager_frame  # what --host-profile profiles: the compiled frame where there is one

    with torch.no_grad():
        x0 = engine.generator.denoise()
    if not args.skip_eager:
        stage("timing eager frames")
        for _ in range(args.warmup_frames):
            eager_frame()
        sync()
        rows.append(["eager frame (apply + generate + copy)", *percentiles(_timed(eager_frame, args.frames, sync)), "ms"])
        with torch.no_grad():
            unet_ms = _timed(lambda: engine.generator.denoise(), args.frames, sync)
            decode_ms = _timed(lambda: engine.generator.decode(x0), args.frames, sync)
        rows.append(["eager UNet (prompt blend, noise, UNet, Euler step)", *percentiles(unet_ms), "ms"])
        rows.append(["eager TAESD decode + uint8", *percentiles(decode_ms), "ms"])

    if compile_:
        stage("compiling" + (" and capturing the CUDA graph (minutes on a first start, cached on disk)" if cuda else ""))
        engine.warmup()
        if cuda:  # what rendering holds, apart from the transient peaks of compiling, autotuning and capture
            held_gib = torch.cuda.memory_allocated() / 2**30
        stage("timing compiled frames")
        rows.append(["compile + CUDA graph capture (warm-up)", engine.warmup_s, engine.warmup_s, "s"])
        apply_ms, gpu_ms, d2h_ms = [], [], []

        def compiled_frame() -> None:
            engine.apply(controls_for(next(frame_no), controls))
            engine.render()
            apply_ms.append(engine.last_timings_ms["apply"])
            gpu_ms.append(engine.last_timings_ms["gpu"])
            d2h_ms.append(engine.last_timings_ms["d2h"])

        for _ in range(args.warmup_frames):
            compiled_frame()
        for samples in (apply_ms, gpu_ms, d2h_ms):
            samples.clear()
        rows.append(["compiled frame (apply + render)", *percentiles(_timed(compiled_frame, args.frames, sync)), "ms"])
        frame_step = compiled_frame
        rows.append(["  apply() on the host", *percentiles(apply_ms), "ms"])
        rows.append(["  generator graph on the GPU", *percentiles(gpu_ms), "ms"])
        rows.append(["  device-to-host copy (pinned)", *percentiles(d2h_ms), "ms"])
        if engine.encodes_jpeg:
            jpeg_ms, sizes = [], []

            def jpeg_frame() -> None:
                engine.apply(controls_for(next(frame_no), controls))
                sizes.append(len(engine.render_jpeg(85)))
                jpeg_ms.append(engine.last_timings_ms["jpeg"])

            frame_ms = percentiles(_timed(jpeg_frame, args.frames, sync))
            rows.append(["compiled frame as JPEG (apply + render_jpeg, nvJPEG q85)", *frame_ms, "ms"])
            rows.append(["  nvJPEG encode + JPEG bytes to host", *percentiles(jpeg_ms), "ms"])
            rows.append(["  JPEG size", float(np.median(sizes)) / 1e3, float(np.percentile(sizes, 99)) / 1e3, "kB"])
        if cuda and args.backend == "inductor":
            decode = torch.compile(engine.generator.decode, fullgraph=True, dynamic=False, mode="reduce-overhead")
            static_x0 = x0.clone()

            def compiled_decode() -> None:
                torch.compiler.cudagraph_mark_step_begin()
                decode(static_x0)

            for _ in range(3):
                compiled_decode()
            dec = percentiles(_timed(compiled_decode, args.frames, sync))
            rows.append(["  compiled decode alone (UNet part = graph - decode)", *dec, "ms"])
        engine.apply(controls_for(args.frames + 10**6, controls))
        compiled = engine.render().astype(np.int16)
        with torch.no_grad():
            eager = engine.generator().cpu().numpy().astype(np.int16)
        diff = np.abs(compiled - eager)
        rows.append(["compiled vs eager frame, max / mean abs diff", float(diff.max()), float(diff.mean()), "uint8"])

    else:
        apply_ms = _timed(lambda: engine.apply(controls_for(next(frame_no), controls)), args.frames, sync)
        rows.append(["apply() on the host", *percentiles(apply_ms), "ms"])
    for batch in (int(b) for b in str(args.batch_sizes).split(",") if b.strip()):
        stage(f"batch {batch}: compiling and timing")
        rows += _batch_rows(engine, settings, batch, args, sync)
    if reference is not None:
        engine.apply(check)
        mad = float(np.abs(engine.render().astype(np.int16) - reference[1]).mean())
        rows.append(["vs reference path: x0 relative error (eager) / frame MAD (as rendered)", reference_error, mad, ""])
    if cuda:
        peak_gib, reserved_gib = torch.cuda.max_memory_allocated() / 2**30, torch.cuda.max_memory_reserved() / 2**30
        rows.append(["peak GPU memory allocated / reserved, rendering", peak_gib, reserved_gib, "GiB"])
        if compile_:
            rows.append(["GPU memory allocated after compile and capture (held while rendering)", held_gib, held_gib, "GiB"])
        rows.append(["peak GPU memory allocated while building (float8 check)", build_peak_gib, build_peak_gib, "GiB"])
    rows.append([f"build ({'load' if args.real_weights else 'random'} weights)", build_s, build_s, "s"])
    size = "tiny" if args.tiny else "full-size"
    model = parts.description if args.real_weights else f"{size} SDXL-Turbo UNet + TAESDXL architectures with random weights"
    method = (
        f"{model}, "
        f"{args.size}x{args.size}, batch 1, 4 steered blocks, {str(dtype).removeprefix('torch.')}, {engine.label}, "
        f"channels_last={settings.channels_last if settings.channels_last is not None else cuda}, "
        f"attention={settings.attention} ({engine.attention_kernel} attention), compile_mode={settings.compile_mode}, "
        f"quantize={engine.quantize}, "
        f"graph_capture={settings.graph_capture}, persistent_norms={settings.persistent_norms}, "
        f"inductor options={dict(settings.inductor_options) or 'none'}, "
        f"{args.frames} frames after {args.warmup_frames} warm-up; columns: median, p99 (or value, value)"
    )
    if args.profile and cuda:
        stage("profiling one frame's kernels")
        if settings.graph_capture == "manual":  # the captured kernels, launched one by one
            categories, kernel_ms, kernels, top = kernel_breakdown(engine.launch_kernels, top=args.profile_top)
        else:  # graph trees replay inside the compiled call: profile a plain compile (default inductor options)
            torch._dynamo.reset()
            plain = torch.compile(engine.generator, fullgraph=True, dynamic=False)
            categories, kernel_ms, kernels, top = kernel_breakdown(lambda: plain(), top=args.profile_top)
        rows.append(["kernel time per frame (profiled, no CUDA graph) / kernels per frame", kernel_ms, kernels, ""])
        rows += [[f"  {name} (ms, kernels)", ms, n, ""] for name, ms, n in categories]
        rows += [[f"  top kernel: `{name}` (ms, kernels)", ms, n, ""] for name, ms, n in top]
    if args.host_profile:
        stage("profiling the host's calls per frame")
        wall_us, calls = host_breakdown(lambda: (frame_step(), sync()), top=args.profile_top)
        rows.append(["host time per frame, profiled (us)", wall_us, wall_us, "us"])
        rows += [[f"  host call: `{name}` (us, calls)", us, n, ""] for name, us, n in calls]
    append_benchmark("Engine: steered one-step SDXL-Turbo", method, ["measure", "median", "p99", "unit"], rows, path=args.output)
    engine.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    from sonosteer.engine.bench_options import add_arguments  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args(argv))
    return 0
