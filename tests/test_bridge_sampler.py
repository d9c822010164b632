"""AudioSampler: one vectorised step gives exactly np.interp for every column."""

from __future__ import annotations

import numpy as np
import pytest
from bridge_fixtures import synthetic_bundle  # noqa: F401 - fixture

from sonosteer.bridge.sampler import AudioSampler, ColumnSource


def test_sampling_equals_np_interp_for_every_column_including_outside_the_track():
    rng = np.random.default_rng(0)
    rate = 86.13
    columns = {f"s/c{i}": rng.random(500).astype(np.float32) for i in range(30)}
    sampler = AudioSampler(rate, columns)
    times = np.arange(500) / rate
    for t in np.concatenate([rng.uniform(-1.0, 7.0, 300), times[:5], times[-3:]]):
        got = sampler.sample(float(t))
        expected = [np.interp(t, times, col.astype(np.float64)) for col in columns.values()]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_bad_columns_are_rejected():
    with pytest.raises(ValueError, match="same grid"):
        AudioSampler(100.0, {"a/x": np.zeros(10), "a/y": np.zeros(11)})
    with pytest.raises(ValueError, match="positive"):
        AudioSampler(0.0, {"a/x": np.zeros(10)})


def test_column_source_loads_bundle_channels_and_derived_columns(synthetic_bundle):
    source = ColumnSource(synthetic_bundle)
    source.register_derived(
        "double_energy",
        lambda src, group: 2 * np.asarray(src.bundle.channel(group, "energy_smooth")),
        needs="energy_smooth",
    )
    np.testing.assert_allclose(
        source.get("drums/double_energy"), 2 * synthetic_bundle.channel("drums", "energy_smooth")
    )
    assert source.has("bass/double_energy") and not source.has("nobody/double_energy")
    with pytest.raises(KeyError, match="no channel 'drums/colour'"):
        source.get("drums/colour")
