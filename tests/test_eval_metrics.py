"""Each metric on inputs where the answer is known."""

import numpy as np

from vqsynth.data.pitch import yin
from vqsynth.data.timbre import attributes
from vqsynth.eval import metrics as M

SR = 16000


def test_real_data_against_itself_scores_near_zero_distance():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 16)), rng.standard_normal((300, 16))
    shifted = rng.standard_normal((300, 16)) + 1.0
    assert abs(M.kid(a, b)) < 0.01 and M.kid(a, shifted) > 10 * abs(M.kid(a, b))
    assert M.frechet_distance(a, b) < 1.0 < M.frechet_distance(a, shifted)


def test_inception_score_is_high_for_confident_diverse_and_low_for_uniform():
    confident = np.eye(10)[np.arange(200) % 10] * 0.99 + 0.001
    uniform = np.full((200, 10), 0.1)
    assert M.inception_score(confident) > 9.0
    assert M.inception_score(uniform) < 1.01


def test_a_signal_at_a_known_pitch_scores_full_accuracy():
    t = np.arange(SR) / SR
    f = 261.63
    x = 0.5 * np.sin(2 * np.pi * f * t) + 0.2 * np.sin(2 * np.pi * 2 * f * t)
    f0, voiced = yin(x, SR)
    acc, med = M.pitch_accuracy(f0, voiced, f)
    assert acc == 1.0 and med < 5
    wrong, _ = M.pitch_accuracy(f0, voiced, f * 2 ** (1 / 12))
    assert wrong == 0.0


def test_pyin_tracks_a_known_pitch_and_an_octave_error_misses():
    t = np.arange(SR) / SR
    f = 110.0
    x = 0.5 * np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t)
    f0, voiced = M.track_pitch(x, SR, f)
    assert M.pitch_accuracy(f0, voiced, f)[0] > 0.95
    f0, voiced = M.track_pitch(x, SR, 2 * f)  # asked for the octave above: the tracker must not agree
    assert M.pitch_accuracy(f0, voiced, 2 * f)[0] < 0.2


def test_white_noise_is_unvoiced_and_brighter_signal_measures_brighter():
    rng = np.random.default_rng(1)
    f0, voiced = yin(rng.standard_normal(SR) * 0.3, SR)
    assert voiced.mean() < 0.2
    t = np.arange(SR) / SR
    dull = np.sin(2 * np.pi * 220 * t)
    bright = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 30))
    assert attributes(bright, SR)["brightness"] > attributes(dull, SR)["brightness"]


def test_coherence_accuracies_and_click_detector():
    assert M.coherence_accuracies([0.1, 0.2], [0.5, 0.5], [0.9, 0.8]) == {"E1": 1.0, "E2": 1.0, "E3": 1.0}
    t = np.arange(2 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    assert M.click_count(tone, SR, onsets_s=[0.0]) == 0
    clicked = tone.copy()
    clicked[SR] += 0.9
    assert M.click_count(clicked, SR, onsets_s=[0.0]) >= 1
    assert M.level_stability_db(tone, SR, 0.2, 1.8) < 0.5


def test_the_sound_evaluations_attribute_trials_play_the_models_own_instruments(test_model, monkeypatch):
    """DrumGAN draws z from the prior the model was trained with; a 2.x model's z is its programs'
    Gaussians, so every trial plays a preset's z, and N(0, I) is kept beside, labelled."""
    import vqsynth.eval.suite as suite
    from vqsynth.eval.sound import attribute_section

    played, render = [], suite.render_note

    def spy(model, pitch, attrs=None, z=None, **kw):
        played.append(np.asarray(z, np.float32).copy())
        return render(model, pitch, attrs, z=z, **kw)

    monkeypatch.setattr(suite, "render_note", spy)
    table = [(1, test_model.preset_table[1]), (2, test_model.preset_table[2])]
    out = attribute_section(test_model, 1, table=table)
    presets = [test_model.preset_z(i) for i, _ in table]
    timbre = len(out["per_attribute"])
    assert out["z"] == "presets" and timbre == 7 and "off_instruments" in out
    mine, off = played[:3 * timbre], played[3 * timbre:]
    assert all(any(np.array_equal(z, p) for p in presets) for z in mine)
    assert not any(any(np.array_equal(z, p) for p in presets) for z in off)
    assert len(off) == 3 * timbre
