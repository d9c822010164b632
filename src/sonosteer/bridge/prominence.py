"""ProminenceEngine: how much visual attention each block's stem gets, frame by frame.

    prominence = base x (1 + novelty + coupling) x call_response x activity_gate + surprise

clamped to [0, 1]. base comes from the rank (R1 1.0 ... R4 0.25, auto 0.05); novelty (up to
+0.30) rewards a stem whose novelty is rising; coupling (up to +0.50) rewards same-rank stems
locked together (lock index above 0.5); call_response (x0.6 .. x1.3) boosts the calling stem of
a same-rank pair and fades the answering one; the activity gate closes below -40 dB; surprise
promotes an auto-ranked stem to about 0.7 when a layer enters or its novelty spikes, decaying
over about 3 s.
"""

from __future__ import annotations

import math

NOVELTY_BOOST_MAX = 0.30
COUPLING_BONUS_MAX = 0.50
LOCK_THRESHOLD = 0.5
CALL_GAIN_MAX = 1.3
RESPONSE_GAIN_MIN = 0.6
GATE_OPEN_DB = -40.0
GATE_CLOSED_DB = -46.0
"""The gate is open at and above -40 dB and closes linearly to 0 at -46 dB."""
GATE_ATTACK_S = 0.03
SURPRISE_LEVEL = 0.7
SURPRISE_DECAY_S = 3.0
"""Time for a surprise promotion to fall to 5 % (exponential, tau = 3 s / ln 20)."""
SURPRISE_NOVELTY = 0.7
"""novelty_short above this (on the way up) counts as strong novelty."""
_SURPRISE_TAU_S = SURPRISE_DECAY_S / math.log(20.0)


def prominence(
    base: float, novelty: float, coupling: float, call_response: float, activity_gate: float, surprise: float
) -> float:
    """The prominence formula, clamped to [0, 1]."""
    p = base * (1.0 + novelty + coupling) * call_response * activity_gate + surprise
    return 0.0 if p < 0.0 else (1.0 if p > 1.0 else p)


def novelty_boost(rise: float) -> float:
    """+0 .. +0.30 from the stem's novelty rise (1 = a strong rise for this stem)."""
    return NOVELTY_BOOST_MAX * (0.0 if rise < 0.0 else (1.0 if rise > 1.0 else rise))


def coupling_bonus(lock_index: float) -> float:
    """+0 at a lock index of 0.5 (or below) rising linearly to +0.50 at 1.0."""
    x = (lock_index - LOCK_THRESHOLD) / (1.0 - LOCK_THRESHOLD)
    return COUPLING_BONUS_MAX * (0.0 if x < 0.0 else (1.0 if x > 1.0 else x))


def call_response_factor(call_response: float, calling: bool) -> float:
    """x1 .. x1.3 for the calling (louder) stem, x1 .. x0.6 for the answering one, by the pair's call-response."""
    cr = 0.0 if call_response < 0.0 else (1.0 if call_response > 1.0 else call_response)
    if calling:
        return 1.0 + (CALL_GAIN_MAX - 1.0) * cr
    return 1.0 - (1.0 - RESPONSE_GAIN_MIN) * cr


def activity_gate(rms_db: float) -> float:
    """1 at or above -40 dB, 0 at or below -46 dB, linear between."""
    x = (rms_db - GATE_CLOSED_DB) / (GATE_OPEN_DB - GATE_CLOSED_DB)
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


class ProminenceState:
    """The time-dependent parts of one block's prominence: the smoothed gate and the surprise."""

    __slots__ = ("gate", "surprise", "novelty_prev")

    def __init__(self) -> None:
        self.gate = 1.0
        self.surprise = 0.0
        self.novelty_prev = 0.0

    def reset(self, rms_db: float, novelty: float) -> None:
        self.gate = activity_gate(rms_db)
        self.surprise = 0.0
        self.novelty_prev = novelty

    def step_gate(self, dt: float, rms_db: float, release_s: float) -> float:
        """The activity gate, opening in GATE_ATTACK_S and closing with the block's silence release."""
        target = activity_gate(rms_db)
        if dt > 0.0:
            tau = GATE_ATTACK_S if target > self.gate else release_s
            self.gate += (target - self.gate) * (1.0 - math.exp(-dt / tau))
        return self.gate

    def step_surprise(self, dt: float, base: float, auto_rank: bool, layer_entered: bool, novelty: float) -> float:
        """Surprise promotion of an auto-ranked stem: jump to ~SURPRISE_LEVEL, decay over ~3 s."""
        if dt > 0.0 and self.surprise > 0.0:
            self.surprise *= math.exp(-dt / _SURPRISE_TAU_S)
        spike = novelty >= SURPRISE_NOVELTY > self.novelty_prev
        self.novelty_prev = novelty
        if auto_rank and (layer_entered or spike) and self.gate > 0.5:
            self.surprise = max(self.surprise, SURPRISE_LEVEL - base)
        return self.surprise


class ProminenceEngine:
    """Prominence of every block each frame, with the peer terms between same-rank blocks.

    `pairs` lists (i, j) for blocks of the same rank linked to different stems; `step` takes,
    per block, the stem's level, energy, novelty and novelty rise (None for blocks without a
    stem), and per pair the lock index and call-response of the two stems.
    """

    def __init__(self, ranks: list[str | None], stems: list[str | None], rank_weights: dict[str, float]):
        if len(ranks) != len(stems):
            raise ValueError("one rank per stem")
        self.bases = [rank_weights[r] if r is not None else 0.0 for r in ranks]
        self.auto = [r == "auto" for r in ranks]
        self.states = [ProminenceState() for _ in ranks]
        self.pairs = [
            (i, j)
            for i in range(len(ranks))
            for j in range(i + 1, len(ranks))
            if ranks[i] is not None
            and ranks[i] == ranks[j]
            and stems[i] is not None
            and stems[j] is not None
            and stems[i] != stems[j]
        ]

    def reset(self, rms_db: list[float | None], novelty: list[float | None]) -> None:
        for state, level, nov in zip(self.states, rms_db, novelty):
            if level is not None:
                state.reset(level, nov or 0.0)

    def step(
        self,
        dt: float,
        rms_db: list[float | None],
        energy: list[float],
        novelty: list[float],
        novelty_rise: list[float],
        layer_entered: list[bool],
        release_s: list[float],
        pair_lock: list[float],
        pair_call_response: list[float],
        frozen: list[bool] | None = None,
    ) -> list[float]:
        """Prominence per block (0 for blocks without a stem). Frozen blocks keep their state."""
        n = len(self.bases)
        coupling = [0.0] * n
        call = [1.0] * n
        for (i, j), lock, cr in zip(self.pairs, pair_lock, pair_call_response):
            bonus = coupling_bonus(lock)
            if bonus > coupling[i]:
                coupling[i] = bonus
            if bonus > coupling[j]:
                coupling[j] = bonus
            i_calls = energy[i] >= energy[j]
            fi = call_response_factor(cr, i_calls)
            fj = call_response_factor(cr, not i_calls)
            # With several peers, the strongest conversation decides (largest departure from 1).
            if abs(fi - 1.0) > abs(call[i] - 1.0):
                call[i] = fi
            if abs(fj - 1.0) > abs(call[j] - 1.0):
                call[j] = fj
        out = [0.0] * n
        for i in range(n):
            level = rms_db[i]
            if level is None:
                continue
            state = self.states[i]
            if frozen is not None and frozen[i]:
                dt_i = 0.0
            else:
                dt_i = dt
            gate = state.step_gate(dt_i, level, release_s[i])
            surprise = state.step_surprise(dt_i, self.bases[i], self.auto[i], layer_entered[i], novelty[i])
            out[i] = prominence(self.bases[i], novelty_boost(novelty_rise[i]), coupling[i], call[i], gate, surprise)
        return out
