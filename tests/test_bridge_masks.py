"""Spatial masks: presets light the documented regions, pitch-aligned masks follow the pitch."""

from __future__ import annotations

import numpy as np
import pytest

from sonosteer.bridge.masks import drawn_mask, pitch_mask_index, pitch_masks, preset_mask


def _vertical_centre(mask: np.ndarray) -> float:
    """Centre of mass in image heights, 0 = top, 1 = bottom."""
    rows = mask.sum(axis=1)
    return float(((np.arange(16) + 0.5) / 16 * rows).sum() / rows.sum())


def test_presets_light_their_regions():
    assert preset_mask("floor")[8:].min() == 1.0 and preset_mask("floor")[:8].max() == 0.0
    assert preset_mask("ceiling")[:8].min() == 1.0 and preset_mask("ceiling")[8:].max() == 0.0
    centre = preset_mask("center")
    assert centre[4:12].min() == 1.0 and centre[:4].max() == 0.0 and centre[12:].max() == 0.0
    assert preset_mask("fill").min() == 1.0 and preset_mask("clear").max() == 0.0
    with pytest.raises(ValueError, match="unknown mask preset 'sky'"):
        preset_mask("sky")
    with pytest.raises(ValueError):
        preset_mask("fill")[0, 0] = 0.5  # shared with the engine: read-only


def test_drawn_masks_are_checked():
    rows = [[c / 15 for c in range(16)] for _ in range(16)]
    np.testing.assert_allclose(drawn_mask(rows)[3], np.arange(16) / 15, rtol=1e-6)
    with pytest.raises(ValueError, match="16x16"):
        drawn_mask(rows[:4])


def test_pitch_masks_are_gaussians_of_the_given_spread_from_bottom_to_top():
    masks = pitch_masks(0.25)
    assert len(masks) == 12
    y = (np.arange(16) + 0.5) / 16
    for k, mask in enumerate(masks):
        centre = 1.0 - k / 11
        np.testing.assert_allclose(mask[:, 5], np.exp(-0.5 * ((y - centre) / 0.25) ** 2), rtol=1e-6)
        assert np.all(mask == mask[:, :1])  # horizontal bands
    assert _vertical_centre(masks[0]) > 0.6 and _vertical_centre(masks[11]) < 0.4


def test_pitch_aligned_index_follows_a_rising_pitch():
    masks = pitch_masks()
    rising = np.linspace(0.0, 1.0, 200)
    index = np.array([pitch_mask_index(p) for p in rising])
    assert index[0] == 0 and index[-1] == 11
    assert np.all(np.diff(index) >= 0) and set(index) == set(range(12))
    centres = [_vertical_centre(masks[i]) for i in index]
    assert np.all(np.diff(centres) <= 1e-12)  # the lit band only moves up the image
    assert pitch_mask_index(-0.5) == 0 and pitch_mask_index(3.0) == 11
