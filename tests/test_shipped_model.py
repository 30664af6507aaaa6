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
