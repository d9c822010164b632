"""GPU JPEG encoding says plainly why it cannot be used, and never stops the engine from starting."""

from __future__ import annotations

import builtins

import torch

from sonosteer.engine import gpu_jpeg


def test_no_cuda_device_is_a_reason_not_an_error():
    assert gpu_jpeg.probe(torch.device("cpu")) == "nvJPEG needs a CUDA device"


def test_quality_outside_1_to_100_is_refused():
    import pytest

    with pytest.raises(ValueError, match="quality"):
        gpu_jpeg.encode(torch.zeros(8, 8, 3, dtype=torch.uint8), 0)


def _failing_import(monkeypatch, error: Exception):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_torchvision_says_how_to_get_it(monkeypatch):
    _failing_import(monkeypatch, ModuleNotFoundError("No module named 'torchvision'"))
    reason = gpu_jpeg.probe(torch.device("cuda"))
    assert reason is not None and "pip install torchvision" in reason


def test_a_torchvision_built_for_another_torch_is_reported(monkeypatch):
    _failing_import(monkeypatch, RuntimeError("operator torchvision::nms does not exist\nmore"))
    reason = gpu_jpeg.probe(torch.device("cuda"))
    assert reason is not None and "operator torchvision::nms does not exist" in reason and "more" not in reason
    assert "reinstall" in reason


def test_the_engine_encodes_on_the_cpu_side_unless_asked_and_says_why(tiny_weights):
    import pytest
    from engine_fixtures import tiny_settings

    from sonosteer.engine.errors import EngineError
    from sonosteer.engine.steered_engine import SteeredEngine

    engine = SteeredEngine.from_settings(tiny_settings(tiny_weights))
    assert not engine.encodes_jpeg and engine.jpeg_reason == "nvJPEG needs a CUDA device"
    assert "nvJPEG" not in engine.label
    with pytest.raises(RuntimeError, match="does not encode JPEG: nvJPEG needs a CUDA device"):
        engine.launch()
    with pytest.raises(EngineError, match="gpu_jpeg=True, but nvJPEG needs a CUDA device"):
        SteeredEngine.from_settings(tiny_settings(tiny_weights, gpu_jpeg=True))
