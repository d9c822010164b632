"""Fixtures of the bridge tests: one synthetic analysis bundle with known signals per session."""

from __future__ import annotations

import pytest

from sonosteer.bridge.synthetic import write_synthetic_bundle


@pytest.fixture(scope="session")
def synthetic_bundle(tmp_path_factory):
    """A 60 s, 100 Hz, 120 BPM synthetic groove (see sonosteer.bridge.synthetic)."""
    return write_synthetic_bundle(
        tmp_path_factory.mktemp("bridge-bundle"), duration_s=60.0, frame_rate_hz=100.0, tempo_bpm=120.0
    )


def write_constant_bundle(
    root, stems: dict[str, dict[str, float]], duration_s: float = 20.0, rate: float = 50.0, classification=None
):
    """A bundle whose channels are constants (defaults overridden per stem), for hand-computed outputs."""
    import numpy as np

    from sonosteer.audio.bundle import BundleWriter, bundle_key
    from sonosteer.audio.channels import CORE_CHANNELS, GLOBAL_CHANNELS

    defaults = {name: 0.0 for name in CORE_CHANNELS}
    defaults.update(
        rms_db=-10.0, energy_smooth=0.5, envelope=0.5, flash=0.5, sustain=0.5, brightness=0.5, pitch_normalized=0.5
    )
    n = int(duration_s * rate)
    stems = {**stems, "global": stems.get("global", {})}
    with BundleWriter(root, bundle_key("c0" * 32, "const"), n, rate) as w:
        for stem, values in stems.items():
            for name, spec in CORE_CHANNELS.items():
                value = values.get(name, defaults[name])
                array = np.full((n, spec.width), value) if spec.width > 1 else np.full(n, value)
                w.add(stem, name, array, spec)
        w.add("global", "tension", np.full(n, stems["global"].get("tension", 0.5)), GLOBAL_CHANNELS["tension"])
        w.add("global", "beat_phase", np.zeros(n), GLOBAL_CHANNELS["beat_phase"])
        info = {s: {"kind": "separated", "classification": classification or {"percussive": 1.0}} for s in stems}
        return w.commit(
            {
                "duration_s": duration_s,
                "tempo_bpm": 120.0,
                "beats_s": list(np.arange(0, duration_s, 0.5)),
                "stems": info,
            }
        )
