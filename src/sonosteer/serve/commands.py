"""CLI commands of the serve layer: `sonosteer play` and `sonosteer bench serve` (imports stay light)."""

from __future__ import annotations

import sys
from pathlib import Path

from sonosteer.engine.cli_options import add_exact_argument, add_weights_arguments

DEFAULT_PORT = 8765


def register(commands, bench) -> None:
    p = commands.add_parser(
        "play",
        help="play a track on the instrument: analyse it, start the engine and the server, open the browser",
        description="Analyse AUDIO if needed, start the renderer and the live server, and open the "
        "instrument in the browser. Ctrl-C stops it; scenes and analyses are kept.",
    )
    p.add_argument("audio", type=Path, help="wav, flac, ogg, opus, mp3, m4a/aac")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open the browser")
    p.add_argument(
        "--engine",
        choices=("auto", "sdxl-turbo", "preview"),
        default="auto",
        help="auto: SDXL-Turbo on CUDA when its weights are there, otherwise the preview renderer",
    )
    p.add_argument("--size", type=int, default=512, help="frame width and height in pixels (multiple of 64)")
    p.add_argument("--fps", type=float, default=50.0, help="frames per second to render (0: as fast as possible)")
    p.add_argument("--jpeg-quality", type=int, default=85, help="JPEG quality of the streamed frames (1-100)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest audio upload accepted, in MB")
    p.add_argument(
        "--no-starter-scene",
        action="store_true",
        help="new tracks start with every block unlinked (default: each block linked to a fitting stem)",
    )
    p.add_argument("--labels", type=Path, default=None, help="feature labels file (default: the data folder's)")
    p.add_argument("--cache", type=Path, default=None, help="analysis cache root (default: $SONOSTEER_CACHE or the user cache dir)")
    add_weights_arguments(p)
    add_exact_argument(p)
    p.set_defaults(func=_play)

    b = bench.add_parser(
        "serve",
        help="delivered FPS per client (1 and 4 clients), engine-output-to-send time, frame age",
        description="Run the live server on loopback with real WebSocket clients in another process and "
        "measure delivery; appends to BENCHMARKS.md.",
    )
    b.add_argument("--engine", choices=("preview", "sdxl-turbo", "auto"), default="preview")
    b.add_argument("--clients", default="1,4", help="client counts to measure, comma separated (default 1,4)")
    b.add_argument("--seconds", type=float, default=6.0, help="measuring time per client count")
    b.add_argument("--fps", default="50,0", help="render rates to measure, comma separated; 0 = uncapped (default 50,0)")
    b.add_argument("--size", type=int, default=512)
    b.add_argument("--audio", type=Path, default=None, help="track to play (default: the demo track)")
    b.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    b.add_argument(
        "--random-weights",
        choices=("full", "tiny"),
        default=None,
        help="measure SDXL-Turbo with random weights instead of loading any: full-size (the speed does not "
        "depend on the values; no downloads), or tiny (checks the path on a CPU)",
    )
    add_weights_arguments(b)
    add_exact_argument(b)
    b.set_defaults(func=_bench)


def _play(args) -> int:
    from sonosteer.serve.play import play

    return play(args)


def _bench(args) -> int:
    from sonosteer.serve.benchmark import run_benchmark

    return run_benchmark(args)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
