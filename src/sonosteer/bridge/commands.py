"""CLI registration for the bridge: `sonosteer bench bridge` (light: heavy imports happen when it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _bench(args: argparse.Namespace) -> int:
    from sonosteer.bridge.bench import TARGET_US, run_bench

    rows = run_bench(n_frames=args.frames, bundle_path=args.bundle, output=args.output)
    worst_median = max(row[2] for row in rows)
    verdict = "within" if worst_median <= TARGET_US else "OVER"
    print(f"median plan(t): {worst_median:.1f} us, {verdict} the {TARGET_US:.0f} us target")
    return 0


def register(commands, bench) -> None:
    p = bench.add_parser("bridge", help="microseconds per FramePlanner.plan(t), all blocks and axes active, one core")
    p.add_argument("--frames", type=int, default=20000, help="plan(t) calls per measurement (default 20000)")
    p.add_argument("--bundle", type=Path, default=None, help="an analysis bundle folder (default: a synthetic 5-minute track)")
    p.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"), help="Markdown file the table is appended to")
    p.set_defaults(func=_bench)
