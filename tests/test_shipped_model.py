"""The default model that ships in models/ loads, streams, and plays in tune."""

import numpy as np

from vqsynth.eval.metrics import pitch_accuracy, track_pitch
from vqsynth.eval.suite import render_note
from vqsynth.model.folder import load_model, resolve_model


def test_default_model_loads_and_plays_in_tune():
    model = load_model(resolve_model(None))
    assert model.name != "test-random"
    for pitch in (45, 69):
        audio = render_note(model, pitch, hold_s=1.0, tail_s=1.0)
        sr = model.sample_rate
        target = 440.0 * 2 ** ((pitch - 69) / 12)
        f0, voiced = track_pitch(audio[int(0.1 * sr):sr], sr, target)  # pYIN: not our own tracker
        acc, _ = pitch_accuracy(f0, voiced, target)
        assert acc > 0.9, (pitch, acc)
        assert np.abs(audio[-int(0.2 * sr):]).max() < 1e-3  # the release ends in silence


def test_default_model_streams_chunk_by_chunk():
    model = load_model(resolve_model(None))
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, model.z_size)).astype(np.float32)
    pitch = np.array([48.0, 72.0], np.float32)
    attrs = np.repeat(model.attr_defaults[None], 2, 0)
    tokens = rng.integers(0, model.n_tokens, (2, 30))
    whole, _ = model.generate(z, pitch, attrs, tokens, model.initial_state(2))
    state, parts = model.initial_state(2), []
    for t in range(0, 30, 7):
        frames, state = model.generate(z, pitch, attrs, tokens[:, t:t + 7], state)
        parts.append(frames)
    np.testing.assert_allclose(np.concatenate(parts, 1), whole, atol=1e-4)


def test_every_gm_program_change_finds_its_own_preset_and_the_featured_ones_cover_the_families():
    model = load_model(resolve_model(None))
    assert [p["program"] for p in model.preset_table] == list(range(128))  # preset N is GM program N
    assert all(model.preset_for_program(p) == p for p in range(128))
    featured = [p["family"] for p in model.preset_table if p.get("featured")]
    assert featured == model.family_names  # one per GM family, in family order


def test_every_velocity_bucket_of_the_shipped_prior_was_learned_from_notes():
    """Model 1.2's prior had flat pseudo-counts below velocity 100 (a velocity-100 corpus): those
    notes drew their onset token at random and attacked slowly."""
    import json

    model = load_model(resolve_model(None))
    table = json.loads((model.folder / "prior.json").read_text())
    assert len(table["notes_per_bucket"]) == len(table["onset"]) and min(table["notes_per_bucket"]) > 0
    for row in table["onset"]:
        assert np.ptp(row) > 1.0  # counted, not flat


def test_presets_are_different_instruments():
    """A preset as a program change plays it (its z and the attributes it recalls): two presets at
    one pitch are further apart than one preset with another noise seed (the DSP head's noise and
    the prior's tokens). Model 1.1's seeded presets were 0.34x."""
    model = load_model(resolve_model(None))
    sr = model.sample_rate

    def spectrum(i, seed):
        attrs = model.attr_defaults.copy()
        for name, value in model.preset_attrs(i).items():
            attrs[model.attr_names.index(name)] = value
        x = render_note(model, 60, attrs, hold_s=1.0, z=model.preset_z(i), tail_s=0.0, seed=seed)[:sr]
        return np.log(np.abs(np.fft.rfft(x * np.hanning(x.size))) + 1e-6)

    pairs = [(0, 40), (24, 73), (56, 19), (33, 81), (11, 68), (48, 104)]
    by_preset = np.mean([np.sqrt(np.mean((spectrum(a, 1) - spectrum(b, 1)) ** 2)) for a, b in pairs])
    by_seed = np.mean([np.sqrt(np.mean((spectrum(a, 1) - spectrum(a, 2)) ** 2)) for a, _ in pairs])
    assert by_preset > 1.5 * by_seed, (by_preset, by_seed)
