"""MIDI translation: each MIDI behaviour becomes the right engine call (FluidSynth-style unit tests).

The engine here is a recording stand-in: these tests pin down the translation layer alone.
test_control_jack.py drives the real Engine through a real JACK MIDI port.
"""

import logging

import mido
import pytest

from vqsynth.control.mapping import load_mapping, parse_mapping
from vqsynth.control.midi import MidiController
from vqsynth.control.midi_spec import FIXED_CCS, fixed_ccs_markdown


class RecordingEngine:
    """Records every engine call as (method, args, kwargs); the model is the real test model."""

    def __init__(self, model):
        self.model = model
        self.calls = []
        self.route = list(range(16))
        self.drums = None  # no drum model: the drum channel's notes are counted (tests/test_drums.py plays a kit)

    def route_part(self, channel, part):  # which part a channel plays through: state, not a call
        self.route[channel] = part

    def __getattr__(self, method):
        def record(*args, **kwargs):
            self.calls.append((method, args, kwargs))
            return len(self.calls)
        return record

    def program_change(self, program, t=None, channel=None):  # resolves the preset as the real engine does
        index = self.model.preset_for_program(program)
        if index is None:
            raise ValueError(f"program {program}: no preset")
        self.calls.append(("set_preset", (index,), {"t": t, "channel": channel}))

    def take(self):
        calls, self.calls = self.calls, []
        return calls


@pytest.fixture
def rec(test_model):
    return RecordingEngine(test_model)


def cc(ctl, number, value, channel=0, t=1.0):
    ctl.handle(mido.Message("control_change", channel=channel, control=number, value=value), t)


def test_note_on_and_velocity_zero_note_off(rec):
    ctl = MidiController(rec)
    ctl.handle(mido.Message("note_on", channel=3, note=60, velocity=100), 1.5)
    ctl.handle(mido.Message("note_on", channel=3, note=60, velocity=0), 2.0)
    ctl.handle(mido.Message("note_off", channel=3, note=61, velocity=64), 2.5)
    assert rec.take() == [("note_on", (60, 100, 3), {"note_id": None, "t": 1.5}),
                          ("note_off", (60, 3), {"note_id": None, "t": 2.0}),
                          ("note_off", (61, 3), {"note_id": None, "t": 2.5})]


def test_sustain_pedal_reaches_the_engine_on_changes_only(rec):
    ctl = MidiController(rec)
    for value in (127, 100, 64, 63, 0):  # a continuous pedal sends many values
        cc(ctl, 64, value, channel=2)
    assert rec.take() == [("sustain", (2, True), {"t": 1.0}), ("sustain", (2, False), {"t": 1.0})]


def test_rpn0_sets_the_bend_range_per_channel(rec):
    ctl = MidiController(rec)
    for number, value in ((101, 0), (100, 0), (6, 12), (38, 50)):
        cc(ctl, number, value, channel=1)
    ctl.handle(mido.Message("pitchwheel", channel=1, pitch=8191), 2.0)
    ctl.handle(mido.Message("pitchwheel", channel=1, pitch=-8192), 2.0)
    ctl.handle(mido.Message("pitchwheel", channel=0, pitch=-4096), 2.0)
    assert rec.take() == [("pitch_bend", (1, 12.5), {"t": 2.0}), ("pitch_bend", (1, -12.5), {"t": 2.0}),
                          ("pitch_bend", (0, -1.0), {"t": 2.0})]  # channel 0 keeps the default ±2


def test_a_new_range_rescales_a_held_bend_and_a_null_rpn_ignores_data_entry(rec):
    ctl = MidiController(rec)
    ctl.handle(mido.Message("pitchwheel", pitch=-8192), 1.0)
    cc(ctl, 101, 0), cc(ctl, 100, 0), cc(ctl, 6, 7)
    cc(ctl, 101, 127), cc(ctl, 100, 127), cc(ctl, 6, 24)  # RPN null: data entry goes nowhere
    assert rec.take() == [("pitch_bend", (0, -2.0), {"t": 1.0}), ("pitch_bend", (0, -7.0), {"t": 1.0})]
    assert ctl.channels[0].bend_range == 7.0


def test_reset_all_controllers_follows_rp015(rec):
    ctl = MidiController(rec)
    cc(ctl, 101, 0), cc(ctl, 100, 0), cc(ctl, 6, 12)
    ctl.handle(mido.Message("pitchwheel", pitch=8191), 1.0)
    cc(ctl, 64, 127)
    rec.take()
    cc(ctl, 121, 0)
    assert rec.take() == [("reset_controllers", (0,), {"t": 1.0}), ("part_level", (0,), {"expression": 127, "t": 1.0})]
    cc(ctl, 6, 2)  # the RPN was deselected: this must not change the range
    cc(ctl, 64, 127)  # the pedal state was reset too, so pressing again is a change
    ctl.handle(mido.Message("pitchwheel", pitch=8191), 2.0)
    assert rec.take() == [("sustain", (0, True), {"t": 1.0}), ("pitch_bend", (0, 12.0), {"t": 2.0})]


def test_channel_mode_messages(rec):
    ctl = MidiController(rec)
    cc(ctl, 120, 0, channel=4), cc(ctl, 123, 0, channel=5), cc(ctl, 126, 1, channel=6)
    assert rec.take() == [("all_sound_off", (4,), {"t": 1.0}), ("all_notes_off", (5,), {"t": 1.0}),
                          ("all_notes_off", (6,), {"t": 1.0})]


def test_program_change_selects_a_preset_and_a_bad_one_is_counted(rec, caplog):
    ctl = MidiController(rec)
    ctl.handle(mido.Message("program_change", program=2), 3.0)
    with caplog.at_level(logging.WARNING, "vqsynth.control"):
        for _ in range(3):
            ctl.handle(mido.Message("program_change", program=90), 3.0)
    ctl.handle(mido.Message("program_change", channel=4, program=2), 3.0)
    assert rec.take() == [("set_preset", (2,), {"t": 3.0, "channel": 0}), ("set_preset", (2,), {"t": 3.0, "channel": 4})]
    assert ctl.counters["rejected program_change"] == 3
    assert len([r for r in caplog.records if "program_change" in r.message]) == 1  # logged once


def test_mapped_ccs_move_their_targets_through_the_curve(rec):
    ctl = MidiController(rec, load_mapping())
    cc(ctl, 74, 127), cc(ctl, 73, 127)
    calls = rec.take()
    assert [c[:2] for c in calls[:2]] == [("set_attr", ("brightness", 1.0)),
                                          ("set_attr", ("hardness", 0.0))]  # CC73 is inverted
    assert all(c[2]["t"] == 1.0 and c[2]["smooth_ms"] > 0 for c in calls)  # the mapping's smoothing
    ctl_vol = MidiController(rec, parse_mapping('[midi.cc.20]\ntarget = "volume"\ncurve = "exp"\n'))
    cc(ctl_vol, 20, 127)
    call = rec.take()[0]
    assert call[0] == "set_volume" and call[1][0] == pytest.approx(1.0)
    cc(ctl_vol, 20, 64)
    assert 0.05 < rec.take()[0][1][0] < 0.15  # exp curve: half travel is about -21 dB


def test_cc7_cc10_cc11_set_their_channels_part(rec):
    """GM: volume, pan and expression belong to the channel's part (an MPE member's: its zone's)."""
    ctl = MidiController(rec, load_mapping())
    cc(ctl, 7, 90, channel=2), cc(ctl, 10, 0, channel=3), cc(ctl, 10, 127, channel=3), cc(ctl, 11, 64, channel=4)
    assert rec.take() == [("part_level", (2,), {"volume": 90, "t": 1.0}), ("part_level", (3,), {"pan": -1.0, "t": 1.0}),
                          ("part_level", (3,), {"pan": 1.0, "t": 1.0}), ("part_level", (4,), {"expression": 64, "t": 1.0})]
    zoned = MidiController(rec, parse_mapping('[mpe]\nzone = "lower"\n'))
    assert rec.route[:3] == [0, 0, 0] and rec.route[15] == 0
    rec.take()
    cc(zoned, 7, 50, channel=5)
    ctl.handle(mido.Message("program_change", channel=5, program=2), 3.0)  # ctl: no zone, channel 6 is its own
    zoned.handle(mido.Message("program_change", channel=5, program=2), 3.0)
    assert rec.take() == [("part_level", (0,), {"volume": 50, "t": 1.0}), ("set_preset", (2,), {"t": 3.0, "channel": 5}),
                          ("set_preset", (2,), {"t": 3.0, "channel": 0})]


def test_drum_channel_notes_without_a_drum_model_are_counted_not_played(rec):
    ctl = MidiController(rec, load_mapping())
    ctl.handle(mido.Message("note_on", channel=9, note=36, velocity=100), 1.0)
    ctl.handle(mido.Message("note_off", channel=9, note=36), 1.5)
    assert rec.take() == [] and ctl.counters["drum notes"] == 1
    pitched = MidiController(rec, parse_mapping("[midi]\ndrum_channel = 0\n"))
    pitched.handle(mido.Message("note_on", channel=9, note=60, velocity=100), 1.0)
    assert rec.take()[0][:2] == ("note_on", (60, 100, 9))
    zoned = MidiController(rec, parse_mapping('[mpe]\nzone = "lower"\n'))  # channel 10 is a member here
    zoned.handle(mido.Message("note_on", channel=9, note=60, velocity=100), 1.0)
    assert rec.take()[-1][:2] == ("note_on", (60, 100, 9))


def test_14_bit_controller_pairs_cc_n_with_n_plus_32(rec):
    ctl = MidiController(rec, parse_mapping('[midi.cc.16]\ntarget = "warmth"\n'))
    cc(ctl, 16, 64), cc(ctl, 48, 0), cc(ctl, 48, 127), cc(ctl, 16, 127)
    values = [args[1] for _, args, _ in rec.take()]
    assert values == pytest.approx([64 / 127, 64 * 128 / 16383, (64 * 128 + 127) / 16383, 1.0])


def test_unknown_messages_are_counted_and_logged_once(rec, caplog):
    ctl = MidiController(rec)
    with caplog.at_level(logging.WARNING, "vqsynth.control"):
        for _ in range(5):
            ctl.handle(mido.Message("aftertouch", value=10), 1.0)
            cc(ctl, 3, 10)  # not in the default mapping
    assert ctl.counters["unhandled aftertouch"] == 5 and ctl.counters["unmapped CC 3"] == 5
    assert len(caplog.records) == 2 and rec.take() == []


@pytest.mark.parametrize("policy,played", [("clamp", 21), ("fold", 22), ("ignore", None)])
def test_out_of_range_notes_follow_the_policy_and_are_counted(rec, policy, played):
    ctl = MidiController(rec, parse_mapping(f'[midi]\nout_of_range = "{policy}"\n'))
    ctl.handle(mido.Message("note_on", note=10, velocity=90), 1.0)
    ctl.handle(mido.Message("note_off", note=10), 2.0)
    expected = [] if played is None else [("note_on", (played, 90, 0), {"note_id": None, "t": 1.0}),
                                          ("note_off", (played, 0), {"note_id": None, "t": 2.0})]
    assert rec.take() == expected
    assert ctl.counters["out_of_range"] == 1


def test_every_fixed_cc_has_its_action_and_a_doc_row():
    table = fixed_ccs_markdown()
    for c in FIXED_CCS:
        assert callable(getattr(MidiController, f"_{c.action}")), c
        assert f"| {c.number} | `{c.name}` |" in table


def test_a_sysex_is_counted_without_being_parsed(test_model, monkeypatch):
    """A 30 KB SysEx took mido 18 ms to parse inside the JACK callback; nothing here uses SysEx."""
    import mido

    from vqsynth.control.midi import MidiController
    from vqsynth.engine.engine import Engine

    controller = MidiController(Engine(test_model, sample_rate=16000))
    monkeypatch.setattr(mido.Message, "from_bytes", classmethod(lambda cls, data: pytest.fail("parsed a SysEx")))
    controller.handle_bytes(bytes([0xF0]) + bytes(30000) + bytes([0xF7]))
    assert controller.counters["unhandled sysex"] == 1
