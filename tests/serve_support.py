"""Helpers for the server tests: a real server on an ephemeral port, real WebSocket clients."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import simplejpeg
from websockets.sync.client import ClientConnection, connect

from sonosteer.serve.protocol import FrameHeader


@dataclass
class Received:
    header: FrameHeader
    jpeg: bytes
    received_ms: float

    def pixels(self) -> np.ndarray:
        return simplejpeg.decode_jpeg(self.jpeg, colorspace="RGB")


@dataclass
class WsClient:
    """A WebSocket client that reads in a background thread, keeping JSON messages and frames apart."""

    url: str
    frames: bool = True
    read: bool = True
    conn: ClientConnection | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[tuple[str, int | None]] = field(default_factory=list)
    """Everything received, in order: ("frame", frame number) or (message type, its frame_number)."""
    received: list[Received] = field(default_factory=list)
    welcome: dict[str, Any] | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False
    error: Exception | None = None

    def __post_init__(self) -> None:
        suffix = "" if self.frames else "?frames=0"
        ws_url = self.url.replace("http://", "ws://") + "/ws" + suffix
        self.conn = connect(ws_url, max_size=None, open_timeout=10, close_timeout=1).__enter__()
        self.welcome = json.loads(self.conn.recv(timeout=10))
        if self.read:
            self.start_reading()

    def start_reading(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for data in self.conn:
                now_ms = time.time() * 1000.0
                with self._cond:
                    if isinstance(data, bytes):
                        header, jpeg = FrameHeader.unpack(data)
                        self.received.append(Received(header, jpeg, now_ms))
                        self.arrivals.append(("frame", header.frame_number))
                    else:
                        message = json.loads(data)
                        self.messages.append(message)
                        self.arrivals.append((message.get("type"), message.get("frame_number")))
                    self._cond.notify_all()
        except Exception as exc:
            self.error = exc
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def send(self, message: dict[str, Any] | str | bytes) -> None:
        self.conn.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def wait_message(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for msg in self.messages:
                    if predicate(msg):
                        self.messages.remove(msg)
                        return msg
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise TimeoutError(f"no matching message; got {[m.get('type') for m in self.messages]}")
                self._cond.wait(remaining)

    def wait_frames(self, count: int, timeout_s: float = 10.0, after: int = -1) -> list[Received]:
        """Wait until `count` frames with frame_number > after have arrived; returns them."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                got = [r for r in self.received if r.header.frame_number > after]
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise TimeoutError(f"{len(got)} of {count} frames arrived")
                self._cond.wait(remaining)

    def request(self, message: dict[str, Any], reply_type: str, timeout_s: float = 10.0) -> dict[str, Any]:
        """Send a message with a fresh id; wait for the reply of `reply_type` (or an error) carrying it."""
        rid = f"r{time.monotonic_ns()}"
        self.send({**message, "id": rid})
        return self.wait_message(lambda m: m.get("id") == rid and m["type"] in (reply_type, "error"), timeout_s)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass
        if self._thread is not None:
            self._thread.join(5)



@cache
def analysed_loop(music_dir: Path, name: str = "loop_amen_full.flac"):
    """A drum loop from the test music, analysed once per test run: (audio path, cache root, bundle).

    The amen loop: 6.9 s at 140 BPM. Treat the cache as read-only (copy it to delete things).
    """
    from sonosteer.audio.pipeline import analyze_file

    path = music_dir / "drums_cc0" / name
    cache = Path(tempfile.mkdtemp(prefix="sonosteer-serve-tests-"))
    atexit.register(shutil.rmtree, cache, True)
    return path, cache, analyze_file(path, cache_root=cache)
