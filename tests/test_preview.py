"""The preview renderer draws the controls truthfully: masks, signed strength, prompt blend, noise walk."""

from __future__ import annotations

import numpy as np
import pytest

from sonosteer.blocks import SAE_N_FEATURES
from sonosteer.bridge.frame_controls import FrameControls
from sonosteer.engine.preview import (
    BACKGROUND_LEVEL,
    BLOCK_COLORS_RGB,
    PreviewRenderer,
    prompt_color,
    smooth_upsample_matrix,
)
from sonosteer.engine.renderer import Renderer

H = W = 256


def controls(**kw) -> FrameControls:
    fc = FrameControls(prompt_a="a neon city", prompt_b="a foggy forest", **kw)
    for bc in fc.blocks:
        bc.strength = 0.0
    return fc


def render(r: PreviewRenderer, fc: FrameControls) -> np.ndarray:
    r.apply(fc)
    return r.render().astype(np.float64)


@pytest.fixture
def renderer():
    r = PreviewRenderer(H, W)
    r.warmup()
    yield r
    r.close()


# The overlay text sits at the top-left, top-right and bottom; this region is free of it.
CLEAN = (slice(60, 150), slice(40, 210))


def test_implements_the_renderer_protocol(renderer):
    assert isinstance(renderer, Renderer)
    assert renderer.kind == "preview" and "preview" in renderer.label
    frame = renderer.render()
    assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
    assert set(renderer.features()) == {"down.2.1", "mid.0", "up.0.0", "up.0.1"}
    assert all(info.n_features == SAE_N_FEATURES for info in renderer.features().values())
    assert renderer.last_timings_ms["render"] > 0


def test_returned_frames_survive_ring_size_minus_one_renders(renderer):
    fc = controls()
    renderer.apply(fc)
    first = renderer.render()
    kept = first.copy()
    for i in range(renderer.ring_size - 1):
        fc.blocks[0].strength = 30.0 * (i + 1)
        renderer.apply(fc)
        renderer.render()
    np.testing.assert_array_equal(first, kept)


def test_smooth_upsampling_preserves_constants_and_interpolates_monotonically():
    up = smooth_upsample_matrix(64, 16)
    np.testing.assert_allclose(up.sum(axis=1), 1.0, atol=1e-6)
    step = (up @ np.repeat([0.0, 1.0], 8)).astype(np.float64)
    assert np.all(np.diff(step) >= -1e-7) and step[0] == 0.0 and step[-1] == 1.0


def test_block_colour_stays_inside_its_mask_and_shows_the_sign(renderer):
    base = controls()
    mask = np.zeros((16, 16), np.float32)
    mask[:, 8:] = 1.0  # right half
    lit = controls()
    lit.blocks[0].mask = mask
    lit.blocks[0].strength = 30.0
    neg = controls()
    neg.blocks[0].mask = mask
    neg.blocks[0].strength = -30.0
    img0, img_pos, img_neg = render(renderer, base), render(renderer, lit), render(renderer, neg)
    rows = CLEAN[0]
    # Left of the mask's smooth edge (cells 0..6 -> pixels < 112): untouched.
    np.testing.assert_array_equal(img_pos[rows, :100], img0[rows, :100])
    np.testing.assert_array_equal(img_neg[rows, :100], img0[rows, :100])
    # Inside: the image moves towards the block's colour; negative strength lays hard stripes of
    # the colour and near-black, so both show up side by side.
    inside = (rows, slice(150, 210))
    color = np.array(BLOCK_COLORS_RGB[0])
    dist0 = np.linalg.norm(img0[inside] - color, axis=-1).mean()
    dist_pos = np.linalg.norm(img_pos[inside] - color, axis=-1).mean()
    assert dist_pos < 0.6 * dist0, (dist0, dist_pos)
    dist_neg = np.linalg.norm(img_neg[inside] - color, axis=-1)
    dark = img_neg[inside].sum(axis=-1) < 0.5 * img0[inside].sum(axis=-1)
    assert (dist_neg < 0.6 * dist0).mean() > 0.3 and dark.mean() > 0.3


def test_opacity_grows_with_strength(renderer):
    color = np.array(BLOCK_COLORS_RGB[2])
    distances = []
    for s in (0.0, 5.0, 15.0, 40.0):
        fc = controls()
        fc.blocks[2].strength = s
        distances.append(np.linalg.norm(render(renderer, fc)[CLEAN] - color, axis=-1).mean())
    assert np.all(np.diff(distances) < 0), distances


def test_each_block_has_its_own_colour(renderer):
    means = []
    for index in range(4):
        fc = controls()
        fc.blocks[index].strength = 60.0
        means.append(render(renderer, fc)[CLEAN].reshape(-1, 3).mean(axis=0))
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(means[i] - means[j]).max() > 40, (i, j, means[i], means[j])


def test_feature_id_changes_the_texture_not_the_region(renderer):
    mask = np.zeros((16, 16), np.float32)
    mask[:, 8:] = 1.0
    a, b = controls(), controls()
    for fc, fid in ((a, 10), (b, 4000)):
        fc.blocks[1].mask = mask
        fc.blocks[1].strength = 30.0
        fc.blocks[1].feature_id = fid
    img_a, img_b = render(renderer, a), render(renderer, b)
    rows = CLEAN[0]
    np.testing.assert_array_equal(img_a[rows, :100], img_b[rows, :100])
    assert np.abs(img_a[rows, 150:210] - img_b[rows, 150:210]).mean() > 3.0


def test_prompt_blend_moves_the_background_from_a_to_b(renderer):
    def background_hue(blend: float) -> np.ndarray:
        img = render(renderer, controls(prompt_blend=blend))[CLEAN].reshape(-1, 3)
        return img.mean(axis=0) / img.mean()

    def expected(prompt: str) -> np.ndarray:
        col = prompt_color(prompt) * BACKGROUND_LEVEL
        return col / col.mean()

    np.testing.assert_allclose(background_hue(0.0), expected("a neon city"), atol=0.03)
    np.testing.assert_allclose(background_hue(1.0), expected("a foggy forest"), atol=0.03)
    assert not np.allclose(expected("a neon city"), expected("a foggy forest"), atol=0.1)
    # Halfway, the left side still shows A and the right side B.
    img = render(renderer, controls(prompt_blend=0.5))
    left = img[60:150, 5:30].reshape(-1, 3).mean(axis=0)
    right = img[60:150, W - 30 : W - 5].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(left / left.mean(), expected("a neon city"), atol=0.05)
    np.testing.assert_allclose(right / right.mean(), expected("a foggy forest"), atol=0.05)


def test_noise_is_the_circular_walk_between_the_two_seeds(renderer):
    def img(angle: float, seed_a: int, seed_b: int) -> np.ndarray:
        return render(renderer, controls(noise_angle_rad=angle, seed_a=seed_a, seed_b=seed_b))[CLEAN]

    # At angle 0 only seed A matters, at pi/2 only seed B; a full turn comes back.
    np.testing.assert_array_equal(img(0.0, 1, 2), img(0.0, 1, 99))
    assert np.abs(img(0.0, 1, 2) - img(0.0, 7, 2)).mean() > 1.0
    np.testing.assert_array_equal(img(np.pi / 2, 1, 2), img(np.pi / 2, 55, 2))
    assert np.abs(img(np.pi / 2, 1, 2) - img(np.pi / 2, 1, 3)).mean() > 1.0
    np.testing.assert_allclose(img(0.3, 1, 2), img(0.3 + 2 * np.pi, 1, 2), atol=1.0)
    assert np.abs(img(0.3, 1, 2) - img(1.3, 1, 2)).mean() > 1.0


def test_preview_label_is_drawn_in_the_corner(renderer):
    plain = render(renderer, controls())
    # White glyph pixels of "PREVIEW" in the top-left corner.
    corner = plain[4:30, 4:140]
    assert (corner.min(axis=-1) == 255).sum() > 100


def test_bad_controls_are_refused_with_clear_errors(renderer):
    fc = controls()
    fc.blocks[0].feature_id = SAE_N_FEATURES
    with pytest.raises(ValueError, match="feature id"):
        renderer.apply(fc)
    fc = controls(prompt_blend=1.5)
    with pytest.raises(ValueError, match="prompt_blend"):
        renderer.apply(fc)
    with pytest.raises(ValueError, match="at least"):
        PreviewRenderer(8, 8)
    renderer.close()
    with pytest.raises(RuntimeError, match="closed"):
        renderer.render()


def test_a_frozen_prompt_blend_shows_the_mix_of_its_ends(renderer):
    from sonosteer.bridge.frame_controls import PromptBlend

    frozen = PromptBlend("a neon city", "a foggy forest", 0.5)
    fc = FrameControls(prompt_a=frozen, prompt_b="the deep sea")
    for bc in fc.blocks:
        bc.strength = 0.0
    img = render(renderer, fc)[CLEAN].reshape(-1, 3)
    mix = (prompt_color("a neon city") + prompt_color("a foggy forest")) / 2
    np.testing.assert_allclose(img.mean(axis=0) / img.mean(), mix / mix.mean(), atol=0.03)
