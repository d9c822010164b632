"""Options of `sonosteer bench kernels` (`benchmarks/engine_kernels.py`); plain argparse, no torch."""

from __future__ import annotations

import argparse

from sonosteer.cli_types import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiny", action="store_true", help="tiny architecture instead of full size")
    parser.add_argument("--size", type=int, default=512, help="frame side in px (default 512)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--replays", type=positive_int, default=50, help="graph replays per measure (default 50)")
    parser.add_argument("--families", default="gemm,conv,attention,decoder", help="which call families to replay")
    parser.add_argument(
        "--gemm-backends",
        default="cublas,cublaslt,triton,fp8",
        help="GEMM back-ends: cublas, cublaslt, triton (inductor autotuning: slow), fp8-tensor, fp8-row (fp8: both)",
    )
    parser.add_argument(
        "--decoder-modes",
        default="eager,default",
        help="decoder variants: eager, default (compiled), max-autotune, or one inductor option NAME=VALUE",
    )
    parser.add_argument("--cudnn-benchmark", action="store_true", help="let cuDNN time its algorithms (per process)")
    parser.add_argument("--output", default="BENCHMARKS.md", help="file the table is appended to")
