"""Benchmark of the live server's delivery (same as `sonosteer bench serve`, same arguments); appends to BENCHMARKS.md.

On the GPU machine: python benchmarks/serve.py --engine sdxl-turbo --clients 1,4 --fps 0,60
"""

import sys

from sonosteer.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "serve", *sys.argv[1:]]))
