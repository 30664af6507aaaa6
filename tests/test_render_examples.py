"""`vqsynth render --examples DIR`: the demo folder of a model, through the engine code."""

import numpy as np
import soundfile as sf

from vqsynth.engine.engine import Engine
from vqsynth.engine.examples import render_examples


def test_every_example_is_written_and_sounds(test_model, tmp_path):
    paths = render_examples(lambda: Engine(test_model, sample_rate=16000, seed=0), tmp_path, plots=False)
    names = {p.stem for p in paths}
    timbre = [a["name"] for a in test_model.attributes if a.get("kind") == "timbre"]
    assert names == {"chromatic", "held-10s", "velocity-sweep", "latent", "presets"} | {f"attr-{n}" for n in timbre}
    for p in paths:
        audio, sr = sf.read(p)
        assert sr == 16000 and np.isfinite(audio).all() and np.abs(audio).max() > 1e-3, p.name
    held, sr = sf.read(tmp_path / "held-10s.wav")
    assert len(held) == 11 * sr  # 10 s held + 1 s tail
    assert np.abs(held[int(9.5 * sr):int(10 * sr)]).max() > 1e-3  # still sounding at 9.5 s


def test_presets_example_plays_the_phrase_on_each_preset(test_model, tmp_path):
    from vqsynth.engine.examples import _events_presets

    e = Engine(test_model, sample_rate=16000, seed=0)
    events, seconds, labels = _events_presets(e)
    assert [text for _, text in labels] == [f"{i} {n}" for i, n in enumerate(test_model.presets)]
    chosen = []
    e.listeners.append(lambda kind, payload: chosen.append(payload["index"]) if kind == "preset" else None)
    from vqsynth.engine.offline import render

    audio = render(e, events, seconds, tail=0.5)
    assert chosen == list(range(len(test_model.presets)))
    assert np.abs(audio).max() > 1e-3


def test_the_presets_example_plays_the_featured_presets_when_a_model_flags_them(test_model):
    from vqsynth.engine.examples import showcase_presets

    assert showcase_presets(test_model) == list(range(len(test_model.presets)))
    table = test_model.preset_table
    try:
        table[2]["featured"] = table[0]["featured"] = True
        assert showcase_presets(test_model) == [0, 2]
    finally:
        for p in table:
            p.pop("featured", None)
