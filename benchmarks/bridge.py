"""Bridge benchmark: `python benchmarks/bridge.py [--frames N] [--bundle DIR]` (same as `sonosteer bench bridge`)."""

from __future__ import annotations

import sys

from sonosteer.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["bench", "bridge", *sys.argv[1:]]))
