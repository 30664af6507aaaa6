"""The control-domain stage (vqsynth/train/control.py) on a tiny 44.1 kHz corpus: it learns the
analysis targets, and its export is a model folder the engine loads, with presets numbered by
GM program and the encoder's own rate recorded."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def corpus44(tmp_path_factory):
    from vqsynth.data.build import build

    out = tmp_path_factory.mktemp("corpus44")
    build(out, ["/usr/share/sounds/sf2/FluidR3_GM.sf2"], sample_rate=44100, subsets=("tonal",),
          programs=[0, 40], pitches=[48, 60], velocities=[50, 100], workers=1)
    return out


def test_control_training_fits_the_targets_and_exports_a_model_folder(corpus44, tmp_path):
    import torch

    from vqsynth.model.folder import load_model
    from vqsynth.train import control as C
    from vqsynth.train.export import make_test_model

    torch.set_num_threads(1)
    notes = C.ControlNotes(corpus44)
    assert len(notes) == 8 and notes.cfg["band_limit_hz"] == 22050.0
    encoder = make_test_model(tmp_path / "enc", sample_rate=16000, hop=160, channels=16)
    encoded = C.encode_tokens(notes, encoder / "encoder.onnx", 16000, tmp_path / "run" / "tokens.npz")
    assert encoded["tokens"].shape == (8, 400)  # 4 s of 10-ms frames: the encoder's 16 kHz frames = the model's
    soft = C.family_labels(notes)
    C.train_control(notes, encoded, soft, tmp_path / "run", steps=150, batch=4, log_every=25, lr=3e-3, channels=32,
                    n_layers=2)
    log = [json.loads(x) for x in open(tmp_path / "run" / "log.jsonl") if '"event"' not in x]
    assert log[-1]["harmonics"] < 0.8 * log[0]["harmonics"]
    assert log[-1]["noise"] < 0.8 * log[0]["noise"]
    out = C.export_control(notes, tmp_path / "run", encoded, soft, encoder, tmp_path / "model", "t2", "2.0", {})
    model = load_model(out)
    assert model.sample_rate == 44100 and model.hop == 441 and model.band_limit_hz == 22050.0
    assert model.encoder_rate == 16000
    assert [p["program"] for p in model.preset_table] == [0, 40]
    assert model.preset_for_program(40) == 1
    tokens = model.encode(np.zeros(44100, np.float32))
    assert tokens.shape == (100,)
    prior = json.loads((out / "prior.json").read_text())
    assert len(prior["onset"]) == 3
    # each preset says how its program's attributes move with velocity (two per pitch here)
    rows = notes.program == 40
    for p in model.preset_table:
        assert p["velocity"]["reference"] == 75.0 and set(p["velocity"]["per_127"]) == set(C.TIMBRE_NAMES)
    slopes = C.velocity_slopes(notes.pitch[rows], notes.velocity[rows], notes.timbre[rows])
    assert model.velocity_offset(1, 127) == pytest.approx(
        [slopes[C.TIMBRE_NAMES.index(n)] * 52 / 127 if n in C.TIMBRE_NAMES else 0 for n in model.attr_names], abs=1e-3)


def test_velocity_slopes_are_read_within_each_pitch():
    """A known slope per 127 of velocity is found under a pitch trend 10 times larger (on the
    deviations from each pitch's mean), and pitches with one velocity say nothing."""
    from vqsynth.train.control import velocity_slopes

    rng = np.random.default_rng(0)
    pitch = np.repeat([40.0, 60.0, 80.0], 5)
    velocity = np.tile([25, 50, 75, 100, 127], 3)
    timbre = np.stack([0.01 * pitch + 0.2 * velocity / 127 + 0.001 * rng.standard_normal(15),
                       -0.01 * pitch - 0.1 * velocity / 127], 1)
    np.testing.assert_allclose(velocity_slopes(pitch, velocity, timbre), [0.2, -0.1], atol=0.01)
    assert velocity_slopes(np.array([40.0, 60.0]), np.array([100, 50]), timbre[:2]) is None


def test_a_run_started_from_another_can_narrow_each_programs_z(corpus44, tmp_path):
    """--init-logvar: 2.0's programs' z had spread to sigma 0.68 (G ignored z); a run started
    from its checkpoint with a small log-variance gets each program's z near its mean."""
    import torch

    from vqsynth.train import control as C
    from vqsynth.train.export import make_test_model

    torch.set_num_threads(1)
    notes = C.ControlNotes(corpus44)
    encoder = make_test_model(tmp_path / "enc", sample_rate=16000, hop=160, channels=16)
    encoded = C.encode_tokens(notes, encoder / "encoder.onnx", 16000, tmp_path / "tokens.npz")
    soft = C.family_labels(notes)
    small = dict(batch=2, log_every=1, channels=32, n_layers=2)
    C.train_control(notes, encoded, soft, tmp_path / "first", steps=2, **small)
    first = torch.load(tmp_path / "first" / "checkpoint.pt", weights_only=False)["instruments"]
    C.train_control(notes, encoded, soft, tmp_path / "second", steps=2, lr=1e-6, kl_weight=1e-4,
                    init_from=tmp_path / "first", init_logvar=-6.0, **small)
    second = torch.load(tmp_path / "second" / "checkpoint.pt", weights_only=False)["instruments"]
    assert torch.allclose(second["logvar"], torch.full_like(second["logvar"], -6.0), atol=1e-3)
    assert torch.allclose(second["mu"], first["mu"], atol=1e-3)  # the programs' means carried over
    events = [json.loads(x) for x in open(tmp_path / "second" / "log.jsonl") if '"event"' in x]
    assert {"event": "initialised", "from": str(tmp_path / "first"), "init_logvar": -6.0} in events
    assert any(e.get("kl_weight") == 1e-4 for e in events)


def test_a_corpus_without_targets_is_refused_with_what_to_do(corpus44, tmp_path):
    import shutil

    from vqsynth.cli import UserError
    from vqsynth.train.control import ControlNotes

    old = tmp_path / "old"
    shutil.copytree(corpus44, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for s in manifest["shards"]:
        s.pop("targets")  # as a corpus built before the targets
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="rebuild"):
        ControlNotes(old)
