"""CLI of the bridge: `sonosteer bench bridge` and `sonosteer bridge-preview` (heavy imports happen when they run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sonosteer.cli_types import positive_int


def _bench(args: argparse.Namespace) -> int:
    from sonosteer.bridge.bench import TARGET_US, run_bench

    rows = run_bench(n_frames=args.frames, bundle_path=args.bundle, output=args.output)
    worst_median = max(row[2] for row in rows)
    verdict = "within" if worst_median <= TARGET_US else "OVER"
    print(f"median plan(t): {worst_median:.1f} us, {verdict} the {TARGET_US:.0f} us target")
    return 0


def _preview(args: argparse.Namespace) -> int:
    import tempfile

    from sonosteer.audio.bundle import BundleError, load_bundle
    from sonosteer.bridge.bench import full_scene
    from sonosteer.bridge.planner import FramePlanner
    from sonosteer.bridge.preview import plan_series, plot_preview
    from sonosteer.bridge.settings import SettingsError, load_scene
    from sonosteer.bridge.synthetic import write_synthetic_bundle

    with tempfile.TemporaryDirectory() as tmp:
        try:
            bundle = load_bundle(args.bundle) if args.bundle else write_synthetic_bundle(tmp)
            scene = load_scene(args.scene) if args.scene else full_scene()
            planner = FramePlanner(bundle, scene)
            series = plan_series(planner, args.start, min(args.duration, bundle.duration_s - args.start), args.fps)
        except (BundleError, SettingsError, ValueError) as exc:
            print(f"error: {exc}")
            return 2
        title = f"{scene.name}: {bundle.manifest.get('source', {}).get('name', bundle.key)}"
        path = plot_preview(series, args.out, title)
    print(f"wrote {path}")
    return 0


def register(commands, bench) -> None:
    p = commands.add_parser(
        "bridge-preview", help="plot what the bridge plays (strengths, masks, prompt blend, noise angle)"
    )
    p.add_argument("--bundle", type=Path, default=None, help="an analysis bundle folder (default: a synthetic groove)")
    p.add_argument("--scene", type=Path, default=None, help="a scene JSON file (default: every axis active)")
    p.add_argument("--start", type=float, default=0.0, help="media time to start at, seconds")
    p.add_argument("--duration", type=float, default=30.0, help="seconds to plan")
    p.add_argument("--fps", type=float, default=50.0, help="plan(t) calls per second")
    p.add_argument("--out", type=Path, default=Path("bridge-preview.png"), help="PNG file to write")
    p.set_defaults(func=_preview)

    p = bench.add_parser("bridge", help="microseconds per FramePlanner.plan(t), all blocks and axes active, one core")
    p.add_argument("--frames", type=positive_int, default=20000, help="plan(t) calls per measurement (default 20000)")
    p.add_argument(
        "--bundle", type=Path, default=None, help="an analysis bundle folder (default: a synthetic 5-minute track)"
    )
    p.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"), help="Markdown file the table is appended to")
    p.set_defaults(func=_bench)
