"""The frame pipeline without a network: render loop, backpressure, ring safety, measured lookahead."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import simplejpeg

from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.renderer import FeatureInfo, Renderer
from sonosteer.serve import encoder as encoder_module
from sonosteer.serve.encoder import EncodedFrame, JpegEncoder
from sonosteer.serve.render_loop import FramePlan, RenderLoop


class CountingRenderer:
    """Writes its render count into every pixel of the next slot of a small ring (like a pinned-buffer ring)."""

    kind = "test"
    label = "counting renderer"
    height = width = 64

    def __init__(self, ring_size: int):
        self.ring_size = ring_size
        self.ring = [np.zeros((64, 64, 3), np.uint8) for _ in range(ring_size)]
        self.count = 0
        self.last_timings_ms: dict[str, float] = {}

    def warmup(self, progress=None) -> None:
        pass

    def apply(self, controls: FrameControls) -> None:
        pass

    def render(self) -> np.ndarray:
        out = self.ring[self.count % self.ring_size]
        out[:] = (self.count * 7) % 250
        self.count += 1
        return out

    def features(self) -> dict[str, FeatureInfo]:
        return {}

    def close(self) -> None:
        pass


class Source:
    """A frame source on a fake clock: media time = wall time since start; optional faults."""

    def __init__(self, client_latency_s: float = 0.0, fail_on: int | None = None):
        self.t0 = time.perf_counter()
        self.client_latency_s = client_latency_s
        self.fail_on = fail_on
        self.calls = 0
        self.leads: list[float] = []

    def next_frame(self, lookahead_s: float) -> FramePlan:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("planner fault")
        now = time.perf_counter() - self.t0
        self.leads.append(lookahead_s)
        return FramePlan(FrameControls(media_time_s=now + lookahead_s), epoch=0)

    def client_render_latency_s(self) -> float:
        return self.client_latency_s


def run_pipeline(engine, source, fps: float, seconds: float, loop_factory=RenderLoop):
    encoded: list[EncodedFrame] = []
    holder: dict = {}

    def on_encoded(frame: EncodedFrame) -> None:
        encoded.append(frame)
        holder["loop"].note_encoded(frame.frame_number, time.perf_counter())
        holder["loop"].note_sent(frame.frame_number, time.perf_counter())

    encoder = JpegEncoder(on_encoded, quality=90)
    loop = loop_factory(engine, encoder, source, fps=fps)
    holder["loop"] = loop
    encoder.start()
    loop.start()
    time.sleep(seconds)
    loop.stop()
    encoder.stop()
    return loop, encoder, encoded


def test_counting_renderer_is_a_renderer():
    assert isinstance(CountingRenderer(2), Renderer)


def test_slow_encoder_makes_the_loop_skip_and_never_corrupts_frames(monkeypatch):
    real = simplejpeg.encode_jpeg

    def slow_encode(*args, **kwargs):
        time.sleep(0.03)
        return real(*args, **kwargs)

    monkeypatch.setattr(encoder_module.simplejpeg, "encode_jpeg", slow_encode)
    engine = CountingRenderer(ring_size=2)
    loop, encoder, encoded = run_pipeline(engine, Source(), fps=100.0, seconds=1.5)
    assert loop.skipped > 10
    # The engine renders about as often as the encoder finishes, not at the 100 FPS tick rate.
    assert engine.count < 0.6 * 100 * 1.5
    assert len(encoded) > 15
    for frame in encoded:
        pixels = simplejpeg.decode_jpeg(frame.jpeg)
        assert abs(float(pixels.mean()) - (frame.frame_number * 7) % 250) < 3, frame.frame_number
    numbers = [f.frame_number for f in encoded]
    assert numbers == sorted(numbers)


def test_lookahead_is_interval_plus_measured_latencies():
    engine = CountingRenderer(ring_size=3)
    source = Source(client_latency_s=0.1)
    loop, encoder, encoded = run_pipeline(engine, source, fps=50.0, seconds=1.0)
    assert len(encoded) > 30
    pipeline_s = loop.pipeline_latency_s()
    assert 0.0 < pipeline_s < 0.05
    late = source.leads[-10:]
    # lookahead = pipeline latency (measured) + frame interval (0.02) + client render latency (0.1)
    assert all(0.12 < lead < 0.12 + 0.05 for lead in late), late
    # Each frame carries the media time it was planned for.
    assert all(f.media_time_s > 0.1 for f in encoded)
    times = [f.media_time_s for f in encoded]
    assert times == sorted(times)


def test_the_loop_survives_a_planner_fault():
    engine = CountingRenderer(ring_size=3)
    loop, encoder, encoded = run_pipeline(engine, Source(fail_on=3), fps=50.0, seconds=0.8)
    assert loop.errors == 1 and "planner fault" in loop.last_error
    assert len(encoded) > 15


def test_uncapped_loop_renders_as_fast_as_the_pipeline_allows():
    engine = CountingRenderer(ring_size=3)
    loop, encoder, encoded = run_pipeline(engine, Source(), fps=0.0, seconds=0.5)
    assert engine.count > 100
    assert len(encoded) > 50
    assert encoder.replaced == 0  # no frame rendered only to be replaced before the encoder saw it


def test_encoder_refuses_bad_quality_and_keeps_running_after_a_bad_frame():
    with pytest.raises(ValueError, match="quality"):
        JpegEncoder(lambda f: None, quality=0)
    got = threading.Event()
    frames: list[EncodedFrame] = []

    def on_encoded(frame):
        frames.append(frame)
        got.set()

    encoder = JpegEncoder(on_encoded)
    encoder.start()
    from sonosteer.serve.encoder import RenderedFrame

    bad = RenderedFrame(0, 0, 0.0, np.zeros((8, 8), np.float64), 0.0, 0.0, time.perf_counter())
    encoder.submit(bad)
    time.sleep(0.1)
    good = RenderedFrame(1, 0, 0.0, np.full((16, 16, 3), 128, np.uint8), 0.0, 0.0, time.perf_counter())
    encoder.submit(good)
    assert got.wait(5)
    encoder.stop()
    assert encoder.errors == 1 and [f.frame_number for f in frames] == [1]


class SelfEncodingRenderer(CountingRenderer):
    """Like the SDXL engine with nvJPEG: launch() starts a frame, collect_jpeg() hands over its JPEG
    (encoded here with simplejpeg); records the order of calls."""

    encodes_jpeg = True

    def __init__(self):
        super().__init__(ring_size=2)
        self.qualities: list[int] = []
        self.calls: list[str] = []
        self.launched: np.ndarray | None = None

    def apply(self, controls: FrameControls) -> None:
        self.calls.append("apply")

    def render(self) -> np.ndarray:
        raise AssertionError("a self-encoding renderer's raw frames must not be asked for")

    def launch(self) -> None:
        assert self.launched is None, "launched twice without a collect"
        self.calls.append("launch")
        self.launched = super().render().copy()

    def collect_jpeg(self, quality: int) -> bytes:
        assert self.launched is not None, "collect without a launch"
        self.calls.append("collect")
        self.qualities.append(quality)
        self.last_timings_ms["jpeg"] = 0.25
        pixels, self.launched = self.launched, None
        return simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB")


def _check_encoded_frames(engine: SelfEncodingRenderer, encoder: JpegEncoder, encoded: list[EncodedFrame]) -> None:
    assert len(encoded) > 30 and set(engine.qualities) == {90}  # the server's quality reaches the engine
    assert encoder.replaced == 0 and not encoder.busy  # nothing went through the encoder thread
    assert [f.frame_number for f in encoded] == list(range(len(encoded)))
    for frame in encoded:
        assert (frame.width, frame.height, frame.encode_ms) == (64, 64, 0.25)
        pixels = simplejpeg.decode_jpeg(frame.jpeg)
        assert abs(float(pixels.mean()) - (frame.frame_number * 7) % 250) < 3, frame.frame_number


def test_paced_frames_the_engine_encodes_are_collected_at_once():
    engine = SelfEncodingRenderer()
    loop, encoder, encoded = run_pipeline(engine, Source(), fps=100.0, seconds=0.6)
    _check_encoded_frames(engine, encoder, encoded)
    assert "".join(c[0] for c in engine.calls).startswith("alc" * 30)  # apply, launch, collect: no added latency
    assert 0.0 < loop.pipeline_latency_s() < 0.05


def test_uncapped_frames_the_engine_encodes_overlap_the_next_plan():
    engine = SelfEncodingRenderer()
    loop, encoder, encoded = run_pipeline(engine, Source(), fps=0.0, seconds=0.5)
    _check_encoded_frames(engine, encoder, encoded)
    # The next frame is planned and applied while the launched one renders, then collected, then launched.
    assert "".join(c[0] for c in engine.calls).startswith("al" + "acl" * 30)
    assert engine.launched is None  # stopping delivers the frame in flight


def test_deliver_refuses_raw_pixels():
    from sonosteer.serve.encoder import RenderedFrame

    encoder = JpegEncoder(lambda f: None)
    raw = RenderedFrame(0, 0, 0.0, np.zeros((8, 8, 3), np.uint8), 0.0, 0.0, time.perf_counter())
    with pytest.raises(ValueError, match="submit"):
        encoder.deliver(raw)


class BreakingEncoderRenderer(SelfEncodingRenderer):
    """Its GPU encoder fails on the third frame; its raw frames still render."""

    def render(self) -> np.ndarray:
        return CountingRenderer.render(self)

    def collect_jpeg(self, quality: int) -> bytes:
        if self.count == 3:
            self.launched = None
            raise RuntimeError("NVJPEG_STATUS_EXECUTION_FAILED")
        return super().collect_jpeg(quality)


def test_a_failing_gpu_encoder_falls_back_to_the_cpu_encoder_and_the_stream_goes_on():
    engine = BreakingEncoderRenderer()
    loop, encoder, encoded = run_pipeline(engine, Source(), fps=100.0, seconds=0.8)
    assert loop.errors == 1 and "falling back to the CPU encoder" in loop.last_error
    assert "NVJPEG_STATUS_EXECUTION_FAILED" in loop.last_error
    assert not loop.jpeg_on_engine and encoder.encoded > 20  # later frames went through the CPU encoder
    numbers = [f.frame_number for f in encoded]
    assert numbers[:2] == [0, 1] and 2 not in numbers and numbers == sorted(numbers) and len(numbers) > 30
    for frame in encoded:
        pixels = simplejpeg.decode_jpeg(frame.jpeg)
        assert abs(float(pixels.mean()) - (frame.frame_number * 7) % 250) < 3, frame.frame_number
