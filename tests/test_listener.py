"""The listener's metrics (vqsynth/eval/listener.py) on signals whose answer is known."""

import numpy as np
import pytest

from vqsynth.eval import listener as L

SR = 44100


def tone(f0=220.0, seconds=2.0, harmonics=20, decay=0.7, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return sum(decay ** k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(harmonics) if f0 * (k + 1) < sr / 2) * 0.1


def test_a_clean_tone_has_a_high_harmonic_to_floor_ratio_and_added_noise_lowers_it_by_the_amount_added():
    rng = np.random.default_rng(0)
    x = tone()
    clean = L.harmonic_to_floor_db(x + 1e-6 * rng.standard_normal(x.size), SR, 220.0, 0.2, 1.8)
    a = L.harmonic_to_floor_db(x + 1e-4 * rng.standard_normal(x.size), SR, 220.0, 0.2, 1.8)
    b = L.harmonic_to_floor_db(x + 1e-3 * rng.standard_normal(x.size), SR, 220.0, 0.2, 1.8)
    assert clean > a + 30
    assert a - b == pytest.approx(20.0, abs=1.0)  # ten times the noise amplitude: 20 dB more floor


def test_the_floor_between_harmonics_is_the_noise_added():
    rng = np.random.default_rng(1)
    x = tone()
    quiet = L.floor_db(x + 1e-4 * rng.standard_normal(x.size), SR, 220.0, 0.2, 1.8)
    loud = L.floor_db(x + 1e-3 * rng.standard_normal(x.size), SR, 220.0, 0.2, 1.8)
    assert loud - quiet == pytest.approx(20.0, abs=1.0)


def test_power_above_a_frequency():
    t = np.arange(SR) / SR
    x = np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 10000 * t)  # 1 % of the power above 8 kHz
    assert L.power_above_db(x, SR, 8000.0) == pytest.approx(10 * np.log10(0.01 / 1.01), abs=0.1)
    assert L.power_above_db(np.sin(2 * np.pi * 1000 * t), SR, 8000.0) < -60


def test_a_fixed_line_is_found_at_every_pitch_and_harmonics_that_move_are_not():
    rng = np.random.default_rng(2)
    spectra = []
    for f0 in (130.8, 196.0, 261.6, 329.6):
        x = tone(f0, 1.0) + 3e-3 * rng.standard_normal(SR) + 0.01 * np.sin(2 * np.pi * 5600 * np.arange(SR) / SR)
        freqs, db = L.spectrum_db(x, SR)
        spectra.append(db)
    lines = L.spectral_lines(np.stack(spectra), freqs)
    assert lines and all(abs(f - 5600) < 30 for f in lines)
    assert L.spectral_lines(np.stack(spectra[:1] * 0 + [s - 0 for s in spectra]), freqs) == lines


@pytest.mark.parametrize("attack_s", [0.004, 0.02, 0.06])
def test_an_attack_of_known_length_is_measured_to_within_2_ms(attack_s):
    t = np.arange(SR) / SR
    env = np.clip(t / attack_s, 0, 1)  # linear ramp: half the peak amplitude at attack_s / 2
    x = env * np.sin(2 * np.pi * 440 * t)
    assert L.attack_ms(x, SR) == pytest.approx(1e3 * attack_s / 2, abs=2.0)


def test_an_onset_inside_a_held_tone_is_detected_and_a_steady_tone_has_none():
    x = tone(220.0, 3.0)
    assert L.onsets_per_s(x, SR, 0.5, 2.9) == 0.0
    t = np.arange(x.size) / SR
    bump = 1.0 + 3.0 * np.exp(-np.clip(t - 1.5, 0, None) / 0.05) * (t >= 1.5)  # a tremolo re-attack at 1.5 s
    found = L.onsets_per_s(x * bump, SR, 0.5, 2.9)
    assert found > 0


def test_identity_finds_each_query_among_its_own_programs_reference():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((16, 10))
    programs = np.arange(0, 128, 8)
    q = ref + 0.05 * rng.standard_normal(ref.shape)
    s = L.identity_scores(q, programs, ref, programs)
    assert s["in_top"] == 1.0 and s["family"] == 1.0 and s["most_shared"] == 1
    collapsed = L.identity_scores(np.repeat(ref[:1], 16, 0), programs, ref, programs)
    assert collapsed["most_shared"] == 16 and collapsed["distinct_nearest"] == 1


def test_timbre_features_tell_a_bright_tone_from_a_dull_one():
    a, b = L.timbre_features(tone(decay=0.95), SR), L.timbre_features(tone(decay=0.3), SR)
    assert a.shape == (54,) and np.linalg.norm(a - b) > 10
