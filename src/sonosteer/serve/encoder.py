"""JPEG encoding in a background thread, double-buffered: frame N encodes while N+1 renders.

The render loop hands each rendered frame to `submit`; the encoder thread encodes the latest
pending frame with simplejpeg (libjpeg-turbo, releases the GIL) and passes the result on. If a
newer frame arrives before the pending one was picked up, the older one is replaced (counted).
A frame the engine encoded itself (nvJPEG on the GPU) goes through `deliver` instead, straight
from the render thread: no thread hop, no host-side encode.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simplejpeg

CHROMA_SUBSAMPLING = "420"
"""4:2:0 like every video codec: at 512x512, q85, 0.84 ms and 82 kB per frame against 1.53 ms and
119 kB for 4:4:4 (measured on the preview's frames, one core)."""


@dataclass
class RenderedFrame:
    """A frame straight from the engine, with what the header needs."""

    frame_number: int
    epoch: int
    media_time_s: float
    pixels: np.ndarray | None
    """(H, W, 3) uint8, or None when the engine already encoded the frame (`jpeg`)."""
    plan_ms: float
    render_ms: float
    output_time_s: float
    """time.perf_counter() when the engine handed the frame over."""
    flags: int = 0
    meters: dict | None = None
    jpeg: bytes | None = None
    width: int = 0
    height: int = 0
    encode_ms: float = 0.0
    """For a frame the engine encoded: its JPEG, size and the encode's share of render_ms."""


@dataclass(frozen=True)
class EncodedFrame:
    """A JPEG ready for the clients."""

    frame_number: int
    epoch: int
    width: int
    height: int
    flags: int
    media_time_s: float
    plan_ms: float
    render_ms: float
    encode_ms: float
    output_time_s: float
    jpeg: bytes
    meters_json: str | None = None
    """The frame's `meters` message, serialised once for every client."""


class JpegEncoder:
    """One background thread; `submit` never blocks; `on_encoded` is called from the encoder thread."""

    def __init__(self, on_encoded: Callable[[EncodedFrame], None], quality: int = 85):
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be in [1, 100], got {quality}")
        self.quality = quality
        self._on_encoded = on_encoded
        self._cond = threading.Condition()
        self._pending: RenderedFrame | None = None
        self._encoding: RenderedFrame | None = None
        self._stop = False
        self._thread: threading.Thread | None = None
        self.replaced = 0
        self.encoded = 0
        self.errors = 0
        self.last_error = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sonosteer-jpeg", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def deliver(self, frame: RenderedFrame) -> None:
        """Pass on a frame the engine already encoded (`frame.jpeg`), in the caller's thread."""
        if frame.jpeg is None:
            raise ValueError("deliver() takes an encoded frame; submit() raw pixels instead")
        self.encoded += 1
        self._on_encoded(_encoded(frame, frame.jpeg, frame.width, frame.height, frame.encode_ms))

    def submit(self, frame: RenderedFrame) -> None:
        with self._cond:
            if self._pending is not None:
                self.replaced += 1
            self._pending = frame
            self._cond.notify_all()

    def wait_until_taken(self, timeout_s: float) -> None:
        """Block until the encoder has taken the pending frame (or stopped), at most timeout_s."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is None or self._stop, timeout_s)

    @property
    def busy(self) -> bool:
        return self._encoding is not None

    def pending_age_s(self, now_s: float) -> float | None:
        """How long the frame waiting for the encoder has waited since engine output; None if none waits."""
        pending = self._pending
        return None if pending is None else now_s - pending.output_time_s

    def frames_in_use(self) -> tuple[int, ...]:
        """Frame numbers whose pixels the encoder still reads (the engine must not overwrite them)."""
        return tuple(f.frame_number for f in (self._encoding, self._pending) if f is not None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                frame, self._pending = self._pending, None
                self._encoding = frame
                self._cond.notify_all()  # a render loop may wait for the pending frame to be taken
            try:
                t0 = time.perf_counter()
                jpeg = simplejpeg.encode_jpeg(
                    frame.pixels, quality=self.quality, colorspace="RGB", colorsubsampling=CHROMA_SUBSAMPLING, fastdct=True
                )
                encode_ms = (time.perf_counter() - t0) * 1000.0
            except Exception as exc:  # a bad frame must not kill the stream
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._encoding = None
                continue
            self._encoding = None
            self.encoded += 1
            height, width = frame.pixels.shape[:2]
            self._on_encoded(_encoded(frame, jpeg, width, height, encode_ms))


def _encoded(frame: RenderedFrame, jpeg: bytes, width: int, height: int, encode_ms: float) -> EncodedFrame:
    meters_json = None
    if frame.meters is not None:
        meters = {"type": "meters", "frame_number": frame.frame_number, **frame.meters}
        meters_json = json.dumps(meters, separators=(",", ":"))
    return EncodedFrame(
        frame_number=frame.frame_number,
        epoch=frame.epoch,
        width=width,
        height=height,
        flags=frame.flags,
        media_time_s=frame.media_time_s,
        plan_ms=frame.plan_ms,
        render_ms=frame.render_ms,
        encode_ms=encode_ms,
        output_time_s=frame.output_time_s,
        jpeg=jpeg,
        meters_json=meters_json,
    )
