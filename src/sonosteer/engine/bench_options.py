"""Options of the engine benchmark (`sonosteer bench engine`, `benchmarks/engine.py`); plain argparse, no torch."""

from __future__ import annotations

import argparse

from sonosteer.cli_types import positive_int
from sonosteer.engine.settings import EngineSettings


def inductor_option(text: str) -> tuple[str, bool | int | float | str]:
    """'name=value' -> (name, value) with true/false, integers and decimals converted."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return name.strip(), lowered == "true"
    for kind in (int, float):
        try:
            return name.strip(), kind(raw)
        except ValueError:
            pass
    return name.strip(), raw.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sonosteer.engine.cli_options import add_weights_arguments  # noqa: PLC0415

    parser.add_argument("--tiny", action="store_true", help="tiny architecture (CPU smoke test) instead of full size")
    parser.add_argument(
        "--real-weights",
        action="store_true",
        help="load the weights named by --model/--decoder/--saes (downloading what is missing) instead of random "
        "ones: the error against the reference path is then the trained model's",
    )
    add_weights_arguments(parser)
    parser.add_argument("--frames", type=positive_int, default=200, help="timed frames per measure (default 200)")
    parser.add_argument("--warmup-frames", type=int, default=5, help="untimed frames before each measure")
    parser.add_argument("--size", type=int, default=512, help="frame side in px, a multiple of 64 (default 512)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    parser.add_argument("--dtype", default="auto", help="auto (float16 on CUDA), float16, bfloat16, float32")
    parser.add_argument("--no-compile", action="store_true", help="CUDA: skip the compiled measures")
    parser.add_argument("--compile", action="store_true", help="CPU: compile too (slow; needs a C++ compiler)")
    parser.add_argument("--backend", default="inductor", help="torch.compile backend (default inductor)")
    parser.add_argument(
        "--channels-last", action=argparse.BooleanOptionalAction, default=None, help="default: on for CUDA"
    )
    parser.add_argument(
        "--attention", choices=("fast", "reference"), default="fast", help="attention path (default fast)"
    )
    parser.add_argument(
        "--attention-kernel",
        choices=("triton", "cudnn", "flash"),
        default="triton",
        help="fast path's attention: our Triton kernel (default) or PyTorch SDPA with cuDNN or flash",
    )
    parser.add_argument("--compile-mode", choices=("reduce-overhead", "max-autotune"), default="reduce-overhead")
    parser.add_argument(
        "--quantize", choices=("auto", "none", "fp8"), default="auto", help="fp8 transformer linears (auto: where the GPU has them)"
    )
    parser.add_argument(
        "--fuse-geglu",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with float8 on CUDA: the feed-forward's first GEMM and GEGLU as one Triton kernel (default on)",
    )
    parser.add_argument(
        "--pdl",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="our Triton kernels with programmatic dependent launch (Hopper+; opt-in: 0.3 ms slower in the frame on an H200)",
    )
    parser.add_argument(
        "--fp8-convs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with float8 on CUDA: the resnets' 3x3 convolutions up to --fp8-conv-max-pixels as float8 Triton kernels "
        "(default on: 0.14 ms faster a frame on an H200, x0 1.2 %% from fp16 where all convolutions give 2.1 %%)",
    )
    parser.add_argument(
        "--fp8-conv-max-pixels",
        type=lambda text: None if text == "all" else positive_int(text),
        default=EngineSettings.fp8_conv_max_pixels,
        metavar="PIXELS",
        help="with --fp8-convs: only the convolutions whose input has at most this many pixels per image "
        f"(default {EngineSettings.fp8_conv_max_pixels}: the 32x32 and 16x16 latents of a 512 px frame; 'all' for every one)",
    )
    parser.add_argument(
        "--fp8-fast-accum",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with float8 on CUDA: cuBLASLt's float8 GEMMs without float32 promotion of partial sums (default on; "
        "--no-fp8-fast-accum promotes them)",
    )
    parser.add_argument(
        "--tma-gemms",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with float8 on Hopper+: the float8 linears of up to 1280 inputs as our Triton GEMM with TMA loads "
        "(at the shapes where it beat cuBLASLt), "
        "and the fused GEGLU with TMA loads (default on; --no-tma-gemms keeps cuBLASLt and pointer loads)",
    )
    parser.add_argument(
        "--persistent-norms",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="CUDA: rows of up to 2048 elements (the 1280-wide layer norms) reduce in one pass (default on; "
        "--no-persistent-norms keeps inductor's limit of 1024)",
    )
    parser.add_argument(
        "--graph-capture", choices=("manual", "trees"), default="manual", help="one torch.cuda.graph, or inductor's trees"
    )
    parser.add_argument(
        "--inductor",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=inductor_option,
        help="extra inductor config for the compile, e.g. conv_1x1_as_mm=true (repeatable)",
    )
    parser.add_argument(
        "--compare-reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also build the reference path (diffusers attention, no quantisation, eager) with the same weights "
        "and report the x0 relative error and frame difference against it (default on)",
    )
    parser.add_argument(
        "--batch-sizes",
        default="",
        help="also measure offline throughput at these batch sizes, comma separated (e.g. 2,4; each compiles once)",
    )
    parser.add_argument("--profile", action="store_true", help="CUDA: add a kernel-time breakdown by category")
    parser.add_argument(
        "--profile-top",
        type=positive_int,
        default=15,
        help="with --profile or --host-profile: list this many kernels or host calls by time (default 15)",
    )
    parser.add_argument(
        "--host-profile",
        action="store_true",
        help="add the host's calls per frame (torch ops, CUDA runtime API) by self time: where the frame's time "
        "over the GPU graph goes",
    )
    parser.add_argument(
        "--versus",
        metavar="OPTIONS",
        help='compare two variants in this process: build a second engine with these options on top of the others '
        '(e.g. --versus="--fp8-convs") and time their frames alternately; reports the paired difference with a '
        "bootstrap interval, free of the spread between processes",
    )
    parser.add_argument("--skip-eager", action="store_true", help="skip the eager measures (saves GPU time)")
    parser.add_argument("--output", default="BENCHMARKS.md", help="file the table is appended to")
