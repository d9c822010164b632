"""The reference SLERP the engine implements: norms, ends, the great circle, and frozen prompt chains."""

from __future__ import annotations

import numpy as np
import pytest

from sonosteer.bridge.frame_controls import PromptBlend
from sonosteer.bridge.slerp import resolve_prompt, slerp


def test_slerp_keeps_the_norm_and_hits_both_ends():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((77, 2048))
    b = rng.standard_normal((77, 2048))
    b *= np.linalg.norm(a, axis=-1, keepdims=True) / np.linalg.norm(b, axis=-1, keepdims=True)  # equal norms per token
    np.testing.assert_allclose(slerp(a, b, 0.0), a, atol=1e-10)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, atol=1e-10)
    for t in (0.1, 0.5, 0.9):
        np.testing.assert_allclose(np.linalg.norm(slerp(a, b, t), axis=-1), np.linalg.norm(a, axis=-1), rtol=1e-10)


def test_slerp_moves_at_constant_angular_speed_on_the_great_circle():
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.0, 2.0, 0.0])  # 90 degrees apart, norms 1 and 2
    for t in np.linspace(0, 1, 9):
        out = slerp(a, b, t)
        angle = np.arctan2(out[1], out[0])
        assert angle == pytest.approx(t * np.pi / 2)
        assert np.linalg.norm(out) == pytest.approx(1.0 + t)  # norms interpolate linearly
        assert out[2] == 0.0


def test_degenerate_inputs_fall_back_to_linear_interpolation():
    a = np.array([1.0, 1.0])
    np.testing.assert_allclose(slerp(a, 3 * a, 0.5), 2 * a)  # parallel
    np.testing.assert_allclose(slerp(np.zeros(2), a, 0.25), 0.25 * a)  # zero vector
    with pytest.raises(ValueError, match="equal shapes"):
        slerp(np.zeros(2), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        slerp(a, a, 1.5)


def test_frozen_blends_resolve_recursively_and_embed_each_text_once():
    vectors = {"forest": np.array([1.0, 0.0]), "city": np.array([0.0, 1.0]), "sea": np.array([-1.0, 0.0])}
    calls = []

    def embed(text):
        calls.append(text)
        return vectors[text]

    frozen = PromptBlend(PromptBlend("forest", "city", 0.5), "sea", 0.5)
    assert frozen.depth == 2 and hash(frozen) == hash(PromptBlend(PromptBlend("forest", "city", 0.5), "sea", 0.5))
    cache = {}
    out = resolve_prompt(frozen, embed, cache=cache)
    inner = slerp(vectors["forest"], vectors["city"], 0.5)  # 45 degrees
    np.testing.assert_allclose(out, slerp(inner, vectors["sea"], 0.5))
    assert np.arctan2(out[1], out[0]) == pytest.approx(np.pi / 4 + (np.pi - np.pi / 4) / 2)
    resolve_prompt(frozen, embed, cache=cache)
    assert sorted(calls) == ["city", "forest", "sea"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PromptBlend("a", "b", 1.2)
