"""CLI commands of the audio layer: `sonosteer analyze` and `sonosteer bench analysis` (imports stay light)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(commands, bench) -> None:
    p = commands.add_parser("analyze", help="analyse an audio file into an analysis bundle (cached)",
                            description="Analyse AUDIO once (stems, beats, pitch, envelopes, tension, coupling) "
                                        "and print where the bundle lies. Analysing the same file again is a cache hit.")
    p.add_argument("audio", type=Path, help="wav, flac, ogg, opus, mp3, m4a/aac (through PyAV)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (duration, tempo, beats, stems, back-ends)")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="draw channels per stem, beat grid, tension and novelty")
    p.add_argument("--cache", type=Path, metavar="DIR", help="cache root (default: $SONOSTEER_CACHE or the user cache dir)")
    p.add_argument("--separator", choices=("auto", "demucs", "spectral"), default="auto")
    p.add_argument("--beats", choices=("auto", "beat_this", "dsp"), default="auto", help="beat tracker")
    p.add_argument("--force", action="store_true", help="analyse again even when a bundle exists")
    p.set_defaults(func=_analyze)
    b = bench.add_parser("analysis", help="seconds per analysis stage on the sectoid song, separation SDR, tempo per file")
    b.add_argument("--music", type=Path, default=None, help="test music folder (default: ../shared/testdata/music)")
    b.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    b.add_argument("--skip-pipeline", action="store_true", help="only separation quality and tempo tables")
    b.set_defaults(func=_bench)


class _StageBars:
    """One tqdm bar per analysis stage, fed by analyze_file's progress callback."""

    def __init__(self) -> None:
        self.bar = None
        self.stage = None

    def __call__(self, fraction: float, message: str) -> None:
        from tqdm import tqdm

        stage = message.split(" (")[0]
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=100, desc=f"{stage:<18}", file=sys.stderr, leave=True,
                            bar_format="{desc} {bar} {percentage:3.0f}% overall  {elapsed}")
        self.bar.n = round(100 * fraction)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _analyze(args) -> int:
    from sonosteer.audio.errors import AudioInputError, BackendUnavailable
    from sonosteer.audio.pipeline import analyze_file
    from sonosteer.audio.summary import bundle_summary

    bars = _StageBars()
    try:
        bundle = analyze_file(args.audio, cache_root=args.cache, progress=bars, separator=args.separator,
                              beat_tracker=args.beats, force=args.force)
    except (AudioInputError, BackendUnavailable) as exc:
        bars.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bars.close()
    if args.plot:
        from sonosteer.audio.plot import plot_bundle

        print(f"plot: {plot_bundle(bundle, args.plot)}", file=sys.stderr)
    if args.json:
        print(json.dumps(bundle_summary(bundle), indent=1))
    else:
        print(bundle.path)
    return 0


def _bench(args) -> int:
    from sonosteer.audio.benchmark import run_benchmark

    return run_benchmark(music_dir=args.music, out=args.out, pipeline=not args.skip_pipeline)
