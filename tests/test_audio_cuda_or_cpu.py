"""The analysis's models on a GPU that runs out of memory: the work moves to the CPU, other errors still rise."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from sonosteer.audio import beats as beats_mod
from sonosteer.audio.cuda_or_cpu import cuda_or_cpu

OOM = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB")


def _full_gpu(devices: list[str], error: Exception):
    def run(device: str) -> str:
        devices.append(device)
        if device != "cpu":
            raise error
        return f"ran on {device}"

    return run


def test_out_of_memory_moves_the_work_to_the_cpu_and_says_where_it_ran():
    devices: list[str] = []
    assert cuda_or_cpu(_full_gpu(devices, OOM), "cuda") == ("ran on cpu", "cpu")
    assert devices == ["cuda", "cpu"]
    devices.clear()
    assert cuda_or_cpu(_full_gpu(devices, OOM), "cpu") == ("ran on cpu", "cpu") and devices == ["cpu"]


def test_other_errors_and_a_cpu_out_of_memory_rise():
    with pytest.raises(RuntimeError, match="illegal memory access"):
        cuda_or_cpu(_full_gpu([], RuntimeError("CUDA error: an illegal memory access")), "cuda")

    def cpu_too(device: str):
        raise OOM

    with pytest.raises(torch.OutOfMemoryError):
        cuda_or_cpu(cpu_too, "cuda")


def test_beat_this_on_a_full_gpu_tracks_the_beats_on_the_cpu(monkeypatch):
    devices: list[str] = []
    beats_s = np.arange(0.5, 10.0, 0.5)  # 120 BPM, four to the bar

    class Audio2Beat:
        def __init__(self, checkpoint_path, device, dbn):
            self.device = device
            devices.append(device)

        def __call__(self, y, sample_rate_hz):
            if self.device != "cpu":
                raise OOM
            return beats_s, beats_s[::4]

    module = types.ModuleType("beat_this.inference")
    module.Audio2Beat = Audio2Beat
    monkeypatch.setitem(sys.modules, "beat_this", types.ModuleType("beat_this"))
    monkeypatch.setitem(sys.modules, "beat_this.inference", module)
    monkeypatch.setattr(beats_mod, "beat_this_status", lambda: None)
    monkeypatch.setattr(beats_mod, "default_device", lambda: "cuda")
    result = beats_mod.track_beats_beat_this(np.zeros(22050 * 10, np.float32), 22050, 10.0)
    assert devices == ["cuda", "cpu"]
    assert result.tempo_bpm == pytest.approx(120.0) and result.beats_per_bar == 4
