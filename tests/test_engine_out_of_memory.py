"""A GPU that runs out of memory while the engine loads or warms up: one clear error, memory let go, and with
`--engine auto` the preview instead (simulated on the CPU by raising torch's own OutOfMemoryError)."""

from __future__ import annotations

import pytest
import torch
from engine_fixtures import tiny_settings

from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine import factory, steered_engine
from sonosteer.engine.devices import START_PEAK_GIB, memory_advice
from sonosteer.engine.errors import EngineError, GpuOutOfMemoryError, is_out_of_memory
from sonosteer.engine.factory import create_renderer, warm_up
from sonosteer.engine.steered_engine import SteeredEngine

TORCH_OOM = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.63 GiB."


def _raise_oom(*_args, **_kwargs):
    raise torch.OutOfMemoryError(TORCH_OOM)


def test_out_of_memory_is_recognised_directly_and_through_the_errors_around_it():
    assert is_out_of_memory(torch.OutOfMemoryError(TORCH_OOM))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))  # a CUDA library's wording
    try:
        try:
            _raise_oom()
        except torch.OutOfMemoryError as inner:
            raise RuntimeError("backend='inductor' raised: compiling failed") from inner
    except RuntimeError as wrapped:
        assert is_out_of_memory(wrapped)
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_out_of_memory(ValueError("bad size")) and not is_out_of_memory(None)


def test_warmup_out_of_memory_closes_the_engine_and_says_how_to_make_room(tiny_weights, monkeypatch):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    monkeypatch.setattr(engine, "render", _raise_oom)
    with pytest.raises(GpuOutOfMemoryError) as info:
        engine.warmup()
    message = str(info.value)
    assert isinstance(info.value, EngineError)  # the CLI and the server show it as it is
    assert message.startswith("the GPU ran out of memory while warming up")
    assert "Tried to allocate 2.00 GiB" in message and "nvidia-smi" in message and "--engine preview" in message
    assert "--size" in message and f"{START_PEAK_GIB} GiB" in message
    with pytest.raises(RuntimeError, match="closed"):
        engine.apply(FrameControls())
    assert engine.generator is None  # the models are let go, not kept half-captured


def test_other_warmup_errors_pass_through_and_leave_the_engine_open(tiny_weights, monkeypatch):
    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))

    def broken():
        raise ValueError("a bug, not memory")

    monkeypatch.setattr(engine, "render", broken)
    with pytest.raises(ValueError, match="a bug, not memory"):
        engine.warmup()
    engine.apply(FrameControls())  # still open
    engine.close()


def test_loading_out_of_memory_is_one_clear_error(tiny_weights, monkeypatch):
    monkeypatch.setattr(steered_engine, "load_parts", _raise_oom)
    with pytest.raises(GpuOutOfMemoryError, match="while loading the model: CUDA out of memory"):
        SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    with pytest.raises(GpuOutOfMemoryError):  # an explicit SDXL-Turbo says so; "auto" shows the preview
        create_renderer("sdxl-turbo", tiny_settings(tiny_weights, height=64, width=64))
    monkeypatch.setattr(factory, "cuda_status", lambda: (True, "CUDA GPU (simulated)"))
    fallback = create_renderer("auto", tiny_settings(tiny_weights, height=64, width=64))
    assert fallback.renderer.kind == "preview"
    assert fallback.reason.startswith("preview renderer: SDXL-Turbo could not start: the GPU ran out of memory while loading")


def test_auto_gives_way_to_the_preview_when_warmup_runs_out_of_memory(tiny_weights, monkeypatch):
    settings = tiny_settings(tiny_weights, height=64, width=64)
    choice = create_renderer("sdxl-turbo", settings)
    engine = choice.renderer
    monkeypatch.setattr(engine, "render", _raise_oom)
    fallback = warm_up(choice, "auto", settings)
    assert fallback.renderer.kind == "preview" and fallback.renderer.render().shape == (64, 64, 3)
    assert fallback.reason.startswith("preview renderer: SDXL-Turbo could not start: the GPU ran out of memory")
    assert engine.generator is None  # closed: its memory is free for the preview and anything else

    explicit = create_renderer("sdxl-turbo", settings)
    monkeypatch.setattr(explicit.renderer, "render", _raise_oom)
    with pytest.raises(GpuOutOfMemoryError):
        warm_up(explicit, "sdxl-turbo", settings)
    working = create_renderer("sdxl-turbo", settings)
    assert warm_up(working, "auto", settings) is working  # no error: the same choice, warmed up
    assert working.renderer.render().shape == (64, 64, 3)


def test_doctor_warns_when_a_gpu_has_less_free_than_the_engine_needs_to_start():
    assert memory_advice(START_PEAK_GIB * 2**30) is None and memory_advice(80 * 2**30) is None
    advice = memory_advice(int(2.5 * 2**30))
    assert advice.startswith("only 2.5 GiB free") and f"about {START_PEAK_GIB} GiB" in advice and "nvidia-smi" in advice


def test_a_build_that_runs_out_of_memory_lets_go_of_the_weights_before_counting_what_is_free(tiny_weights, monkeypatch):
    import weakref

    loaded: list[weakref.ref] = []
    real_load = steered_engine.load_parts

    def load_and_watch(*args, **kwargs):
        parts = real_load(*args, **kwargs)
        loaded.append(weakref.ref(parts))
        return parts

    freed_when_counted: list[bool] = []
    real_error = steered_engine._out_of_memory

    def counting_error(doing, message):
        freed_when_counted.append(loaded[0]() is None)
        return real_error(doing, message)

    monkeypatch.setattr(steered_engine, "load_parts", load_and_watch)
    monkeypatch.setattr(steered_engine, "_out_of_memory", counting_error)
    monkeypatch.setattr(SteeredEngine, "__init__", _raise_oom)  # the weights loaded; building the engine ran out
    with pytest.raises(GpuOutOfMemoryError, match="while loading the model"):
        SteeredEngine.from_settings(tiny_settings(tiny_weights, height=64, width=64))
    assert freed_when_counted == [True]
