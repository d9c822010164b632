"""`sonosteer play AUDIO`: analyse if needed, start the renderer and the live server, open the browser."""

from __future__ import annotations

import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path

from sonosteer.serve.commands import fail


class ProgressBar:
    """One tqdm bar for a long step, its description following the step's stage."""

    def __init__(self, title: str):
        from tqdm import tqdm

        self._bar = tqdm(total=100, desc=title, file=sys.stderr, leave=True, bar_format="{desc:<42} {bar} {percentage:3.0f}%  {elapsed}")
        self._title = title

    def __call__(self, fraction: float, stage: str = "") -> None:
        self._bar.set_description_str(f"{self._title}: {stage}"[:42] if stage else self._title, refresh=False)
        self._bar.n = round(100 * max(0.0, min(1.0, fraction)))
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()


def _with_bar(title: str, work: Callable[[ProgressBar], object]):
    bar = ProgressBar(title)
    try:
        return work(bar)
    finally:
        bar.close()


def play(args) -> int:
    audio: Path = args.audio
    if not audio.is_file():
        return fail(f"{audio}: no such file (give the path of an audio file: wav, flac, ogg, opus, mp3, m4a)")
    if not 0 <= args.port <= 65535:
        return fail(f"--port must be in 0..65535, got {args.port}")
    if not 1 <= args.jpeg_quality <= 100:
        return fail(f"--jpeg-quality must be in 1..100, got {args.jpeg_quality}")
    if args.fps < 0 or args.max_upload_mb <= 0:
        return fail("--fps must be >= 0 and --max-upload-mb > 0")

    from sonosteer.audio.errors import AudioInputError, BackendUnavailable
    from sonosteer.audio.pipeline import analysis_key, analyze_file

    try:
        bundle = _with_bar(f"analysing {audio.name}"[:30], lambda bar: analyze_file(audio, cache_root=args.cache, progress=bar))
        sha256, _ = analysis_key(audio)
    except (AudioInputError, BackendUnavailable) as exc:
        return fail(str(exc))

    from sonosteer.engine.cli_options import settings_from_args
    from sonosteer.engine.errors import EngineError
    from sonosteer.engine.factory import create_renderer, warm_up

    try:
        settings = settings_from_args(args, height=args.size, width=args.size)
        settings.validate()
        choice = _with_bar("starting the renderer", lambda bar: create_renderer(args.engine, settings, progress=bar))
        choice = _with_bar("warming up", lambda bar: warm_up(choice, args.engine, settings, progress=bar))
        engine = choice.renderer
    except (ValueError, EngineError) as exc:
        return fail(str(exc))
    print(f"renderer: {engine.label}", file=sys.stderr)
    print(f"          {choice.reason}", file=sys.stderr)
    if engine.kind == "preview":
        print(
            "          PREVIEW: the frames draw the controls as colour fields; no images are generated.",
            file=sys.stderr,
        )
    elif not getattr(engine, "encodes_jpeg", False):
        why = getattr(engine, "jpeg_reason", None)
        print(f"          JPEG encoding on the CPU (libjpeg-turbo){': ' + why if why else ''}", file=sys.stderr)

    from sonosteer.labels.labels_file import LabelsError
    from sonosteer.paths import cache_root
    from sonosteer.serve.server import LiveServer, ServerConfig

    config = ServerConfig(
        host=args.host,
        port=args.port,
        fps=args.fps,
        jpeg_quality=args.jpeg_quality,
        max_upload_bytes=int(args.max_upload_mb * 1e6),
        cache_root=args.cache or cache_root(),
        labels_path=args.labels,
        starter_scene=not args.no_starter_scene,
    )
    try:
        server = LiveServer(engine, config, engine_reason=choice.reason)
    except LabelsError as exc:
        engine.close()
        return fail(str(exc))
    track = server.add_track_file(audio, sha256, bundle)
    server.sessions.load(track.id)
    try:
        sock = server.bind_socket()
    except OSError as exc:
        engine.close()
        return fail(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); try another --port, or --port 0")
    print(f"sonosteer is playing {audio.name} at {server.url}   (Ctrl-C stops)", file=sys.stderr, flush=True)
    if not args.no_browser:
        threading.Timer(0.5, webbrowser.open, [server.url]).start()
    try:
        server.run(sock)
    except KeyboardInterrupt:
        pass
    finally:
        engine.close()
    print("sonosteer stopped; scenes, session settings and analyses are saved", file=sys.stderr)
    return 0
