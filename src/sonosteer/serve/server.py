"""LiveServer: wires the track library, sessions, render loop, encoder and delivery hub into one server.

`run()` serves in the calling thread (the CLI: Ctrl-C shuts down cleanly); `start_in_thread()`
serves on an ephemeral port in a background thread (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from sonosteer.engine.renderer import Renderer
from sonosteer.labels.catalog import FeatureCatalog
from sonosteer.paths import cache_root, data_root
from sonosteer.serve.app import WEB_ROOT, create_app
from sonosteer.serve.control import Controller, EngineInfo
from sonosteer.serve.encoder import EncodedFrame, JpegEncoder
from sonosteer.serve.hub import Hub
from sonosteer.serve.protocol import MAX_TEXT_MESSAGE_BYTES
from sonosteer.serve.render_loop import RenderLoop
from sonosteer.serve.scenes import SceneStore
from sonosteer.serve.sessions import SessionManager
from sonosteer.serve.tracks import Track, TrackLibrary


@dataclass
class ServerConfig:
    """Everything `sonosteer play` can set about the server."""

    host: str = "127.0.0.1"
    port: int = 8765
    fps: float = 50.0
    jpeg_quality: int = 85
    max_upload_bytes: int = 200 * 1000 * 1000
    data_root: Path = field(default_factory=data_root)
    cache_root: Path = field(default_factory=cache_root)
    labels_path: Path | None = None
    web_root: Path | None = None
    starter_scene: bool = True
    """New tracks start linked to their stems (`sonosteer.bridge.starter`); False: the bare defaults."""


class LiveServer:
    """One engine, one render loop, any number of clients."""

    def __init__(
        self,
        engine: Renderer,
        config: ServerConfig | None = None,
        engine_reason: str = "",
    ):
        self.config = config or ServerConfig()
        self.engine = engine
        self.engine_info = EngineInfo(
            kind=engine.kind, label=engine.label, width=engine.width, height=engine.height, reason=engine_reason
        )
        self.hub = Hub(on_first_send=self._on_first_send)
        self.library = TrackLibrary(
            root=self.config.data_root / "tracks",
            cache_root=self.config.cache_root,
            on_change=self._on_track_change,
        )
        self.sessions = SessionManager(
            self.library, store_root=self.config.data_root / "sessions", starter=self.config.starter_scene
        )
        self.encoder = JpegEncoder(self._on_encoded, quality=self.config.jpeg_quality)
        self.render_loop = RenderLoop(engine, self.encoder, self.sessions, fps=self.config.fps)
        self.controller = Controller(self.sessions, self.hub, self.engine_info)
        self.scenes = SceneStore(self.config.data_root / "scenes")
        features = engine.features()
        self.catalog = FeatureCatalog.from_path(
            self.config.labels_path,
            n_features={b: f.n_features for b, f in features.items()},
            dead_ids={b: f.dead_ids for b, f in features.items()},
        )
        self.app = create_app(self, self.config.web_root or WEB_ROOT)
        self._progress_subscribers: dict[str, list[asyncio.Queue]] = {}
        self._started_s = time.monotonic()
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.library.load()

    # -- lifecycle ---------------------------------------------------------------------

    def on_startup(self, loop: asyncio.AbstractEventLoop) -> None:
        self.hub.bind(loop)
        self.encoder.start()
        self.render_loop.start()

    async def on_shutdown(self) -> None:
        """Stop rendering, close sockets; scenes and bundles are written atomically, so nothing is lost."""
        self.render_loop.stop()
        self.encoder.stop()
        for client in list(self.hub.clients.values()):
            try:
                await client.websocket.close(code=1001, reason="server shutting down")
            except Exception:
                pass
            await self.hub.remove(client)
        self.sessions.save_all()
        self.library.close()

    def _uvicorn_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            ws_max_size=4 * MAX_TEXT_MESSAGE_BYTES,
            # JPEG does not compress: permessage-deflate (offered by browsers) cost ~1.2 ms of the
            # event loop per 45 kB frame and client, against 0.03 ms without it.
            ws_per_message_deflate=False,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_graceful_shutdown=3,
        )
        self._uvicorn = uvicorn.Server(config)
        return self._uvicorn

    def bind_socket(self, host: str | None = None, port: int | None = None) -> socket.socket:
        """Bind the listening socket (port 0: an ephemeral port); sets `url`."""
        host = host or self.config.host
        port = self.config.port if port is None else port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections made before uvicorn runs wait in the backlog
        bound_port = sock.getsockname()[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        self.url = f"http://{shown}:{bound_port}"
        return sock

    def run(self, sock: socket.socket | None = None) -> None:
        """Serve until Ctrl-C (in the main thread) or `stop()`."""
        sock = sock or self.bind_socket()
        self._uvicorn_server().run(sockets=[sock])

    def start_in_thread(self, host: str = "127.0.0.1", port: int = 0, timeout_s: float = 20.0) -> str:
        """Serve in a background thread; returns the base URL once the server accepts connections."""
        sock = self.bind_socket(host, port)
        server = self._uvicorn_server()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sonosteer-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self.url

    def stop(self, timeout_s: float = 15.0) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)

    def uptime_s(self) -> float:
        return time.monotonic() - self._started_s

    # -- the pipeline's callbacks --------------------------------------------------------

    def _on_encoded(self, frame: EncodedFrame) -> None:
        """Encoder thread."""
        self.render_loop.note_encoded(frame.frame_number, time.perf_counter())
        self.hub.publish_frame_threadsafe(frame)

    def _on_first_send(self, frame_number: int, now_s: float) -> None:
        self.render_loop.note_sent(frame_number, now_s)

    # -- tracks and progress -------------------------------------------------------------

    def add_track_file(self, path: Path, sha256: str, bundle=None) -> Track:
        return self.library.add_file(path, sha256, bundle)

    def track_list(self) -> list[dict[str, Any]]:
        current = self.sessions.current
        return [{**t.summary(), "current": current is not None and current.track_id == t.id} for t in self.library.list()]

    def broadcast_tracks(self) -> None:
        self.hub.broadcast_threadsafe({"type": "tracks", "tracks": self.track_list()})

    def broadcast_state_threadsafe(self) -> None:
        loop = self.hub.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.controller.broadcast_state)

    def _on_track_change(self, track: Track) -> None:
        """Any thread: analysis progress goes to every client and to the track's SSE subscribers."""
        message = track.progress_message()
        self.hub.broadcast_threadsafe(message)
        loop = self.hub.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._push_progress, track.id, message)
        if track.status in ("ready", "failed"):
            self.broadcast_tracks()

    def _push_progress(self, track_id: str, message: dict[str, Any]) -> None:
        for queue in self._progress_subscribers.get(track_id, []):
            queue.put_nowait(message)

    def subscribe_progress(self, track_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self._progress_subscribers.setdefault(track_id, []).append(queue)
        return queue

    def unsubscribe_progress(self, track_id: str, queue: asyncio.Queue) -> None:
        subscribers = self._progress_subscribers.get(track_id, [])
        if queue in subscribers:
            subscribers.remove(queue)

    # -- stats -------------------------------------------------------------------------

    def loop_stats(self) -> dict[str, Any]:
        loop = self.render_loop
        now = time.perf_counter()
        session = self.sessions.current
        return {
            "render_fps": round(loop.render_rate.rate(now), 2),
            "frames": loop.frame_number,
            "skipped": loop.skipped,
            "errors": loop.errors,
            "jpeg_encoder": "engine (nvJPEG)" if loop.jpeg_on_engine else "CPU (libjpeg-turbo)",
            "last_error": loop.last_error or None,
            "lookahead_ms": round(loop.lookahead_s * 1000.0, 2),
            "latency_ms": {
                "plan": round(loop.plan_ms.median(), 3),
                "render": round(loop.render_ms.median(), 3),
                "pipeline": round(loop.pipeline_latency_s() * 1000.0, 3),
                "client_render": round(session.client_render_latency_s * 1000.0, 3) if session else 0.0,
            },
            "engine": dict(self.engine.last_timings_ms),
            "clock": {
                "error_ms": round(session.clock_error_s * 1000.0, 3) if session else 0.0,
                "drift_ppm": round(session.clock.drift * 1e6, 1) if session else 0.0,
                "client": session.clock_client if session else None,
            },
        }

    def send_stats(self) -> None:
        base = self.loop_stats()
        now = time.perf_counter()
        for client in list(self.hub.clients.values()):
            if not client.frames_enabled:
                continue
            stats = {
                "type": "stats",
                **base,
                "delivered_fps": round(client.delivered_rate.rate(now), 2),
                "dropped": client.dropped,
            }
            stats["latency_ms"] = {**base["latency_ms"], "output_to_send": round(client.output_to_send_ms.median(), 3)}
            self.hub.send(client, stats)

