"""`sonosteer bench kernels`: one frame's GEMMs, convolutions and attention calls, replayed per back-end.

Records every linear, convolution and attention call of one frame of the engine (full-size
architecture, random weights), then replays each family alone as one CUDA graph with the frame's
own weights and shapes, once per candidate back-end (cuBLAS, cuBLASLt, Triton templates tuned by
inductor, float8; cuDNN heuristics or benchmarked plans; the SDPA back-ends). What a back-end saves
here predicts what it saves in the whole compiled frame, at a fraction of the compile time.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from sonosteer.bench_report import append_benchmark
from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.bench_options import inductor_option
from sonosteer.engine.compiling import check_inductor_options
from sonosteer.engine.cuda_graph import CapturedGraph
from sonosteer.engine.devices import resolve_device, resolve_dtype
from sonosteer.engine.fused_decoder import ConvReLU, FusedTinyBlock
from sonosteer.engine.quantize import row_scales, to_fp8
from sonosteer.engine.settings import EngineSettings
from sonosteer.engine.triton_attention import attention


@dataclass
class FrameCalls:
    """The calls of one frame, in order: (module, input shape) for linears and convs, q/k/v shapes for SDPA."""

    linears: list[tuple[nn.Linear, tuple[int, ...]]] = field(default_factory=list)
    convs: list[tuple[nn.Conv2d, tuple[int, ...]]] = field(default_factory=list)
    attentions: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)


class _RecordAttention(TorchFunctionMode):
    def __init__(self, calls: FrameCalls):
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention:
            self.calls.attentions.append(tuple(tuple(t.shape) for t in args[:3]))
        return func(*args, **(kwargs or {}))


def record_frame(generator: nn.Module) -> FrameCalls:
    """Run `generator` once (eager) and return every linear, conv and SDPA call it made (fused decoder
    convolutions included, as the plain convolutions they fuse)."""
    calls = FrameCalls()
    hooks = []

    def block_end(block: FusedTinyBlock, args: tuple) -> None:  # its last conv is called as a fused op
        batch, _, height, width = args[0].shape  # 3x3 same-padding convs keep the size
        calls.convs.append((block.third, (batch, block.third.in_channels, height, width)))

    for module in generator.modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_pre_hook(lambda m, a: calls.linears.append((m, tuple(a[0].shape)))))
        elif isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_pre_hook(lambda m, a: calls.convs.append((m, tuple(a[0].shape)))))
        elif isinstance(module, FusedTinyBlock):
            hooks.append(module.register_forward_pre_hook(block_end))
        elif isinstance(module, ConvReLU):
            hooks.append(module.register_forward_pre_hook(lambda m, a: calls.convs.append((m.conv, tuple(a[0].shape)))))
    try:
        with torch.no_grad(), _RecordAttention(calls):
            generator()
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def linear_key(module: nn.Linear, shape: tuple[int, ...]) -> tuple[int, int, int, bool]:
    """(M, K, N, has bias) of a linear call: tokens x in_features -> out_features."""
    return int(np.prod(shape[:-1])), module.in_features, module.out_features, module.bias is not None


def conv_key(module: nn.Conv2d, shape: tuple[int, ...]) -> tuple[int, ...]:
    """(batch, in, out, height, width, kernel, stride) of a conv call."""
    return (shape[0], module.in_channels, module.out_channels, shape[2], shape[3], module.kernel_size[0], module.stride[0])


def _graph_ms(calls: list[Callable[[], object]], replays: int, setup=contextlib.nullcontext) -> float:
    """Median ms of one CUDA-graph replay of `calls` in order (warmed up and captured under `setup()`)."""
    graph = CapturedGraph(lambda: [call() for call in calls])
    with setup():
        graph()  # the warm-up calls and the capture run under the back-end's settings
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(replays):
        start.record()
        graph()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def _fp8_tensorwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """A float8 GEMM with one scale per tensor (cuBLASLt): the inputs quantised once, outside the timed call."""
    sx, sw = (row_scales(t.reshape(1, -1)).reshape(()) for t in (x, weight))
    x8, w8 = to_fp8(x, sx), to_fp8(weight, sw)
    return lambda: torch._scaled_mm(x8, w8.t(), scale_a=sx, scale_b=sw, bias=bias, out_dtype=x.dtype)


def _fp8_rowwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """A float8 GEMM with per-row activation and per-channel weight scales (bfloat16 out), bias added after."""
    sx, sw = row_scales(x), row_scales(weight)
    x8, w8 = to_fp8(x, sx), to_fp8(weight, sw)
    sw_t = sw.t().contiguous()

    def call():
        y = torch._scaled_mm(x8, w8.t(), scale_a=sx, scale_b=sw_t, out_dtype=torch.bfloat16)
        return y if bias is None else y.to(bias.dtype) + bias

    return call


def _triton_linear(autotune_s: dict[str, float]) -> Callable:
    """F.linear compiled with inductor's GEMM autotuning restricted to Triton templates (one compile per shape)."""
    options = {"max_autotune_gemm": True, "max_autotune_gemm_backends": "TRITON", "triton.cudagraphs": False}
    compiled: dict[tuple, Callable] = {}

    def make(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        key = (tuple(x.shape), tuple(weight.shape), bias is not None)
        if key not in compiled:
            fn = torch.compile(lambda a, w, b: F.linear(a, w, b), dynamic=False, options=options)
            start = time.perf_counter()
            fn(x, weight, bias)
            torch.cuda.synchronize()
            autotune_s[str(key)] = time.perf_counter() - start
            compiled[key] = fn
        fn = compiled[key]
        return lambda: fn(x, weight, bias)

    return make


def gemm_rows(calls: FrameCalls, backends: list[str], replays: int) -> list[list[object]]:
    """Per back-end and per (M, K, N) group: ms per frame of the frame's linears."""
    torch._dynamo.config.cache_size_limit = 1024
    if hasattr(torch._dynamo.config, "recompile_limit"):
        torch._dynamo.config.recompile_limit = 1024
    groups: dict[tuple, list[nn.Linear]] = defaultdict(list)
    for module, shape in calls.linears:
        groups[linear_key(module, shape)].append(module)
    inputs = {key: torch.randn(key[0], key[1], device=mods[0].weight.device, dtype=mods[0].weight.dtype) for key, mods in groups.items()}
    autotune_s: dict[str, float] = {}
    makers: dict[str, Callable] = {
        "cuBLAS": lambda x, w, b: (lambda: F.linear(x, w, b)),
        "cuBLASLt": lambda x, w, b: (lambda: F.linear(x, w, b)),
        "fp8-tensor": _fp8_tensorwise,  # GEMM only: the quantisation of x is not timed
        "fp8-row": _fp8_rowwise,
        "Triton": _triton_linear(autotune_s),  # inductor's GEMM autotuning over Triton templates (slow: last)
    }
    wanted = [name for name in makers if name.lower() in backends or name.lower().split("-")[0] in backends]

    def setup_for(name: str):
        if name == "cuBLASLt":
            return lambda: _blas_library("cublaslt")
        return contextlib.nullcontext

    rows: list[list[object]] = []
    totals: dict[str, float] = {}
    per_group: dict[tuple, dict[str, float]] = defaultdict(dict)
    for name in wanted:
        total = 0.0
        for key, modules in groups.items():
            small = key[0] < 16  # time-embedding GEMVs: left to cuBLAS by every back-end (float8 needs 16 rows)
            make = makers["cuBLAS"] if small and name not in ("cuBLAS", "cuBLASLt") else makers[name]
            try:
                fns = [make(inputs[key], m.weight, m.bias) for m in modules]
                ms = _graph_ms(fns, replays, setup_for(name))
            except Exception as error:  # noqa: BLE001 - a back-end that refuses a shape is a result, not a crash
                rows.append([f"  {name} failed on {key}", f"{type(error).__name__}: {str(error).splitlines()[0][:100]}", ""])
                ms = float("nan")
            per_group[key][name] = ms
            print(f"GEMM {name} M,K,N,bias={key} x{len(modules)}: {ms:.3f} ms", flush=True)  # partial results
            total += ms
        totals[name] = total
    for key, by_name in sorted(per_group.items(), key=lambda kv: -kv[1].get("cuBLAS", 0.0)):
        m, k, n, bias = key
        count = len(groups[key])
        flop = 2.0 * m * k * n * count
        cells = "; ".join(f"{name} {ms:.3f}" for name, ms in by_name.items())
        rows.append([f"  GEMM M={m} K={k} N={n}{' +bias' if bias else ''} x{count} ({flop / 1e9:.0f} GFLOP)", cells, ""])
    for name, total in totals.items():
        note = " (GEMM only; activations quantised outside the timed call)" if name.startswith("fp8") else ""
        rows.append([f"GEMMs per frame: {name}{note}", f"{total:.3f}", "ms"])
    if "cuBLAS" in per_group[next(iter(per_group))] and any(n.startswith("Triton") for n in totals):
        best = sum(min(v for n, v in by_name.items() if not n.startswith("fp8")) for by_name in per_group.values())
        rows.append(["GEMMs per frame: best fp16 back-end per shape (what inductor's ATEN,TRITON choice gives)", f"{best:.3f}", "ms"])
    if autotune_s:
        rows.append(["Triton GEMM autotuning, all shapes", f"{sum(autotune_s.values()):.0f}", "s"])
    return rows


@contextlib.contextmanager
def _blas_library(name: str):
    previous = torch.backends.cuda.preferred_blas_library()
    torch.backends.cuda.preferred_blas_library(name)
    try:
        yield
    finally:
        torch.backends.cuda.preferred_blas_library(previous)


def conv_rows(calls: FrameCalls, replays: int, decoder: nn.Module) -> list[list[object]]:
    """The frame's convolutions (UNet and decoder separately), channels-last, with cuDNN's current algorithm choice."""
    rows = []
    decoder_convs = {id(m) for m in decoder.modules()}
    for part, chosen in (("UNet", False), ("decoder", True)):
        group = [(m, s) for m, s in calls.convs if (id(m) in decoder_convs) == chosen]
        fns = []
        for module, shape in group:
            x = torch.randn(shape, device=module.weight.device, dtype=module.weight.dtype).to(memory_format=torch.channels_last)
            fns.append(lambda m=module, x=x: m(x))
        ms = _graph_ms(fns, replays)
        rows.append([f"convs per frame: {part} ({len(group)} calls)", f"{ms:.3f}", "ms"])
    return rows


def attention_rows(calls: FrameCalls, replays: int, device: torch.device, dtype: torch.dtype) -> list[list[object]]:
    """The frame's SDPA calls with each back-end forced (cuDNN, flash, memory-efficient) and as inductor's
    flex attention kernel, per shape and in all."""
    from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: PLC0415
    from torch.nn.attention.flex_attention import flex_attention  # noqa: PLC0415

    groups: dict[tuple, list] = defaultdict(list)
    for shapes in calls.attentions:
        q, k, v = (torch.randn(s[0], s[2], s[1], s[3], device=device, dtype=dtype).transpose(1, 2) for s in shapes)
        groups[shapes].append((q, k, v))
    flex = torch.compile(flex_attention, dynamic=False, fullgraph=True)  # inductor's Triton kernel: no memset
    variants: dict[str, tuple[Callable, Callable]] = {  # name: (attention call, context it is captured under)
        name: (F.scaled_dot_product_attention, lambda b=backend: sdpa_kernel(b))
        for name, backend in (
            ("cuDNN", SDPBackend.CUDNN_ATTENTION),
            ("flash", SDPBackend.FLASH_ATTENTION),
            ("memory-efficient", SDPBackend.EFFICIENT_ATTENTION),
        )
    }
    for name, options in (("flex", None), ("flex 64x64 tiles", {"BLOCK_M": 64, "BLOCK_N": 64})):
        variants[name] = (lambda *qkv, o=options: flex(*qkv, kernel_options=o), contextlib.nullcontext)
    pdl_runs = torch.cuda.get_device_capability(device) >= (9, 0)
    for name, pdl in (("ours (Triton)", False), ("ours, PDL", True))[: 1 + pdl_runs]:
        variants[name] = (lambda *qkv, pdl=pdl: _ours(*qkv, pdl=pdl), contextlib.nullcontext)
    per_group: dict[tuple, dict[str, float]] = defaultdict(dict)
    for name, (attend, setup) in variants.items():
        for shapes, calls_qkv in groups.items():
            fns = [lambda t=t, attend=attend: attend(*t) for t in calls_qkv]
            try:
                per_group[shapes][name] = _graph_ms(fns, replays, setup)
            except Exception as error:  # noqa: BLE001 - a back-end that refuses these shapes is a result
                print(f"{name} failed on {shapes}: {type(error).__name__}: {error}", flush=True)
                per_group[shapes][name] = float("nan")
    rows = []
    for shapes, by_name in per_group.items():
        (_, heads, queries, head_dim), (_, _, keys, _) = shapes[0], shapes[1]
        cells = "; ".join(f"{name} {ms:.3f}" for name, ms in by_name.items())
        label = f"  attention {heads} heads x {head_dim}, {queries} queries, {keys} keys x{len(groups[shapes])}"
        rows.append([label, cells, "ms"])
    for name in variants:
        total = sum(by_name[name] for by_name in per_group.values())
        rows.append([f"attention per frame: {name} ({len(calls.attentions)} calls)", f"{total:.3f}", "ms"])
    best = sum(min(v for v in by_name.values() if v == v) for by_name in per_group.values())
    rows.append(["attention per frame: best back-end per shape", f"{best:.3f}", "ms"])
    return rows


def _ours(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pdl: bool) -> torch.Tensor:
    """Our attention op on SDPA's (batch, heads, tokens, d) views of token-major rows."""
    heads = q.shape[1]
    rows = [t.transpose(1, 2).flatten(2) for t in (q, k, v)]  # views: the rows are token-major underneath
    return attention(*rows, heads, pdl=pdl)


def decoder_rows(generator: nn.Module, replays: int, modes: list[str]) -> list[list[object]]:
    """The decoder (TAESD + uint8) alone: eager and compiled variants, each replayed as one CUDA graph."""
    x0 = torch.randn_like(generator.noise_a)
    rows = []
    for mode in modes:
        torch._dynamo.reset()
        start = time.perf_counter()
        if mode == "eager":
            fn = generator.decode
        else:
            options = {"triton.cudagraphs": False}
            if mode == "max-autotune":
                options.update({"max_autotune": True, "max_autotune_conv_backends": "ATEN,TRITON"})
            elif mode != "default":
                name, value = inductor_option(mode)
                check_inductor_options([(name, value)])
                options[name] = value
            fn = torch.compile(generator.decode, fullgraph=True, dynamic=False, options=options)
        with torch.no_grad():
            fn(x0)
        torch.cuda.synchronize()
        compile_s = time.perf_counter() - start
        with torch.no_grad():
            ms = _graph_ms([lambda: fn(x0)], replays)
        rows.append([f"decoder per frame: {mode} (first call {compile_s:.0f} s)", f"{ms:.3f}", "ms"])
    return rows


def run(args: argparse.Namespace) -> list[list[object]]:
    from sonosteer.engine.bench import random_parts  # noqa: PLC0415
    from sonosteer.engine.steered_engine import SteeredEngine  # noqa: PLC0415

    device = resolve_device(args.device)
    if device.type != "cuda":
        raise SystemExit("sonosteer bench kernels replays CUDA graphs: it needs a CUDA GPU")
    dtype = resolve_dtype("auto", device)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    torch.manual_seed(0)
    # fp16 calls: the float8 back-ends quantise their own copies of them
    settings = EngineSettings(
        height=args.size, width=args.size, device=str(device), compile=False, attention_kernel="cudnn", quantize="none"
    )
    engine = SteeredEngine(random_parts(args.tiny, device, dtype), settings)
    controls = FrameControls(prompt_a="a", prompt_b="b", seed_a=1, seed_b=2)
    engine.apply(controls)
    calls = record_frame(engine.generator)
    families = set(args.families.split(","))
    rows: list[list[object]] = []
    with torch.no_grad():
        if "gemm" in families:
            rows += gemm_rows(calls, args.gemm_backends.lower().split(","), args.replays)
        if "conv" in families:
            rows += conv_rows(calls, args.replays, engine.generator.decoder)
        if "attention" in families:
            rows += attention_rows(calls, args.replays, device, dtype)
    if "decoder" in families:
        rows += decoder_rows(engine.generator, args.replays, args.decoder_modes.split(","))
    method = (
        f"{'tiny' if args.tiny else 'full-size'} SDXL-Turbo UNet + TAESDXL with random weights, {args.size}x{args.size}, "
        f"batch 1, {str(dtype).removeprefix('torch.')}, {engine.label}; one frame's calls recorded from the eager "
        f"fast-attention generator, each family replayed alone as one CUDA graph with the frame's own weights, "
        f"median of {args.replays} replays; cudnn.benchmark={args.cudnn_benchmark}"
    )
    append_benchmark("Engine kernels: one frame's calls per back-end", method, ["measure", "value", "unit"], rows, path=args.output)
    engine.close()
    return rows
