"""Kernel-family benchmark: the same as `sonosteer bench kernels` (see `sonosteer bench kernels --help`).

Run from the repository root on a CUDA machine: `PYTHONPATH=src python benchmarks/engine_kernels.py`.
"""

from __future__ import annotations

import argparse
import sys

from sonosteer.engine.kernel_bench import run
from sonosteer.engine.kernel_bench_options import add_arguments

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args(sys.argv[1:]))
