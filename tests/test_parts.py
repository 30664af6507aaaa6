"""16 parts like a GM synth: each MIDI channel its own instrument, level and pan, in stereo."""

import mido
import numpy as np
import pytest

from vqsynth.control.mapping import load_mapping
from vqsynth.control.midi import MidiController
from vqsynth.engine.engine import Engine
from vqsynth.engine.offline import render
from vqsynth.engine.parts import pan_from_cc, pan_gains, volume_gain

SR = 16000


def _programs(model, n):
    """n GM programs that reach n different presets of the model."""
    seen = {}
    for program in range(128):
        index = model.preset_for_program(program)
        if index is not None and index not in seen.values():
            seen[program] = index
    assert len(seen) >= n, "the test model needs more presets"
    return list(seen.items())[:n]


def _song(model):
    """Three parts, as a GM file sets them up: a program, a volume and a pan each, then notes."""
    (p0, _), (p1, _), (p2, _) = _programs(model, 3)
    msgs = []
    for ch, program, volume, pan in ((0, p0, 100, 0), (1, p1, 80, 127), (2, p2, 110, 64)):
        msgs += [(0.0, mido.Message("program_change", channel=ch, program=program)),
                 (0.0, mido.Message("control_change", channel=ch, control=7, value=volume)),
                 (0.0, mido.Message("control_change", channel=ch, control=10, value=pan))]
    for k, (ch, pitch) in enumerate(((0, 60), (1, 64), (2, 67), (0, 72), (1, 55))):
        msgs += [(0.1 + 0.08 * k, mido.Message("note_on", channel=ch, note=pitch, velocity=100)),
                 (0.5 + 0.08 * k, mido.Message("note_off", channel=ch, note=pitch))]
    return msgs


def _render(model, msgs, channels=None):
    engine = Engine(model, sample_rate=SR, polyphony=16, seed=3)
    controller = MidiController(engine, load_mapping())
    events = [(t, lambda at, m=m: controller.handle(m, at)) for t, m in msgs
              if channels is None or m.channel in channels]
    return engine, render(engine, events, 1.0, tail=0.4, channels=2)


def test_each_part_plays_its_own_program_level_and_pan_and_the_mix_is_their_sum(test_model):
    msgs = _song(test_model)
    engine, mix = _render(test_model, msgs)
    programs = [i for _, i in _programs(test_model, 3)]
    assert [p.preset for p in engine.parts[:3]] == programs and engine.parts[3].preset == 0
    assert len(engine.attacks.built) == len({0, *programs})  # the parts' instruments, and preset 0 the others play
    alone = [_render(test_model, msgs, {ch})[1] for ch in range(3)]
    assert np.abs(mix).max() > 1e-3
    np.testing.assert_allclose(mix, sum(alone), atol=1e-5)  # no part changes another's sound
    left, right, centre = alone
    assert np.abs(left[:, 0]).max() > 1e-3 and np.abs(left[:, 1]).max() < 1e-6  # hard left: silent on the right
    assert np.abs(right[:, 1]).max() > 1e-3 and np.abs(right[:, 0]).max() < 1e-6
    np.testing.assert_allclose(centre[:, 0], centre[:, 1])


def test_part_volume_follows_the_gm_law(test_model):
    msgs = [(t, m) for t, m in _song(test_model) if m.channel == 1]
    louder = [(t, m.copy(value=100) if m.type == "control_change" and m.control == 7 else m) for t, m in msgs]
    _, at80 = _render(test_model, msgs)
    _, at100 = _render(test_model, louder)
    np.testing.assert_allclose(at80, at100 * volume_gain(80), atol=1e-6)


def test_a_program_change_on_one_part_leaves_the_others_sound_alone(test_model):
    (program, _), = _programs(test_model, 1)[-1:]
    note = [(0.05, mido.Message("note_on", channel=0, note=60, velocity=100)),
            (0.8, mido.Message("note_off", channel=0, note=60))]
    other = [(0.3, mido.Message("program_change", channel=1, program=program)),
             (0.3, mido.Message("control_change", channel=1, control=10, value=0))]
    _, plain = _render(test_model, note)
    engine, changed = _render(test_model, note + other)
    assert engine.parts[1].preset == test_model.preset_for_program(program) and engine.parts[0].preset == 0
    np.testing.assert_allclose(changed, plain, atol=1e-6)


def test_a_stereo_render_of_a_centred_part_is_the_mono_one_at_equal_power(test_model):
    note = [(0.05, mido.Message("note_on", channel=0, note=60, velocity=100)),
            (0.5, mido.Message("note_off", channel=0, note=60))]
    _, stereo = _render(test_model, note)
    engine = Engine(test_model, sample_rate=SR, polyphony=16, seed=3)
    controller = MidiController(engine, load_mapping())
    mono = render(engine, [(t, lambda at, m=m: controller.handle(m, at)) for t, m in note], 1.0, tail=0.4)
    assert np.abs(mono).max() > 1e-3
    np.testing.assert_allclose(stereo, np.repeat(mono[:, None], 2, 1) * np.sqrt(0.5), atol=1e-6)


@pytest.mark.parametrize("cc, pan", [(0, -1.0), (64, 0.0), (127, 1.0), (1, -63 / 64)])
def test_pan_from_cc(cc, pan):
    assert pan_from_cc(cc) == pytest.approx(pan)
    left, right = pan_gains(pan)
    assert left ** 2 + right ** 2 == pytest.approx(1.0)  # equal power wherever it sits


def test_render_reports_its_progress_to_the_end(test_model):
    engine = Engine(test_model, sample_rate=SR, polyphony=4)
    seen = []
    audio = render(engine, [(0.05, lambda t: engine.note_on(60, 100, t=t))], 0.5, tail=0.2,
                   progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] == pytest.approx(audio.shape[0] / SR, abs=0.02)


def test_reset_all_controllers_keeps_a_parts_program_and_its_attributes(test_model):
    """A DAW sends CC121 at every start of playback: the part must still sound like its program."""
    engine = Engine(test_model, sample_rate=SR)
    controller = MidiController(engine, load_mapping())
    (program, index), = _programs(test_model, 2)[1:]
    controller.handle(mido.Message("program_change", channel=2, program=program), 0.0)
    engine.channel_attr(2, "brightness", 0.9)  # as a recall, or /vqsynth/part/3/attr/brightness, gives it
    before = engine.part_attrs(2).copy()
    controller.handle(mido.Message("control_change", channel=2, control=121, value=0), 0.0)
    assert engine.parts[2].preset == index and np.array_equal(engine.part_attrs(2), before)
    assert before[test_model.attr_names.index("brightness")] == pytest.approx(0.9)
