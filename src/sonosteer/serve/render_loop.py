"""The render loop: in its own thread, every frame interval: plan -> engine -> encoder.

Each frame is rendered for a predicted media time, so that it matches the audio the listener
hears when it is shown:

    target = audio clock now + (pipeline latency + frame interval + client render latency) * rate

where the pipeline latency (plan start to socket send) and the client's render latency are
measured. Backpressure: when the encoder is busy and the frame waiting for it is older than one
interval, the engine work is skipped for this tick (a repeated frame is better than growing
latency); the loop also never renders into an engine ring slot the encoder is still reading.
Uncapped, it waits for the encoder to take the waiting frame instead of rendering one to replace it.
An engine that encodes its own frames (nvJPEG) hands over JPEG bytes, delivered from this thread;
uncapped, the next frame is planned and applied while the GPU renders the current one, so host
work does not add to the frame time.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.renderer import Renderer
from sonosteer.serve.encoder import JpegEncoder, RenderedFrame
from sonosteer.serve.protocol import FLAG_PREVIEW
from sonosteer.serve.rolling import RateMeter, RollingStats


@dataclass(frozen=True)
class FramePlan:
    """What a frame source returns for one tick: the controls, and the transport epoch they belong to."""

    controls: FrameControls
    epoch: int
    meters: dict | None = None
    """What drove the frame, for the UI's orbs (`sonosteer.bridge.meters`); sent just before the frame."""


class FrameSource(Protocol):
    """The current session as the loop sees it (implemented by the server's session manager)."""

    def next_frame(self, lookahead_s: float) -> FramePlan | None:
        """Controls for (clock now + lookahead_s * rate), or None when nothing is to be rendered."""

    def client_render_latency_s(self) -> float:
        """The clock client's reported time from frame receipt to display."""


class RenderLoop:
    """Owns the engine thread. `fps` <= 0 renders as fast as the engine and encoder allow."""

    def __init__(self, engine: Renderer, encoder: JpegEncoder, source: FrameSource, fps: float = 50.0):
        self.engine = engine
        self.encoder = encoder
        self.source = source
        self.fps = float(fps)
        self.interval_s = 1.0 / fps if fps > 0 else 0.0
        self.frame_number = 0
        self.skipped = 0
        self.errors = 0
        self.last_error = ""
        self.lookahead_s = 0.0
        self.plan_ms = RollingStats()
        self.render_ms = RollingStats()
        self.pipeline_ms = RollingStats(32)
        self.encoded_ms = RollingStats(32)
        self.render_rate = RateMeter()
        self._plan_starts: OrderedDict[int, float] = OrderedDict()
        self._starts_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flags = FLAG_PREVIEW if engine.kind == "preview" else 0
        self.jpeg_on_engine = bool(getattr(engine, "encodes_jpeg", False))
        """Whether frames are JPEG-encoded by the engine (nvJPEG) rather than the CPU encoder."""
        self._in_flight: _InFlight | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sonosteer-render", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- measurements fed back by the delivery side --------------------------------------

    def note_encoded(self, frame_number: int, now_s: float) -> None:
        start = self._plan_start(frame_number, pop=False)
        if start is not None:
            self.encoded_ms.add((now_s - start) * 1000.0)

    def note_sent(self, frame_number: int, now_s: float) -> None:
        """The first send of a frame to any client closes its pipeline-latency sample."""
        start = self._plan_start(frame_number, pop=True)
        if start is not None:
            self.pipeline_ms.add((now_s - start) * 1000.0)

    def pipeline_latency_s(self) -> float:
        """Median plan-start-to-send time of recent frames (to encoder output while nobody receives)."""
        if self.pipeline_ms.count:
            return self.pipeline_ms.median() / 1000.0
        return self.encoded_ms.median() / 1000.0

    def _plan_start(self, frame_number: int, pop: bool) -> float | None:
        with self._starts_lock:
            return self._plan_starts.pop(frame_number, None) if pop else self._plan_starts.get(frame_number)

    # -- the loop ----------------------------------------------------------------------

    def _may_render(self, now_s: float) -> bool:
        age = self.encoder.pending_age_s(now_s)
        if self.encoder.busy and age is not None and age > self.interval_s:
            return False
        ring = max(1, int(getattr(self.engine, "ring_size", 1)))
        return all(self.frame_number - f <= ring - 1 for f in self.encoder.frames_in_use())

    def _run(self) -> None:
        next_tick = time.perf_counter()
        while not self._stop.is_set():
            now = time.perf_counter()
            if self.interval_s > 0:
                if now < next_tick:
                    self._stop.wait(next_tick - now)
                    continue
                # Keep the cadence, but never try to catch up a burst after a stall.
                next_tick = max(next_tick + self.interval_s, now - self.interval_s)
            elif self.encoder.pending_age_s(now) is not None:
                # Uncapped: a new frame would only replace the one the encoder has yet to take; waiting
                # also lets the encoder thread run when the engine holds the GIL (a CPU engine).
                self.encoder.wait_until_taken(timeout_s=0.01)
                continue
            if not self._may_render(now):
                self.skipped += 1
                if self.interval_s == 0:
                    time.sleep(0.0005)
                continue
            try:
                if not self._render_one():
                    self._stop.wait(0.02)
            except Exception as exc:  # the loop survives a bad frame; the error reaches the stats
                self._note_error(exc)
                self._stop.wait(0.05)
        try:
            self._finish_in_flight()
        except Exception as exc:
            self._note_error(exc)

    def _note_error(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.errors <= 3:
            traceback.print_exc()

    def _render_one(self) -> bool:
        t0 = time.perf_counter()
        self.lookahead_s = self.pipeline_latency_s() + self.interval_s + self.source.client_render_latency_s()
        plan = self.source.next_frame(self.lookahead_s)
        if plan is None:
            self._finish_in_flight()
            return False
        t1 = time.perf_counter()
        # With a frame in flight on the GPU, these writes queue behind it (stream order).
        self.engine.apply(plan.controls)
        number = self.frame_number
        self.frame_number += 1
        with self._starts_lock:
            self._plan_starts[number] = t0
            while len(self._plan_starts) > 64:
                self._plan_starts.popitem(last=False)
        self.plan_ms.add((t1 - t0) * 1000.0)
        if self.jpeg_on_engine:
            self._finish_in_flight()  # the previous frame rendered while this one was planned
            self.engine.launch()
            self._in_flight = _InFlight(number, plan, (t1 - t0) * 1000.0, t1)
            if self.interval_s > 0:  # paced: deliver now; uncapped: overlap with the next plan
                self._finish_in_flight()
            return True
        pixels = self.engine.render()
        t2 = time.perf_counter()
        self.render_ms.add((t2 - t1) * 1000.0)
        self.render_rate.tick(t2)
        self.encoder.submit(self._frame(number, plan, (t1 - t0) * 1000.0, (t2 - t1) * 1000.0, t2, pixels=pixels))
        return True

    def _finish_in_flight(self) -> None:
        """Wait for the frame the engine is rendering and encoding, and deliver its JPEG."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return
        try:
            jpeg = self.engine.collect_jpeg(self.encoder.quality)
        except Exception as exc:  # the GPU encoder broke: lose this frame, encode on the CPU from now on
            self.jpeg_on_engine = False
            raise RuntimeError(f"GPU JPEG encoding failed, falling back to the CPU encoder: {exc}") from exc
        t2 = time.perf_counter()
        render_ms = (t2 - flight.launch_s) * 1000.0
        self.render_ms.add(render_ms)
        self.render_rate.tick(t2)
        encode_ms = self.engine.last_timings_ms.get("jpeg", 0.0)
        frame = self._frame(flight.number, flight.plan, flight.plan_ms, render_ms, t2, jpeg=jpeg, encode_ms=encode_ms)
        self.encoder.deliver(frame)

    def _frame(
        self,
        number: int,
        plan: FramePlan,
        plan_ms: float,
        render_ms: float,
        output_s: float,
        pixels=None,
        jpeg: bytes | None = None,
        encode_ms: float = 0.0,
    ) -> RenderedFrame:
        return RenderedFrame(
            frame_number=number,
            epoch=plan.epoch,
            media_time_s=plan.controls.media_time_s,
            plan_ms=plan_ms,
            render_ms=render_ms,
            output_time_s=output_s,
            flags=self._flags,
            meters=plan.meters,
            width=self.engine.width,
            height=self.engine.height,
            pixels=pixels,
            jpeg=jpeg,
            encode_ms=encode_ms,
        )


@dataclass(frozen=True)
class _InFlight:
    """A frame launched on the engine and not yet collected."""

    number: int
    plan: FramePlan
    plan_ms: float
    launch_s: float
