"""Engine commands: `sonosteer doctor` and `sonosteer bench engine|kernels` (registration stays torch-free)."""

from __future__ import annotations

import argparse

from sonosteer.engine.cli_options import add_weights_arguments, settings_from_args


def _doctor(args: argparse.Namespace) -> int:
    from sonosteer.engine.doctor import report  # noqa: PLC0415 - imports torch

    text, _ready = report(settings_from_args(args), download=args.download)
    print(text)
    return 0


def _bench_engine(args: argparse.Namespace) -> int:
    from sonosteer.engine.bench import run  # noqa: PLC0415 - imports torch and diffusers

    run(args)
    return 0


def _bench_kernels(args: argparse.Namespace) -> int:
    from sonosteer.engine.kernel_bench import run  # noqa: PLC0415 - imports torch and diffusers

    run(args)
    return 0


def register(commands, bench) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check torch, CUDA and the GPU; show which model weights are found, where, and how to get the rest",
        description="Check torch, CUDA and the GPU; show which model weights are found, where, and how to get the rest.",
    )
    add_weights_arguments(doctor)
    doctor.add_argument("--download", action="store_true", help="download the missing hub weights now")
    doctor.set_defaults(func=_doctor)

    from sonosteer.engine.bench_options import add_arguments  # noqa: PLC0415 - plain argparse, no torch

    engine = bench.add_parser(
        "engine",
        help="frame time of the steered SDXL-Turbo generator (random weights, no downloads)",
        description="Per-frame time of the steered one-step SDXL-Turbo generator, eager and compiled, "
        "on the full-size architecture with random weights (--tiny: tiny architecture, CPU smoke test).",
    )
    add_arguments(engine)
    engine.set_defaults(func=_bench_engine)

    from sonosteer.engine.kernel_bench_options import add_arguments as add_kernel_arguments  # noqa: PLC0415

    kernels = bench.add_parser(
        "kernels",
        help="one frame's GEMMs, convs and attention replayed per back-end (CUDA, random weights)",
        description="Replay one frame's GEMMs, convolutions and attention calls alone, as CUDA graphs, once per "
        "candidate back-end: predicts what a back-end saves in the whole frame before compiling with it.",
    )
    add_kernel_arguments(kernels)
    kernels.set_defaults(func=_bench_kernels)
