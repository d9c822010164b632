"""DSP building blocks against closed forms and reference computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi

from sonosteer.audio.coupling import analytic_phase, couple, phase_locking_value
from sonosteer.audio.crossover import lr4_bands, lr4_split, virtual_stems
from sonosteer.audio.envelope import follow_envelope
from sonosteer.audio.medians import hpss_masks, running_median
from sonosteer.audio.pitch import normalize_pitch
from sonosteer.audio.postprocess import layer_entries, tonal_distance, two_window_novelty
from sonosteer.audio.roughness import roughness_from_spectrum

SR = 22050


def test_envelope_attack_and_release_follow_the_closed_form():
    rate = 1000.0
    step = np.concatenate([np.ones(500), np.zeros(1000)]).astype(np.float32)
    env, _ = follow_envelope(step, rate, attack_ms=10.0, release_ms=100.0)
    t_ms = np.arange(1, 501)  # sample i holds the state after i+1 updates
    np.testing.assert_allclose(env[:500], 1 - np.exp(-t_ms / 10.0), atol=1e-4)
    peak = env[499]
    np.testing.assert_allclose(env[500:], peak * np.exp(-np.arange(1, 1001) / 100.0), atol=1e-4)
    # 63 % of the way up after one attack constant, down to 37 % after one release constant.
    assert env[9] == pytest.approx(1 - math.exp(-1), abs=1e-3)
    assert env[599] == pytest.approx(peak * math.exp(-1), abs=1e-3)


def test_envelope_state_carries_across_blocks():
    x = np.random.default_rng(1).random(3000).astype(np.float32)
    whole, _ = follow_envelope(x, 1050.0, 2.0, 100.0)
    a, state = follow_envelope(x[:1234], 1050.0, 2.0, 100.0)
    b, _ = follow_envelope(x[1234:], 1050.0, 2.0, 100.0, state)
    np.testing.assert_allclose(np.concatenate([a, b]), whole, rtol=1e-6)


def test_lr4_bands_sum_back_to_the_input_and_separate_frequencies():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR * 3).astype(np.float32)
    bands = lr4_bands(x, (150.0, 3000.0), SR)
    np.testing.assert_allclose(sum(bands), x, atol=1e-5)
    t = np.arange(SR * 2) / SR
    low_tone, high_tone = np.sin(2 * np.pi * 50 * t), np.sin(2 * np.pi * 8000 * t)
    lo, hi = lr4_split(low_tone + high_tone, 1000.0, SR)
    mid = slice(SR // 2, -SR // 2)
    assert np.corrcoef(lo[mid], low_tone[mid])[0, 1] > 0.999
    assert np.corrcoef(hi[mid], high_tone[mid])[0, 1] > 0.999
    # At the crossover itself each LR-4 band passes -6 dB (half amplitude).
    tone = np.sin(2 * np.pi * 1000 * t)
    lo, _ = lr4_split(tone, 1000.0, SR)
    assert np.std(lo[mid]) / np.std(tone[mid]) == pytest.approx(0.5, abs=0.01)


def test_virtual_stems_are_the_named_bands():
    x = np.random.default_rng(2).standard_normal(SR).astype(np.float32)
    out = virtual_stems({"drums": x, "other": x}, SR)
    assert set(out) == {"drums_low", "drums_mid", "drums_high", "other_mid", "other_high"}
    np.testing.assert_allclose(out["drums_low"] + out["drums_mid"] + out["drums_high"], x, atol=1e-5)


def test_running_median_matches_scipy():
    x = np.random.default_rng(3).random((60, 80)).astype(np.float32)
    for size, axis, ndsize in ((7, 1, (1, 7)), (5, 0, (5, 1))):
        np.testing.assert_allclose(running_median(x, size, axis), ndi.median_filter(x, size=ndsize, mode="reflect"))


def test_hpss_masks_split_a_tone_from_clicks():
    mag = np.zeros((200, 200), np.float32)
    mag[50, :] = 1.0  # a steady tone: one bin, every frame
    mag[:, 100] = 1.0  # a click: every bin, one frame
    h, p = hpss_masks(mag)
    np.testing.assert_allclose(h + p, 1.0)
    assert h[50, 20] > 0.9 and p[150, 100] > 0.9


def _harmonic_tone(f0: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 7)).astype(np.float32)


def test_roughness_orders_consonant_below_dissonant_intervals():
    import librosa

    freqs = librosa.fft_frequencies(sr=SR, n_fft=2048)

    def rough(ratio: float) -> float:
        y = _harmonic_tone(220.0) + _harmonic_tone(220.0 * ratio)
        mag = np.abs(librosa.stft(y, n_fft=2048, hop_length=441))
        return float(roughness_from_spectrum(mag, freqs)[5:-5].mean())

    octave, fifth, fourth, minor_second = rough(2.0), rough(1.5), rough(4 / 3), rough(2 ** (1 / 12))
    assert octave < fifth < fourth < minor_second
    assert minor_second > 3 * fifth


def test_plv_of_identical_vs_independent_signals():
    fr = 50.0
    rng = np.random.default_rng(4)
    t = np.arange(3000) / fr
    beat = 0.5 + 0.5 * np.cos(2 * np.pi * 2.0 * t)  # 120 BPM pulse
    phase = analytic_phase(beat, fr)
    same = phase_locking_value(phase, phase, 100)
    assert np.allclose(same, 1.0)
    a, b = rng.random(3000), rng.random(3000)
    indep = phase_locking_value(analytic_phase(a, fr), analytic_phase(b, fr), 100)
    assert indep[200:-200].mean() < 0.35
    shifted = phase_locking_value(phase, analytic_phase(np.roll(beat, 7), fr), 100)
    assert shifted[200:-200].mean() > 0.95  # a constant lag is still locked


def test_couple_locked_pair_scores_high_and_call_response_alternation():
    fr, n = 50.0, 3000
    t = np.arange(n) / fr
    env = (0.5 + 0.5 * np.cos(2 * np.pi * 2.0 * t)).astype(np.float32)
    onsets = (np.arange(n) % 25 == 0).astype(np.float32)
    on = np.ones(n, bool)
    locked = couple(env, env, onsets, onsets, on, on, fr, 0.5)
    assert locked["lock_index"][200:-200].min() > 0.95
    assert locked["call_response"].max() == 0.0
    first_half = np.arange(n) < n // 2
    alt = couple(env, env, onsets, onsets, first_half, ~first_half, fr, 0.5)
    assert alt["call_response"][200:-200].min() > 0.99
    assert alt["lock_index"][200:-200].max() < 0.5


def test_pitch_normalization_holds_through_unvoiced_frames():
    pitch = np.array([0, 80, 2000, 0, 0, 400], np.float32)
    conf = np.array([0, 1, 1, 0, 0.2, 1], np.float32)
    norm = normalize_pitch(pitch, conf)
    expected_400 = math.log2(400 / 80) / math.log2(2000 / 80)
    np.testing.assert_allclose(norm, [0, 0, 1, 1, 1, expected_400], atol=1e-6)


def test_tonal_distance_is_zero_at_home_and_high_far_away():
    home = np.tile(np.eye(12)[[0, 4, 7]].sum(axis=0), (90, 1))
    away = np.tile(np.eye(12)[[1, 6, 10]].sum(axis=0), (10, 1))
    from scipy.spatial.distance import jensenshannon

    td = tonal_distance(np.vstack([home, away]).astype(np.float32))
    mean = 0.9 * home[0] / 3 + 0.1 * away[0] / 3
    assert td[0] == pytest.approx(jensenshannon(home[0] / 3, mean, base=2) ** 2, abs=1e-5)
    assert td[95] == pytest.approx(jensenshannon(away[0] / 3, mean, base=2) ** 2, abs=1e-5)
    assert td[0] < 0.1 < 0.5 < td[95] <= 1.0


def test_novelty_peaks_at_a_change_and_layer_entry_is_debounced():
    feats = np.vstack([np.zeros((300, 4)), np.ones((300, 4))])
    nov = two_window_novelty(feats, 50)
    assert abs(int(np.argmax(nov)) - 300) <= 1
    fr = 50.0
    energy = np.zeros(500, np.float32)
    energy[150:] = 1.0
    energy[160:170] = 0.0  # a short dip must not count as a second entry
    entries = layer_entries(energy, np.where(energy > 0, -10.0, -90.0).astype(np.float32), np.zeros(500, np.float32),
                            np.zeros(500, np.float32), fr)
    assert np.flatnonzero(entries).tolist() == [150]
