"""analyze_file end to end on a real clip: bundle contents, cache hit, CLI, and every kind of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from audio_helpers import SR, sectoid_mix
from conftest import run_sonosteer

from sonosteer.audio.bundle import find_bundle, load_bundle
from sonosteer.audio.channels import CORE_CHANNELS, GLOBAL_CHANNELS, PAIR_CHANNELS
from sonosteer.audio.errors import AudioInputError
from sonosteer.audio.pipeline import analysis_key, analyze_file
from sonosteer.audio.stems import COUPLED_STEMS


@pytest.fixture(scope="module")
def excerpt_bundle(tmp_path_factory, music_dir):
    """20 s of the sectoid full mix (stereo 44.1 kHz FLAC), analysed once for the module."""
    mix, _ = sectoid_mix(music_dir, start_s=90.0, duration_s=20.0)
    folder = tmp_path_factory.mktemp("excerpt")
    path = folder / "excerpt.flac"
    import soxr

    stereo = soxr.resample(mix, SR, 44100)
    sf.write(path, np.stack([stereo, 0.8 * stereo], axis=1), 44100)
    events = []
    bundle = analyze_file(path, cache_root=folder / "cache", progress=lambda f, m: events.append((f, m)))
    return path, folder / "cache", bundle, events


def test_bundle_has_every_stem_channel_and_pair(excerpt_bundle):
    _, _, bundle, events = excerpt_bundle
    assert 18 <= len(bundle.stems) <= 24
    kinds = {bundle.stem_info(s)["kind"] for s in bundle.stems}
    assert kinds == {"separated", "virtual", "hpss", "derived", "global"}
    for stem in bundle.stems:
        info = bundle.stem_info(stem)
        assert info["label"] and set(info["classification"]) == {"percussive", "melody", "harmony", "texture", "harmonic"}
        assert all(0.0 <= v <= 1.0 for v in info["classification"].values())
        for name, spec in CORE_CHANNELS.items():
            arr = bundle.channel(stem, name)
            assert arr.shape[0] == bundle.n_frames
            assert np.all(arr >= spec.lo - 1e-6) and np.all(arr <= spec.hi + 1e-6), f"{stem}/{name}"
    for name in GLOBAL_CHANNELS:
        assert bundle.has_channel("global", name)
    for i, a in enumerate(COUPLED_STEMS):
        for b in COUPLED_STEMS[i + 1:]:
            for name in PAIR_CHANNELS:
                assert bundle.pair_channel(a, b, name).shape == (bundle.n_frames,)
    assert bundle.frame_rate_hz == 50.0
    assert bundle.n_frames == pytest.approx(20.0 * 50, abs=2)
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_bundle_records_backends_tempo_and_classification(excerpt_bundle):
    _, _, bundle, _ = excerpt_bundle
    m = bundle.manifest
    assert m["backends"]["separator"] == "spectral" and m["backends"]["separator_note"]
    assert m["backends"]["pitch"] == {"vocals": "pesto:mir-1k_g7", "bass": "pesto:mir-1k_g7", "other": "basic-pitch:icassp_2022"}
    assert abs(bundle.tempo_bpm / 95.0 - 1) <= 0.02
    assert len(bundle.beats_s) > 25 and set(bundle.downbeats_s) <= set(bundle.beats_s)
    drums, bass = bundle.stem_info("drums")["classification"], bundle.stem_info("bass")["classification"]
    assert drums["percussive"] > 0.7 and bass["percussive"] < drums["percussive"]
    assert bundle.stem_info("drums_percussive")["harmonic_features"] is False
    assert not np.any(bundle.channel("drums_percussive", "pitch_hz"))
    # beat_phase is 0 on the beats (within one frame)
    phase = bundle.channel("global", "beat_phase")
    on_beat = np.round(bundle.beats_s * bundle.frame_rate_hz).astype(int)
    on_beat = on_beat[on_beat < bundle.n_frames]
    assert np.all((phase[on_beat] < 0.1) | (phase[on_beat] > 0.9))


def test_separated_stems_sum_to_the_mix():
    from sonosteer.audio.separation import SpectralSeparator

    rng = np.random.default_rng(0)
    y = (rng.standard_normal(SR * 6) * 0.1).astype(np.float32)
    stems = SpectralSeparator().separate(y, SR)
    np.testing.assert_allclose(sum(stems.values()), y, atol=1e-4)


def test_separator_beats_the_mix_baseline_on_the_lead_guitar(music_dir):
    from audio_helpers import si_sdr

    from sonosteer.audio.separation import SpectralSeparator

    mix, guitar = sectoid_mix(music_dir, start_s=90.0, duration_s=40.0)
    stems = SpectralSeparator().separate(mix, SR)
    assert si_sdr(stems["vocals"], guitar) > si_sdr(mix, guitar) + 1.0


def test_second_analysis_is_a_cache_hit(excerpt_bundle):
    path, cache, bundle, _ = excerpt_bundle
    mtime = (bundle.path / "manifest.json").stat().st_mtime_ns
    events = []
    again = analyze_file(path, cache_root=cache, progress=lambda f, m: events.append(m))
    assert again.path == bundle.path and events == ["cached"]
    assert (again.path / "manifest.json").stat().st_mtime_ns == mtime


def test_cli_analyze_json_and_plot(excerpt_bundle, tmp_path):
    path, cache, bundle, _ = excerpt_bundle
    out = run_sonosteer("analyze", str(path), "--cache", str(cache))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(bundle.path)
    png = tmp_path / "plot.png"
    out = run_sonosteer("analyze", str(path), "--cache", str(cache), "--json", "--plot", str(png))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["tempo_bpm"] == pytest.approx(bundle.tempo_bpm, abs=0.01)
    assert summary["backends"]["separator"] == "spectral" and "drums" in summary["stems"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000


def _write(path, y, sr=SR, **kw):
    sf.write(path, y, sr, **kw)
    return path


def test_bad_inputs_give_clear_errors_and_write_nothing(tmp_path):
    cache = tmp_path / "cache"
    rng = np.random.default_rng(0)
    cases = {
        "missing": (tmp_path / "nope.wav", "no such file"),
        "empty": ((tmp_path / "empty.wav"), "empty"),
        "not audio": ((tmp_path / "notes.mp3"), "cannot decode"),
        "silent": (_write(tmp_path / "silent.wav", np.zeros(SR * 3, np.float32)), "silent"),
        "too short": (_write(tmp_path / "short.wav", rng.standard_normal(SR // 10).astype(np.float32) * 0.1), "at least"),
    }
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.mp3").write_text("this is not audio\n" * 100)
    good = _write(tmp_path / "good.flac", (rng.standard_normal(SR * 4) * 0.1).astype(np.float32))
    data = good.read_bytes()
    (tmp_path / "truncated.flac").write_bytes(data[: len(data) // 2])
    cases["truncated"] = (tmp_path / "truncated.flac", "truncated")
    (tmp_path / "corrupt.flac").write_bytes(data[:200] + bytes(rng.integers(0, 256, len(data) - 200, dtype=np.uint8)))
    cases["corrupt"] = (tmp_path / "corrupt.flac", "")
    for label, (path, phrase) in cases.items():
        with pytest.raises(AudioInputError) as info:
            analyze_file(path, cache_root=cache)
        assert str(path.name) in str(info.value) and phrase in str(info.value), label
    assert not (cache / "bundles").exists() or not any((cache / "bundles").iterdir())
    out = run_sonosteer("analyze", str(tmp_path / "notes.mp3"), "--cache", str(cache))
    assert out.returncode == 2 and "error:" in out.stderr and "Traceback" not in out.stderr


def test_half_second_multichannel_odd_rate_clip_gives_a_valid_bundle(tmp_path):
    rng = np.random.default_rng(1)
    sr = 11025
    y = (rng.standard_normal((sr // 2, 6)) * 0.2).astype(np.float32)  # 0.5 s, 6 channels
    path = _write(tmp_path / "clip.wav", y, sr)
    bundle = analyze_file(path, cache_root=tmp_path / "cache")
    assert bundle.duration_s == pytest.approx(0.5, abs=0.01)
    assert bundle.manifest["tempo_reliable"] is False and bundle.manifest["source"]["channels"] == 6
    assert load_bundle(bundle.path).channel("drums", "energy_smooth").shape == (bundle.n_frames,)


def test_interrupted_analysis_leaves_no_bundle(tmp_path, monkeypatch):
    from sonosteer.audio import bundle as bundle_mod

    rng = np.random.default_rng(2)
    path = _write(tmp_path / "noise.wav", (rng.standard_normal(SR * 2) * 0.1).astype(np.float32))
    cache = tmp_path / "cache"
    real_add, calls = bundle_mod.BundleWriter.add, []

    def add_then_interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 50:  # Ctrl-C in the middle of writing the arrays
            raise KeyboardInterrupt
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(bundle_mod.BundleWriter, "add", add_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        analyze_file(path, cache_root=cache)
    assert find_bundle(cache, analysis_key(path)[1]) is None
    assert list((cache / "bundles").iterdir()) == []
