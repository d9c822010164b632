"""Physics of the bridge against closed forms and invariants: springs, sustained models, blending."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sonosteer.bridge.blended import BlendedPhysics, blend_weights, model_weights
from sonosteer.bridge.spring import SPRING_PRESETS, Spring, damping_ratio
from sonosteer.bridge.sustained import (
    OSCILLATOR_COUPLING,
    OSCILLATOR_HZ,
    CoupledOscillator,
    PerlinDrift,
    PitchFollowing,
    pitch_position,
)


def _step_response(spring: Spring, dt: float, seconds: float, target: float = 1.0) -> np.ndarray:
    return np.array([spring.step(dt, target) for _ in range(int(round(seconds / dt)))])


def _closed_form_overshoot(zeta: float) -> float:
    return math.exp(-math.pi * zeta / math.sqrt(1.0 - zeta * zeta))


@pytest.mark.parametrize("name", list(SPRING_PRESETS))
@pytest.mark.parametrize("bpm", [60.0, 90.0, 120.0, 174.0])
def test_damping_ratio_is_preserved_under_bpm_scaling(name, bpm):
    preset = SPRING_PRESETS[name]
    k, c, m = preset.coefficients(bpm)
    assert damping_ratio(k, c, m) == pytest.approx(preset.zeta, rel=1e-12)
    # Natural frequency scales with sqrt(bpm / 120).
    assert math.sqrt(k / m) / (2 * math.pi) == pytest.approx(preset.natural_hz * math.sqrt(bpm / 120.0), rel=1e-12)


@pytest.mark.parametrize("name", ["drums", "vocals"])
@pytest.mark.parametrize("bpm", [70.0, 120.0, 174.0])
def test_underdamped_overshoot_matches_the_closed_form_step_response(name, bpm):
    zeta = SPRING_PRESETS[name].zeta
    expected = _closed_form_overshoot(zeta)  # 0.205 for drums, 0.046 for vocals
    fine = _step_response(Spring.from_preset(name, bpm), dt=1e-4, seconds=4.0)
    assert fine.max() - 1.0 == pytest.approx(expected, rel=0.01)
    # At the frame rate (with the integrator's sub-steps) the character is kept within 10 %.
    frames = _step_response(Spring.from_preset(name, bpm), dt=1 / 50, seconds=4.0)
    assert frames.max() - 1.0 == pytest.approx(expected, rel=0.12)
    # The peak time follows the tempo: t_peak = pi / omega_d, omega_d = omega_n sqrt(1 - zeta^2).
    omega_n = 2 * math.pi * SPRING_PRESETS[name].natural_hz * math.sqrt(bpm / 120.0)
    t_peak = math.pi / (omega_n * math.sqrt(1 - zeta * zeta))
    assert np.argmax(fine) * 1e-4 == pytest.approx(t_peak, rel=0.01)


@pytest.mark.parametrize("name", ["linear", "ambient"])
@pytest.mark.parametrize("bpm", [60.0, 120.0, 200.0])
@pytest.mark.parametrize("dt", [1e-3, 1 / 60, 1 / 25, 0.3])
def test_critically_and_over_damped_presets_never_overshoot(name, bpm, dt):
    up = _step_response(Spring.from_preset(name, bpm), dt, 8.0, target=1.0)
    assert up.max() <= 1.0 + 1e-12 and np.all(np.diff(up) >= -1e-12)
    down = Spring.from_preset(name, bpm, x=1.0)
    falling = np.array([down.step(dt, -0.5) for _ in range(int(8.0 / dt))])
    assert falling.min() >= -0.5 - 1e-12
    assert up[-1] == pytest.approx(1.0, abs=2e-3)


def test_long_frame_gaps_stay_stable():
    spring = Spring.from_preset("drums", 200.0)
    for dt in (0.5, 1.0, 2.0):
        x = spring.step(dt, 1.0)
        assert abs(x) < 2.0
    assert _step_response(spring, 0.25, 10.0)[-1] == pytest.approx(1.0, abs=1e-3)


def test_kick_tightens_damping_then_relaxes():
    spring = Spring.from_preset("vocals", x=0.0)
    spring.kick(3.0, tighten=2.0)
    assert spring.v == 3.0 and spring.extra_damping == 2.0
    _step_response(spring, 1 / 50, 2.0, target=0.0)
    assert spring.extra_damping < 2.0 * math.exp(-1.9 / 0.25)


def test_coupled_oscillators_never_settle_and_beat_at_their_normal_modes():
    osc = CoupledOscillator()
    dt, level, energy = 1 / 50, 0.6, 0.8
    out = np.array(
        [osc.step(dt, level, energy, 0.0, 0.0, 1.0 if k % 25 == 0 and k < 1500 else 0.0) for k in range(int(300 / dt))]
    )
    # Never settles: every 20 s window of the last four minutes keeps a wide swing.
    for start in range(60, 300, 20):
        window = out[int(start / dt) : int((start + 20) / dt)]
        assert window.max() - window.min() > 0.5 * level * 0.35
    # The motion is the pair's normal modes: eigenfrequencies of the coupled stiffness matrix.
    w1, w2 = (2 * math.pi * f for f in OSCILLATOR_HZ)
    kappa = OSCILLATOR_COUPLING * w1 * w1 * energy
    modes_hz = np.sqrt(np.linalg.eigvalsh(np.array([[w1 * w1 + kappa, -kappa], [-kappa, w2 * w2 + kappa]]))) / (
        2 * math.pi
    )
    tail = out[int(100 / dt) :] - out[int(100 / dt) :].mean()
    spectrum = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    freqs = np.fft.rfftfreq(len(tail), dt)
    peaks = sorted(freqs[np.argsort(spectrum)[-40:]])
    for mode in modes_hz:
        assert min(abs(p - mode) for p in peaks) < 0.01


def test_perlin_drift_keeps_moving_faster_with_energy_and_does_not_repeat():
    def run(energy):
        drift = PerlinDrift(seed=3)
        return np.array([drift.step(1 / 50, 0.5, energy, 0.0, 0.0, 0.0) for _ in range(50 * 60)])

    calm, busy = run(0.0), run(1.0)
    for series in (calm, busy):
        for start in range(0, 60, 15):
            window = series[start * 50 : (start + 15) * 50]
            assert window.max() - window.min() > 0.05
    # Energy is speed through noise space: more movement per second.
    assert np.abs(np.diff(busy)).mean() > 3 * np.abs(np.diff(calm)).mean()
    # Never repeating: no lag up to 40 s correlates like a period.
    x = busy - busy.mean()
    ac = np.correlate(x, x, mode="full")[len(x) - 1 :] / (x @ x)
    assert ac[250 : 50 * 40].max() < 0.9


def test_pitch_following_maps_log_pitch_and_holds_when_unsure():
    assert pitch_position(80.0) == 0.0 and pitch_position(2000.0) == 1.0
    assert pitch_position(math.sqrt(80.0 * 2000.0)) == pytest.approx(0.5)  # geometric mean is the middle
    follow = PitchFollowing()
    for _ in range(200):
        x = follow.step(1 / 50, 0.5, 0.5, 400.0, 0.9, 0.0)
    assert x == pytest.approx(pitch_position(400.0), abs=1e-3)
    for _ in range(200):  # unvoiced and low-confidence frames: hold, do not fall to 0
        x = follow.step(1 / 50, 0.5, 0.5, 0.0, 0.9, 0.0)
        x = follow.step(1 / 50, 0.5, 0.5, 90.0, 0.2, 0.0)
    assert x == pytest.approx(pitch_position(400.0), abs=1e-3)


def test_blend_weights_follow_the_classification():
    drums = blend_weights({"percussive": 0.9, "melody": 0.8, "harmony": 0.5, "texture": 0.5, "harmonic": 0.0})
    assert drums == (1.0, 0.0, 0.0, 0.0)  # harmonic models are gated off
    vocal = blend_weights({"percussive": 0.1, "melody": 0.8, "harmony": 0.2, "texture": 0.1, "harmonic": 0.9})
    raw = np.array([0.1, 0.72, 0.18, 0.09])
    np.testing.assert_allclose(vocal, raw / raw.sum())
    assert blend_weights(None) == (1.0, 0.0, 0.0, 0.0)
    assert model_weights("oscillator", {"percussive": 1.0}) == (0.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="unknown physics model"):
        model_weights("rubber", None)


def test_blended_physics_is_the_weighted_sum_of_its_models():
    weights = (0.4, 0.3, 0.2, 0.1)
    blended = BlendedPhysics(weights, "drums", bpm=128.0, seed=2)
    spring = Spring.from_preset("drums", 128.0)
    pitch, osc, drift = PitchFollowing(128.0), CoupledOscillator(phase=1.8), PerlinDrift(2)
    rng = np.random.default_rng(1)
    for _ in range(300):
        args = (1 / 50, rng.random(), rng.random(), 100 + 900 * rng.random(), rng.random(), float(rng.random() < 0.1))
        expected = weights[0] * spring.step(args[0], args[1]) + sum(
            w * model.step(*args) for w, model in zip(weights[1:], (pitch, osc, drift))
        )
        assert blended.step(*args) == pytest.approx(expected, abs=1e-12)
