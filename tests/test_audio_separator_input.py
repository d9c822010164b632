"""What a source separator is fed: Demucs gets the file's stereo at 44.1 kHz (not the mono 22.05 kHz
analysis signal), and without its weights it fails fast with what to do. No Demucs weights needed."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import run_sonosteer

from sonosteer.audio import pipeline, separation
from sonosteer.audio.decode import decode_stereo_to_file, to_stereo
from sonosteer.audio.errors import BackendUnavailable
from sonosteer.audio.separation import DEMUCS_FT_SIGNATURES, SpectralSeparator, choose_separator, demucs_input


def _band_rms(x: np.ndarray, rate: int, lo_hz: float, hi_hz: float) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    return float(np.sqrt(np.mean(spec[(freqs >= lo_hz) & (freqs < hi_hz)] ** 2)))


def _tone(freq_hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_demucs_input_keeps_stereo_and_the_band_above_11_khz():
    left, right = _tone(15000.0, 1.0, 48000), _tone(300.0, 1.0, 48000)
    out = demucs_input(np.stack([left, right], axis=1), 48000)
    assert out.shape == (2, 44100) and out.dtype == np.float32
    # The 15 kHz tone survives resampling to 44.1 kHz, in the left channel only.
    assert _band_rms(out[0], 44100, 14500, 15500) > 100 * _band_rms(out[1], 44100, 14500, 15500)
    assert _band_rms(out[1], 44100, 250, 350) > 100 * _band_rms(out[0], 44100, 250, 350)
    # At the model's rate nothing is resampled: stereo passes through unchanged.
    native = np.stack([_tone(15000.0, 0.5, 44100), _tone(300.0, 0.5, 44100)], axis=1)
    np.testing.assert_array_equal(demucs_input(native, 44100), native.T)


def test_mono_is_duplicated_and_surround_folds_into_left_right():
    mono = _tone(440.0, 0.1, 44100)
    np.testing.assert_array_equal(demucs_input(mono, 44100), np.stack([mono, mono]))
    six = np.random.default_rng(0).standard_normal((100, 6)).astype(np.float32)
    folded = to_stereo(six)
    np.testing.assert_allclose(folded[:, 0], six[:, 0] + six[:, 2:].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(folded[:, 1], six[:, 1] + six[:, 2:].mean(axis=1), rtol=1e-6)


def test_stereo_decode_to_a_memory_mapped_file(tmp_path):
    left, right = _tone(15000.0, 2.0, 48000), _tone(300.0, 2.0, 48000)
    path = tmp_path / "stereo48k.flac"
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype="PCM_24")
    out = decode_stereo_to_file(path, 44100, tmp_path / "source.f32")
    assert out.shape == (88200, 2) and isinstance(out, np.memmap)
    np.testing.assert_allclose(out, demucs_input(np.stack([left, right], axis=1), 48000).T, atol=2e-4)


class _RecordingSeparator:
    """A separator that asks for the stereo source like Demucs, records it, and separates spectrally."""

    name = "recording"
    description = "test double: spectral separation, records its stereo source blocks"
    source_rate_hz = 44100
    note = "the test double's note"

    def __init__(self) -> None:
        self.calls: list[tuple[int, np.ndarray]] = []

    def separate(self, y, sample_rate_hz, source=None):
        self.calls.append((len(y), None if source is None else np.array(source)))
        return SpectralSeparator().separate(y, sample_rate_hz)


def test_pipeline_gives_the_separator_the_files_stereo_at_its_rate(tmp_path, monkeypatch):
    seconds = 65.0  # two chunks, so the second block's source span must line up too
    left, right = _tone(15000.0, seconds, 44100), _tone(300.0, seconds, 44100)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], axis=1), 44100)
    recorder = _RecordingSeparator()
    monkeypatch.setattr(pipeline, "choose_separator", lambda preference: (recorder, None))
    bundle = pipeline.analyze_file(path, cache_root=tmp_path / "cache")
    assert bundle.manifest["backends"]["separator"] == "recording"
    assert bundle.manifest["backends"]["separator_note"] == "the test double's note"  # what happened while separating
    assert len(recorder.calls) == 2
    for n_mono, source in recorder.calls:
        assert source is not None and source.shape[1] == 2
        assert abs(len(source) - 2 * n_mono) <= 2  # the same span at twice the analysis rate
        assert _band_rms(source[:, 0], 44100, 14500, 15500) > 100 * _band_rms(source[:, 1], 44100, 14500, 15500)
        assert _band_rms(source[:, 1], 44100, 250, 350) > 100 * _band_rms(source[:, 0], 44100, 250, 350)
    assert not any((tmp_path / "cache" / "tmp").iterdir())  # the decoded stereo is removed afterwards


def test_missing_demucs_weights_fail_fast_naming_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(separation, "demucs_installed", lambda: True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SONOSTEER_OFFLINE", "1")
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / f"{DEMUCS_FT_SIGNATURES[0]}-0123abcd.th").write_bytes(b"")
    with pytest.raises(BackendUnavailable) as info:
        choose_separator("demucs")
    message = str(info.value)
    assert str(checkpoints) in message and "copy those files" in message
    assert all(f"{sig}-*.th" in message for sig in DEMUCS_FT_SIGNATURES[1:])
    assert f"{DEMUCS_FT_SIGNATURES[0]}-*.th" not in message
    sep, note = choose_separator("auto")
    assert isinstance(sep, SpectralSeparator) and note == message


def test_cli_demucs_without_the_package_is_a_clear_error(tmp_path):
    y = _tone(220.0, 2.0, 22050)
    sf.write(tmp_path / "tone.wav", y, 22050)
    out = run_sonosteer("analyze", str(tmp_path / "tone.wav"), "--separator", "demucs", "--cache", str(tmp_path / "c"))
    if separation.demucs_installed():
        pytest.skip("demucs is installed here")
    assert out.returncode == 2 and "demucs package is not installed" in out.stderr and "Traceback" not in out.stderr


class _FakeBag:
    """Stands in for the htdemucs_ft bag: its rate and source names."""

    samplerate = 44100
    sources = ["drums", "bass", "other", "vocals"]


def _demucs_on_a_full_gpu(monkeypatch, devices: list[str], error: Exception):
    """A Demucs whose GPU raises `error` (torch's out-of-memory, say) and whose CPU works; records the devices."""

    def apply_model(model, mix, device, **_kwargs):
        devices.append(device)
        if device != "cpu":
            raise error
        return torch.stack([mix * (i + 1) for i in range(len(model.sources))], dim=1)  # (1, sources, 2, n)

    module = types.ModuleType("demucs.apply")
    module.apply_model = apply_model
    monkeypatch.setitem(sys.modules, "demucs", types.ModuleType("demucs"))
    monkeypatch.setitem(sys.modules, "demucs.apply", module)
    sep = separation.DemucsSeparator.__new__(separation.DemucsSeparator)  # no weights: the model is the fake
    sep._torch, sep.device, sep.model, sep.source_rate_hz, sep.note = torch, "cuda", _FakeBag(), 44100, None
    return sep


def test_demucs_out_of_gpu_memory_separates_on_the_cpu_from_then_on(monkeypatch):
    devices: list[str] = []
    sep = _demucs_on_a_full_gpu(monkeypatch, devices, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB"))
    y = _tone(440.0, 1.0, 44100)
    stems = sep.separate(y, 44100)
    assert devices == ["cuda", "cpu"] and sep.device == "cpu"
    assert list(stems) == list(separation.STEM_ORDER) and all(s.shape == y.shape for s in stems.values())
    # the fake scales the mix by the source's position: drums 1x, bass 2x, other 3x, vocals 4x
    np.testing.assert_allclose(stems["bass"] - stems["drums"], y, atol=1e-4)
    assert "ran out of GPU memory" in sep.note and "CPU" in sep.note
    sep.separate(y, 44100)
    assert devices == ["cuda", "cpu", "cpu"]  # later chunks do not try the full GPU again


def test_demucs_errors_other_than_memory_are_not_hidden(monkeypatch):
    devices: list[str] = []
    sep = _demucs_on_a_full_gpu(monkeypatch, devices, RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"))
    with pytest.raises(RuntimeError, match="CUDNN_STATUS_EXECUTION_FAILED"):
        sep.separate(_tone(440.0, 1.0, 44100), 44100)
    assert devices == ["cuda"] and sep.device == "cuda" and sep.note is None
