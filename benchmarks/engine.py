"""Engine benchmark: the same as `sonosteer bench engine` (see `sonosteer bench engine --help`).

Run from the repository root: `PYTHONPATH=src python benchmarks/engine.py [--tiny] [--frames N]`.
"""

from __future__ import annotations

import sys

from sonosteer.engine.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
