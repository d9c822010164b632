"""The analysis bundle format: atomic writes, validation on load, memory-mapped channels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sonosteer.audio.bundle import BundleError, BundleWriter, bundle_key, find_bundle, load_bundle, pair_group
from sonosteer.audio.channels import CORE_CHANNELS, PAIR_CHANNELS


def _fields(n: int) -> dict:
    return {"duration_s": n / 100.0, "stems": {"drums": {"kind": "separated"}}, "tempo_bpm": 120.0}


def test_roundtrip_memory_mapped(tmp_path):
    key = bundle_key("ab" * 32, "1")
    env = np.linspace(0, 1, 500, dtype=np.float32)
    chroma = np.random.default_rng(0).random((500, 12)).astype(np.float32)
    with BundleWriter(tmp_path, key, n_frames=500, frame_rate_hz=100.0) as w:
        w.add("drums", "energy_smooth", env, CORE_CHANNELS["energy_smooth"])
        w.add("drums", "chroma", chroma, CORE_CHANNELS["chroma"])
        w.add(pair_group("drums", "bass"), "plv", env[::-1], PAIR_CHANNELS["plv"])
        bundle = w.commit(_fields(500))
    again = find_bundle(tmp_path, key)
    assert again is not None and again.key == key
    got = again.channel("drums", "energy_smooth")
    assert isinstance(got, np.memmap)
    np.testing.assert_array_equal(got, env)
    np.testing.assert_array_equal(again.channel("drums", "chroma"), chroma)
    np.testing.assert_array_equal(again.pair_channel("bass", "drums", "plv"), env[::-1])
    assert again.times_s[100] == pytest.approx(1.0)
    assert bundle.channel_spec("drums", "chroma")["shape"] == [500, 12]


def test_interrupted_write_leaves_nothing_loadable(tmp_path):
    key = bundle_key("cd" * 32, "1")
    with pytest.raises(KeyboardInterrupt):
        with BundleWriter(tmp_path, key, n_frames=10, frame_rate_hz=100.0) as w:
            w.add("drums", "flux", np.zeros(10), CORE_CHANNELS["flux"])
            raise KeyboardInterrupt
    assert find_bundle(tmp_path, key) is None
    assert list((tmp_path / "bundles").iterdir()) == []


def test_bad_channels_rejected(tmp_path):
    with BundleWriter(tmp_path, bundle_key("ef" * 32, "1"), n_frames=10, frame_rate_hz=100.0) as w:
        with pytest.raises(ValueError, match="frames"):
            w.add("drums", "flux", np.zeros(9), CORE_CHANNELS["flux"])
        with pytest.raises(ValueError, match="NaN"):
            w.add("drums", "flux", np.full(10, np.nan), CORE_CHANNELS["flux"])
        with pytest.raises(ValueError, match="invalid"):
            w.add("../x", "flux", np.zeros(10), CORE_CHANNELS["flux"])


def test_load_rejects_other_schema_and_missing_arrays(tmp_path):
    key = bundle_key("01" * 32, "1")
    with BundleWriter(tmp_path, key, n_frames=10, frame_rate_hz=100.0) as w:
        w.add("drums", "flux", np.zeros(10), CORE_CHANNELS["flux"])
        bundle = w.commit(_fields(10))
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    manifest["schema_version"] = 999
    (bundle.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="schema 999"):
        load_bundle(bundle.path)
    manifest["schema_version"] = 1
    (bundle.path / "manifest.json").write_text(json.dumps(manifest))
    (bundle.path / "arrays" / "drums" / "flux.npy").unlink()
    with pytest.raises(BundleError, match="drums/flux"):
        load_bundle(bundle.path)
    with pytest.raises(BundleError, match="not an analysis bundle"):
        load_bundle(tmp_path)
