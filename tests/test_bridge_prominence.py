"""Prominence: the formula on hand-computed cases, and the engine's peer terms, gate and surprise."""

from __future__ import annotations

import math

import pytest

from sonosteer.bridge.prominence import (
    ProminenceEngine,
    activity_gate,
    call_response_factor,
    coupling_bonus,
    novelty_boost,
    prominence,
)
from sonosteer.bridge.settings import RANK_WEIGHTS


@pytest.mark.parametrize(
    "args, expected",
    [
        # base x (1 + novelty + coupling) x call_response x gate + surprise
        ((1.0, 0.0, 0.0, 1.0, 1.0, 0.0), 1.0),
        ((0.65, 0.0, 0.0, 1.0, 1.0, 0.0), 0.65),
        ((0.40, 0.30, 0.0, 1.0, 1.0, 0.0), 0.52),  # 0.4 * 1.3
        ((0.25, 0.15, 0.25, 1.3, 1.0, 0.0), 0.455),  # 0.25 * 1.4 * 1.3
        ((0.65, 0.1, 0.5, 0.6, 0.5, 0.0), 0.312),  # 0.65 * 1.6 * 0.6 * 0.5
        ((0.05, 0.0, 0.0, 1.0, 1.0, 0.65), 0.70),  # surprise promotion of an auto stem
        ((1.0, 0.3, 0.5, 1.3, 1.0, 0.0), 1.0),  # 2.34 clamped to 1
        ((0.40, 0.0, 0.0, 1.0, 0.0, 0.0), 0.0),  # gate closed
    ],
)
def test_prominence_formula_on_hand_computed_cases(args, expected):
    assert prominence(*args) == pytest.approx(expected, abs=1e-12)


def test_terms_span_their_specified_ranges():
    assert (
        novelty_boost(0.0) == 0.0
        and novelty_boost(0.5) == pytest.approx(0.15)
        and novelty_boost(7.0) == pytest.approx(0.30)
    )
    assert (
        coupling_bonus(0.5) == 0.0
        and coupling_bonus(0.75) == pytest.approx(0.25)
        and coupling_bonus(1.0) == pytest.approx(0.5)
    )
    assert coupling_bonus(0.3) == 0.0
    assert call_response_factor(1.0, calling=True) == pytest.approx(1.3)
    assert call_response_factor(1.0, calling=False) == pytest.approx(0.6)
    assert call_response_factor(0.0, calling=False) == 1.0
    assert activity_gate(-20.0) == 1.0 and activity_gate(-40.0) == 1.0
    assert activity_gate(-43.0) == pytest.approx(0.5) and activity_gate(-60.0) == 0.0


def _step(engine, dt, rms, energy, lock=(), cr=(), novelty=None, entered=None):
    n = len(rms)
    return engine.step(
        dt,
        list(rms),
        list(energy),
        novelty or [0.0] * n,
        [0.0] * n,
        entered or [False] * n,
        [1.5] * n,
        list(lock),
        list(cr),
    )


def test_same_rank_locked_stems_reinforce_and_the_caller_leads():
    engine = ProminenceEngine(["R3", "R3", "R2", "R2"], ["drums", "bass", "vocals", "vocals"], RANK_WEIGHTS)
    assert engine.pairs == [(0, 1)]  # only same-rank pairs of different stems
    out = _step(engine, 0.02, [-10] * 4, [0.9, 0.2, 0.5, 0.5], lock=[0.9], cr=[0.5])
    # drums calls: 0.40 * (1 + 0.4) * 1.15; bass answers: 0.40 * 1.4 * 0.8; the vocals are untouched.
    assert out == pytest.approx([0.644, 0.448, 0.65, 0.65])
    # Loosely coupled (lock 0.4): no bonus, and a call-response of 0 changes nothing.
    assert _step(engine, 0.02, [-10] * 4, [0.9, 0.2, 0.5, 0.5], lock=[0.4], cr=[0.0]) == pytest.approx(
        [0.4, 0.4, 0.65, 0.65]
    )


def test_silent_stems_fade_with_their_release_and_return_fast():
    engine = ProminenceEngine(["R1"], ["vocals"], RANK_WEIGHTS)
    engine.reset([-10.0], [0.0])
    values = [_step(engine, 0.02, [-80.0], [0.0])[0] for _ in range(75)]  # 1.5 s of silence
    assert values[-1] == pytest.approx(math.exp(-1.0), rel=0.02)  # one time constant of 1.5 s
    back = [_step(engine, 0.02, [-10.0], [0.5])[0] for _ in range(10)]  # 0.2 s
    assert back[-1] > 0.99


def test_auto_stem_surprise_jumps_to_about_0_7_and_decays_over_3_s():
    engine = ProminenceEngine(["auto", "R1"], ["other_high", "drums"], RANK_WEIGHTS)
    engine.reset([-10.0, -10.0], [0.0, 0.0])
    quiet = _step(engine, 0.02, [-10, -10], [0.3, 0.3])
    assert quiet[0] == pytest.approx(0.05)
    jump = _step(engine, 0.02, [-10, -10], [0.3, 0.3], entered=[True, True])
    assert jump[0] == pytest.approx(0.70) and jump[1] == pytest.approx(1.0)  # ranked stems are not promoted
    for _ in range(150):  # 3 s
        later = _step(engine, 0.02, [-10, -10], [0.3, 0.3])
    assert later[0] == pytest.approx(0.05 + 0.65 * 0.05, abs=1e-3)
    # Strong novelty (rising through 0.7) promotes too; staying high does not re-trigger.
    spike = _step(engine, 0.02, [-10, -10], [0.3, 0.3], novelty=[0.8, 0.0])
    assert spike[0] == pytest.approx(0.70)
    for _ in range(50):
        held = _step(engine, 0.02, [-10, -10], [0.3, 0.3], novelty=[0.8, 0.0])
    assert held[0] < 0.5
