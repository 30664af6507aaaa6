"""The token prior: seeded, holds for any length without silence, ends silent after release."""

import numpy as np
import pytest

from vqsynth.model.prior import TokenPrior, default_prior_table


@pytest.fixture(params=["markov", "resample"])
def prior(request):
    return TokenPrior(default_prior_table(), mode=request.param)


def _note(prior, hold_frames, seed=1, velocity=100, tail=200):
    w = prior.note(velocity, seed)
    held = [w.next() for _ in range(hold_frames)]
    w.release()
    after = [w.next() for _ in range(tail)]
    return np.array(held), np.array(after), w


def test_same_seed_same_sequence(prior):
    a, b = _note(prior, 300, seed=7)[0], _note(prior, 300, seed=7)[0]
    np.testing.assert_array_equal(a, b)
    if prior.mode == "markov":
        assert not np.array_equal(a, _note(prior, 300, seed=8)[0])


def test_sixty_second_hold_never_falls_silent_and_release_ends_silent(prior):
    held, after, w = _note(prior, 60 * 100)
    assert not prior.silence[held].any(), "a silence token before the release"
    assert len(set(held[-1000:].tolist())) > 1, "the hold is stuck on one token"
    assert prior.silence[after[prior.release_frames + 1:]].all()
    assert w.done


def test_release_during_attack_still_ends_silent(prior):
    _, after, w = _note(prior, 1)
    assert w.done and prior.silence[after[-10:]].all()


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown prior mode"):
        TokenPrior(default_prior_table(), mode="loop")
