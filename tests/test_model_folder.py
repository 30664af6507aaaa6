"""The model folder contract: streaming equals one-shot, and broken folders are refused by name."""

import json
import shutil

import numpy as np
import pytest

from vqsynth.model.folder import ModelError, load_model


def _inputs(model, B, T, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((B, model.z_size)).astype(np.float32),
            rng.uniform(*model.pitch_range, B).astype(np.float32),
            rng.uniform(0, 1, (B, len(model.attr_names))).astype(np.float32),
            rng.integers(0, model.n_tokens, (B, T)))


def test_generator_chunked_equals_one_shot(test_model):
    z, pitch, attrs, tokens = _inputs(test_model, B=3, T=40)
    whole, _ = test_model.generate(z, pitch, attrs, tokens, test_model.initial_state(3))
    parts, state, t = [], test_model.initial_state(3), 0
    for size in [1, 3, 5, 11, 1, 19]:
        frames, state = test_model.generate(z, pitch, attrs, tokens[:, t:t + size], state)
        parts.append(frames)
        t += size
    assert t == 40
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-5)


def test_generator_depends_on_its_past(test_model):
    """The state carries real context: a different past gives a different next frame."""
    z, pitch, attrs, tokens = _inputs(test_model, B=1, T=8)
    _, s1 = test_model.generate(z, pitch, attrs, tokens, test_model.initial_state(1))
    _, s2 = test_model.generate(z, pitch, attrs, (tokens + 1) % test_model.n_tokens, test_model.initial_state(1))
    a, _ = test_model.generate(z, pitch, attrs, tokens[:, :1], s1)
    b, _ = test_model.generate(z, pitch, attrs, tokens[:, :1], s2)
    assert np.abs(a - b).max() > 1e-4


def test_onnx_matches_torch(test_model_dir, test_model):
    import torch
    from vqsynth.train.export import GeneratorConfig
    from vqsynth.train.generator import Generator

    meta = json.loads((test_model_dir / "model.json").read_text())
    torch.manual_seed(0)  # make_test_model seeds 0 before building the generator
    gen = Generator(GeneratorConfig(**meta["generator"]["config"])).eval()
    z, pitch, attrs, tokens = _inputs(test_model, B=2, T=6)
    with torch.no_grad():
        ref, _ = gen(torch.from_numpy(z), torch.from_numpy(pitch), torch.from_numpy(attrs),
                     torch.from_numpy(tokens), gen.initial_state(2))
    got, _ = test_model.generate(z, pitch, attrs, tokens, test_model.initial_state(2))
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-5)


@pytest.fixture
def broken_copy(test_model_dir, tmp_path):
    dst = tmp_path / "m"
    shutil.copytree(test_model_dir, dst)
    return dst


def _meta(folder):
    return json.loads((folder / "model.json").read_text())


def _with_presets(folder, presets):
    (folder / "model.json").write_text(json.dumps({**_meta(folder), "presets": presets}))


@pytest.mark.parametrize("breakage, names", [
    (lambda f: (f / "generator.onnx").unlink(), "generator.onnx"),
    (lambda f: (f / "generator.onnx").write_bytes((f / "generator.onnx").read_bytes()[:5000]), "generator.onnx"),
    (lambda f: (f / "encoder.onnx").write_bytes(b"not onnx"), "encoder.onnx"),
    (lambda f: (f / "model.json").write_text("{oops"), "model.json"),
    (lambda f: (f / "model.json").unlink(), "model.json"),
    (lambda f: (f / "prior.json").write_text('{"n_tokens": 16}'), "prior.json"),
    (lambda f: (f / "model.json").write_text(json.dumps({**_meta(f), "z_size": 7})), "generator.onnx"),
    (lambda f: (f / "model.json").write_text(json.dumps({**_meta(f), "sample_rate": 3})), "model.json"),
    (lambda f: (f / "model.json").write_text(json.dumps({k: v for k, v in _meta(f).items() if k != "hop"})),
     "model.json"),
    (lambda f: _with_presets(f, [{"name": "x", "z": [0.0] * 32, "attrs": {"loudness": 0.5}}]), "model.json"),
    (lambda f: _with_presets(f, [{"name": "x", "z": [0.0] * 32, "attrs": {"depth": 3.0}}]), "model.json"),
    (lambda f: _with_presets(f, [{"name": "x", "z": [0.0] * 32, "program": 200}]), "model.json"),
    (lambda f: _with_presets(f, [{"name": "x", "z": [0.0] * 32, "velocity": {"reference": 75, "per_127": {"loud": 1}}}]),
     "model.json"),
    (lambda f: _with_presets(f, [{"name": "x", "z": [0.0] * 32, "velocity": {"per_127": {"depth": 0.1}}}]), "model.json"),
    (lambda f: _with_presets(f, [{"name": "x", "z": [0.0] * 32, "velocity": [0.1]}]), "model.json"),
])
def test_broken_folder_is_refused_naming_the_file(broken_copy, breakage, names):
    breakage(broken_copy)
    with pytest.raises(ModelError) as err:
        load_model(broken_copy)
    assert names in str(err.value)


def test_missing_folder(tmp_path):
    with pytest.raises(ModelError, match="no such model folder"):
        load_model(tmp_path / "nothing")


def test_program_change_picks_the_program_or_its_family(broken_copy):
    """Presets made from GM programs: a program change picks that program's preset, else its
    family's; the preset recalls its z and glides its attributes there."""
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.errors import InputError

    piano = {"name": "piano", "program": 0, "z": [0.5] * 32, "attrs": {"brightness": 0.9, "piano": 0.8}}
    violin = {"name": "violin", "program": 40, "z": [-0.5] * 32, "attrs": {"brightness": 0.2, "strings": 0.7}}
    _with_presets(broken_copy, [piano, violin])
    model = load_model(broken_copy)
    assert [model.preset_for_program(p) for p in (0, 7, 40, 41, 47, 56)] == [0, 0, 1, 1, 1, None]
    e = Engine(model, sample_rate=16000)
    heard = []
    e.listeners.append(lambda kind, payload: heard.append((kind, payload)))
    e.program_change(41)  # viola: the strings family's preset
    assert ("attr", {"name": "strings", "value": 0.7}) in heard  # a subscriber's fader follows
    assert e.preset == 1 and np.allclose(e.z, -0.5)
    assert e.attr_target[model.attr_names.index("brightness")] == pytest.approx(0.2)
    assert e.attr_target[model.attr_names.index("strings")] == pytest.approx(0.7)
    assert e.attr_now[model.attr_names.index("brightness")] == pytest.approx(0.5)  # glides, no jump
    with pytest.raises(InputError, match="program 56"):
        e.program_change(56)
    assert e.preset == 1


def test_presets_without_programs_keep_program_change_as_an_index(test_model):
    assert [test_model.preset_for_program(p) for p in (0, 3, 4, 90)] == [0, 3, None, None]
