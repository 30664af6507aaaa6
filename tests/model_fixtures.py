"""Shared fixtures: the random-weight test model, made by the project's own export code."""

import pytest


@pytest.fixture(scope="session")
def test_model_dir(tmp_path_factory):
    from vqsynth.train.export import make_test_model

    return make_test_model(tmp_path_factory.mktemp("models") / "test-random", seed=0)


@pytest.fixture(scope="session")
def test_model(test_model_dir):
    from vqsynth.model.folder import load_model

    return load_model(test_model_dir)


@pytest.fixture(scope="session")
def test_drum_model(tmp_path_factory):
    from vqsynth.model.drums import load_drum_model
    from vqsynth.train.drums import make_test_drum_model

    return load_drum_model(make_test_drum_model(tmp_path_factory.mktemp("models") / "test-drums"))
