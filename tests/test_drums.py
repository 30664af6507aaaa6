"""The GM drum part: hits from a per-key cache of one-shots made by the drum model.

These run on the random-weight test drum model (tests/model_fixtures.py, made by the project's
export code); the shipped model's sound is checked in tests/test_shipped_drums.py."""

import json
import shutil

import mido
import numpy as np
import pytest

from vqsynth.control.mapping import load_mapping
from vqsynth.control.midi import MidiController
from vqsynth.engine.drums import LAYERS, velocity_gain
from vqsynth.engine.engine import Engine
from vqsynth.engine.errors import InputError
from vqsynth.engine.offline import render
from vqsynth.model.drums import load_drum_model, stft
from vqsynth.model.folder import ModelError

SR = 44100


def _engine(test_model, drums, **kw):
    e = Engine(test_model, sample_rate=SR, block_size=128, drums=drums, **kw)
    e.build_attack_cache()
    return e


def _play(e, blocks):
    out = np.zeros((128, 2), np.float32)
    got = []
    for _ in range(blocks):
        e.step(out)
        got.append(out.copy())
    return np.concatenate(got)


def test_the_one_shot_contract_of_an_exported_folder(test_drum_model, tmp_path):
    m = test_drum_model
    assert m.meta["kind"] == "one-shot" and m.classes[:3] == ["kick", "snare", "tom"]
    st = m.meta["stft"]
    logmag = m.session.run(None, {"z": np.zeros((3, m.z_size), np.float32),
                                  "labels": np.full((3, len(m.classes)), 0.1, np.float32),
                                  "attrs": np.full((3, len(m.attr_names)), 0.5, np.float32),
                                  "velocity": np.full(3, 0.5, np.float32)})[0]
    assert logmag.shape == (3, st["n_fft"] // 2 + 1, 1 + m.length // st["hop"])
    hit, = m.hits(np.zeros((1, m.z_size)), np.full((1, len(m.classes)), 0.1), np.full((1, 7), 0.5), [0.5])
    assert hit.shape == (m.length,) and np.isfinite(hit).all() and np.abs(hit).max() > 0.01
    # Griffin-Lim found a phase for those magnitudes: the hit's own spectrogram is near them
    got = np.abs(stft(hit[None], st["n_fft"], st["hop"]))[0]
    want = np.exp(logmag[0])
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.5
    assert m.key_class(36) == 0 and m.key_class(42) == m.classes.index("hihat_closed") and m.key_class(20) is None
    assert m.choke_group(42) == m.choke_group(46) != 0 and m.choke_group(36) == 0
    assert m.kit_for_program(24) == 1 and m.kit_for_program(99) == 0 and m.find_kit("test e") == 1


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "kits.json").unlink(), "kits.json: missing"),
    (lambda d: (d / "kits.json").write_text("[{\"name\": 1}]"), "kits.json: unreadable"),
    (lambda d: (d / "generator.onnx").write_bytes(b"not onnx"), "not a valid ONNX model"),
    (lambda d: (d / "model.json").write_text(json.dumps({"kind": "one-shot", "name": "x"})), "field 'sample_rate'"),
    (lambda d: (d / "model.json").write_text(json.dumps({"kind": "tonal"})), "not a one-shot"),
])
def test_a_broken_drum_folder_is_a_clear_error(test_drum_model, tmp_path, breakage, message):
    folder = tmp_path / "broken"
    shutil.copytree(test_drum_model.folder, folder)
    breakage(folder)
    with pytest.raises(ModelError, match=message):
        load_drum_model(folder)


def test_a_hit_sounds_on_its_sample_at_its_velocity_from_the_cache(test_model, test_drum_model):
    e = _engine(test_model, test_drum_model)
    kit = test_drum_model.kits[0]
    assert {k for k, _ in e.drums.cache} == set(kit.keys) and {layer for _, layer in e.drums.cache} == {0, 1, 2}
    assert e.drum_hit(38, 120, at_sample=1000) and e.drum_hit(38, 60, at_sample=20000)
    out = _play(e, 300)
    loud = np.abs(out[:, 0]) > 0
    assert not loud[:1000].any() and loud[1000]  # to the sample
    first = e.drums.cache[(38, LAYERS.index(120))][1][0]
    pan = out[1000:1100, 0] / first[:100]
    np.testing.assert_allclose(pan, pan[0], rtol=1e-4)  # the cached hit, scaled
    soft = e.drums.cache[(38, 0)][1][0]  # velocity 60: the nearest layer (50), at velocity 60's level
    ratio = velocity_gain(60) / velocity_gain(120)
    assert len(first) < 19000  # the first hit is over by then
    np.testing.assert_allclose(out[20000:20050, 0], soft[:50] * pan[0] * ratio, rtol=1e-4, atol=1e-7)
    assert e.status()["drums"]["drum_hits"] == 2


def test_a_closed_hi_hat_chokes_the_open_one(test_model, test_drum_model):
    alone = _engine(test_model, test_drum_model)
    alone.drum_hit(42, 100, at_sample=3000)
    closed = _play(alone, 60)
    both = _engine(test_model, test_drum_model)
    both.drum_hit(46, 100, at_sample=0)
    both.drum_hit(42, 100, at_sample=3000)
    mixed = _play(both, 60)
    fade = both.drums.fade_len
    assert np.abs(mixed[:3000]).max() > 0.01  # the open hat rang...
    np.testing.assert_allclose(mixed[3000 + fade:], closed[3000 + fade:], atol=1e-6)  # ...and is cut after the fade
    assert both.drums.counters["drum_choked"] == 1
    kick_alone = _engine(test_model, test_drum_model)
    kick_alone.drum_hit(36, 100, at_sample=3000)
    kick = _engine(test_model, test_drum_model)
    kick.drum_hit(46, 100, at_sample=0)
    kick.drum_hit(36, 100, at_sample=3000)  # a kick is in no group: the open hat rings on
    assert np.abs(_play(kick, 60)[3000 + fade:] - _play(kick_alone, 60)[3000 + fade:]).max() > 0.01
    assert kick.drums.counters["drum_choked"] == 0


def test_variation_zero_repeats_the_hit_and_variation_makes_each_new(test_model, test_drum_model):
    e = _engine(test_model, test_drum_model)
    same = e.drums.cache[(38, 1)][1]
    assert len(same) == 1
    e.set_drums(variation=0.8)
    e.build_attack_cache()
    varied = e.drums.cache[(38, 1)][1]
    assert len(varied) > 1
    lsd = [np.mean(np.abs(np.log(np.abs(np.fft.rfft(a)) + 1e-6) - np.log(np.abs(np.fft.rfft(b)) + 1e-6)))
           for a, b in zip(varied, varied[1:])]
    assert min(lsd) > 0.05  # successive hits differ
    e.drum_hit(38, 90, at_sample=0)
    e.drum_hit(38, 90, at_sample=15000)
    out = _play(e, 240)[:, 0]
    assert np.abs(out[:2000] - out[15000:17000]).max() > 1e-3  # the second hit of the key is another


def test_a_control_change_rebuilds_the_cache_and_old_hits_play_meanwhile(test_model, test_drum_model):
    e = _engine(test_model, test_drum_model)
    old = e.drums.cache[(36, 1)][1][0]
    e.set_drums(kit="Test Electronic")
    assert e.drums.wanted() and e.drum_hit(36, 90, at_sample=0)  # the old hit serves until rebuilt
    assert e.drums.buf[int(np.flatnonzero(e.drums.active)[0])] is old
    built = e.drums.builder()
    next(built)
    e.drum_hit(35, 90, at_sample=0)  # a key not in the kit: counted, not played
    assert e.drums.counters["drum_unknown_key"] == 1
    for _ in built:
        pass
    assert not e.drums.wanted() and not np.allclose(e.drums.cache[(36, 1)][1][0][:1000], old[:1000])
    with pytest.raises(InputError, match="unknown drum class"):
        e.set_drums(morph={"cowbell": 1.0})
    with pytest.raises(InputError, match="out of range"):
        e.set_drums(variation=2)
    with pytest.raises(InputError, match="no kit"):
        e.set_drums(kit="nope")


def test_the_class_morph_pulls_every_key_towards_the_class(test_model, test_drum_model):
    e = _engine(test_model, test_drum_model)
    _, labels, _ = e.drums.conditions(36)
    assert labels.argmax() == 0
    e.set_drums(morph={"crash": 0.75})
    _, labels, attrs = e.drums.conditions(36)
    assert labels[e.drums.model.classes.index("crash")] == pytest.approx(0.75) and labels[0] == pytest.approx(0.25)
    e.set_drums(offsets={"brightness": 1.0})
    assert e.drums.conditions(36)[2][0] == 1.0


def test_channel_10_plays_the_kit_and_its_program_change_picks_one(test_model, test_drum_model):
    e = _engine(test_model, test_drum_model)
    ctl = MidiController(e, load_mapping())
    events = [(0.0, mido.Message("program_change", channel=9, program=24)),
              (0.1, mido.Message("note_on", channel=9, note=36, velocity=110)),
              (0.15, mido.Message("note_off", channel=9, note=36)),
              (0.2, mido.Message("note_on", channel=9, note=60, velocity=110))]  # not in the test kit
    out = render(e, [(t, lambda at, m=m: ctl.handle(m, at)) for t, m in events], 0.4, channels=2)
    assert e.drums.kit == 1 and e.status()["voices"] == 0  # no tonal voice played the drum notes
    assert np.abs(out[int(0.1 * SR):int(0.2 * SR)]).max() > 0.01
    assert e.drums.counters["drum_hits"] == 1 and e.drums.counters["drum_unknown_key"] == 1


def test_a_gm_file_renders_the_same_drums_twice(test_model, test_drum_model):
    def once():
        e = _engine(test_model, test_drum_model)
        ctl = MidiController(e, load_mapping())
        events = [(0.02 * k, mido.Message("note_on", channel=9, note=(36, 42, 38, 42)[k % 4], velocity=100))
                  for k in range(12)]
        return render(e, [(t, lambda at, m=m: ctl.handle(m, at)) for t, m in events], 0.3, channels=2)
    np.testing.assert_array_equal(once(), once())


def test_an_offline_render_makes_only_the_hits_it_plays_and_they_equal_the_whole_kits(test_model, test_drum_model):
    """Offline, a hit is made when first played (a kit costs seconds, a file plays a few keys): the
    same audio as with the whole kit cached first, and only the (key, layer) pairs played made."""
    events = [(0.01, 36, 110), (0.05, 42, 60), (0.09, 38, 100), (0.13, 42, 64)]

    def play(e, hits):
        for t, key, vel in hits:
            e.drum_hit(key, vel, at_sample=int(t * SR))
        return _play(e, int(0.3 * SR) // 128)

    whole = _engine(test_model, test_drum_model)
    expected = play(whole, events)
    lazy = Engine(test_model, sample_rate=SR, block_size=128, drums=test_drum_model, attack_cache=False)
    lazy.drums.on_demand = True
    got = play(lazy, events)
    assert sorted(lazy.drums.cache) == [(36, 2), (38, 1), (42, 0)]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got).max() > 0.01


def test_mixing_hits_allocates_nothing(test_model, test_drum_model):
    import tracemalloc

    e = _engine(test_model, test_drum_model)
    for k, key in enumerate((36, 38, 42, 46, 49, 44) * 4):
        e.drum_hit(key, 100, at_sample=k * 37)
    out = np.zeros((1024, 2), np.float32)
    e.drums.mix_into(out, 0)
    tracemalloc.start()
    try:
        peaks = []
        for b in range(1, 6):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            e.drums.mix_into(out, b * 1024)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    assert e.drums.sounding() > 0 and max(peaks) < 1024 * 4, peaks


def test_the_default_mapping_moves_the_drum_controls_from_ccs(test_model, test_drum_model):
    e = _engine(test_model, test_drum_model)
    ctl = MidiController(e, load_mapping())
    version = e.drums.version
    ctl.handle(mido.Message("control_change", channel=9, control=22, value=127), 0.0)  # drums.snare
    ctl.handle(mido.Message("control_change", channel=9, control=20, value=64), 0.0)   # drums.variation
    assert e.drums.morph[e.drums.model.classes.index("snare")] == pytest.approx(1.0)
    assert e.drums.variation == pytest.approx(64 / 127) and e.drums.version == version + 2 and e.drums.wanted()


def test_start_caches_the_middle_layer_and_the_render_thread_the_rest(test_model, test_drum_model):
    import time

    e = Engine(test_model, sample_rate=SR, block_size=128, drums=test_drum_model)
    e.start()
    try:
        keys = set(test_drum_model.kits[0].keys)
        assert {k for k, layer in e.drums.cache if layer == 1} == keys  # every key can be hit at once
        deadline = time.monotonic() + 60
        while e.drums.wanted() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not e.drums.wanted() and set(e.drums.cache) == {(k, layer) for k in keys for layer in range(3)}
    finally:
        e.stop()


def test_the_state_file_keeps_the_drum_part(test_model, test_drum_model, tmp_path):
    from vqsynth.engine import state_file

    e = _engine(test_model, test_drum_model)
    e.set_drums(kit="Test Electronic", variation=0.25, morph={"crash": 0.5}, offsets={"warmth": -0.5})
    path = state_file.save(tmp_path / "state.json", e)
    fresh = _engine(test_model, test_drum_model)
    fresh.set_drums(morph={"kick": 1.0})
    state_file.load(path, fresh)
    d = fresh.drums
    assert d.kit == 1 and d.variation == 0.25 and d.morph[d.model.classes.index("crash")] == 0.5
    assert d.morph[0] == 0.0 and d.offsets[d.model.attr_names.index("warmth")] == -0.5


def test_the_cache_builder_hands_the_render_thread_back_every_griffin_lim_iteration(test_model, test_drum_model):
    """A hit takes ~50 ms to make and the voices are ~20 ms ahead: the builder must yield within a
    hit (after the generator and after every Griffin-Lim iteration), or a kit build starves them."""
    from vqsynth.engine.drums import CHUNK_DONE
    from vqsynth.model.drums import GL_ITERATIONS

    e = Engine(test_model, sample_rate=SR, block_size=128, drums=test_drum_model, attack_cache=False)
    steps = list(e.drums.builder(chunk=2))
    hits = len(e.drums.cache)
    chunks = steps.count(CHUNK_DONE)
    assert hits == 3 * len(test_drum_model.kits[0].keys) and chunks == -(-hits // 2)
    assert len(steps) - chunks >= hits * GL_ITERATIONS + chunks  # the generator once a chunk, GL per hit
