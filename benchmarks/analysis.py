"""Benchmark of the offline audio analysis (same as `sonosteer bench analysis`); appends to BENCHMARKS.md."""

import sys

from sonosteer.audio.benchmark import run_benchmark

if __name__ == "__main__":
    sys.exit(run_benchmark(pipeline="--skip-pipeline" not in sys.argv))
