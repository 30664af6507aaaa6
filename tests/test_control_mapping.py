"""Mapping files: the shipped one loads, bad ones are refused naming file, line and key."""

import pytest

from vqsynth.control.mapping import (CURVES, DEFAULT_MAPPING, MappingError, load_mapping, parse_mapping,
                                     place_pitch, settings_markdown, targets_for, targets_markdown)


def test_default_mapping_binds_every_attribute_of_the_model(test_model):
    m = load_mapping().resolve(targets_for(test_model))
    assert m.source == str(DEFAULT_MAPPING)
    assert (m.bend_range, m.out_of_range) == (2.0, "clamp")
    bound = {b.target for b in m.cc.values()}
    assert set(test_model.attr_names) <= bound and 7 not in m.cc  # CC7 is the part volume (GM), not mappable
    assert m.osc["/1/fader5"].target == "volume"
    assert m.cc[74].target == "brightness" and m.cc[74].range == (0.0, 1.0)
    assert m.cc[73].value(0.0) == 1.0 and m.cc[73].value(1.0) == 0.0  # inverted range
    assert m.osc["/1/fader1"].target == "brightness"


def test_curves_span_the_range_and_shape_it():
    b = parse_mapping('[midi.cc.20]\ntarget = "volume"\nrange = [0.2, 0.8]\ncurve = "exp"\n').cc[20]
    assert b.value(0.0) == pytest.approx(0.2) and b.value(1.0) == pytest.approx(0.8)
    assert b.value(0.5) < 0.5 and b.value(2.0) == pytest.approx(0.8)  # exp is low in the middle; clamped
    exp, log = CURVES["exp"][0], CURVES["log"][0]
    assert log(exp(0.3)) == pytest.approx(0.3)


def test_osc_binding_input_range():
    b = parse_mapping('[osc."/slider"]\ntarget = "brightness"\nrange = [0, 1]\ninput = [0, 127]\n').osc["/slider"]
    assert b.value_from_input(127) == 1.0 and b.value_from_input(63.5) == pytest.approx(0.5)


BAD = [
    # (file text, line, key, words in the reason)
    ('[midi]\nbend_range = 2\ncurve = cubic\n', 3, None, "Invalid value"),
    ('[midi]\nbend_range = 100\n', 2, "midi.bend_range", "outside 0..48"),
    ('[midi]\nout_of_range = "wrap"\n', 2, "midi.out_of_range", "clamp, fold, ignore"),
    ('\n[midi.cc.74]\ntarget = "brightness"\ncurve = "cubic"\n', 4, "midi.cc.74.curve", "lin, exp, log"),
    ('[midi.cc.74]\ntarget = "brightness"\ncurv = "exp"\n', 3, "midi.cc.74.curv", "unknown key"),
    ('[midi.cc.74]\nrange = [0, 1]\n', 1, "midi.cc.74", "missing 'target'"),
    ('[midi.cc.64]\ntarget = "volume"\n', 1, "midi.cc.64", "sustain"),
    ('[midi.cc.200]\ntarget = "volume"\n', 1, "midi.cc.200", "0..127"),
    ('[midi.cc.20]\ntarget = "volume"\n[midi.cc.52]\ntarget = "brightness"\n', 3, "midi.cc.52", "LSB"),
    ('[midi.cc.20]\ntarget = "volume"\nrange = [0]\n', 3, "midi.cc.20.range", "two numbers"),
    ('[midi.cc.20]\ntarget = "volume"\ninput = [0, 127]\n', 3, "midi.cc.20.input", "unknown key"),
    ('[midi.cc.7]\ntarget = "volume"\n', 1, "midi.cc.7", "part volume"),
    ('[osc."/vqsynth/x"]\ntarget = "volume"\n', 1, 'osc."/vqsynth/x"', "built-in"),
    ('[oscc."/a"]\ntarget = "volume"\n', 1, "oscc", "unknown key"),
    ('[follow]\nunvoiced = "drop"\n', 2, "follow.unvoiced", "'drop' is not one of hold, release"),
    ('[follow]\ntimbre = 1\n', 2, "follow.timbre", "1 is not one of true, false"),
    ('# mine\n[follow]\ngate_db = -40\n', 3, "follow.gate_db", "unknown key"),
    ('[follow]\ngate_on_db = -60\n', 2, "follow.gate_on_db", "gate_off_db -55 is above follow.gate_on_db (-60)"),
]


@pytest.mark.parametrize("text,line,key,reason", BAD)
def test_bad_file_is_refused_naming_file_line_and_key(tmp_path, text, line, key, reason):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert (key is None or f": {key}: " in message) and reason in message, message


def test_unknown_target_is_refused_when_bound_to_the_model(tmp_path, test_model):
    path = tmp_path / "m.toml"
    path.write_text('[midi]\nbend_range = 12\n\n[midi.cc.20]\ntarget = "brightnes"\n')
    mapping = load_mapping(path)
    with pytest.raises(MappingError, match=rf"^{path}:5: midi\.cc\.20\.target: unknown target 'brightnes'.*brightness"):
        mapping.resolve(targets_for(test_model))
    path.write_text('[midi.cc.20]\ntarget = "brightness"\nrange = [0, 2]\n')
    with pytest.raises(MappingError, match=r":3: midi\.cc\.20\.range: \[0\.0, 2\.0\] is outside"):
        load_mapping(path).resolve(targets_for(test_model))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(MappingError, match="nope.toml: cannot read"):
        load_mapping(tmp_path / "nope.toml")


def test_the_follow_section_sets_only_what_it_names():
    from vqsynth.control.follow import FollowSettings

    mapping = parse_mapping('[follow]\nunvoiced = "release"\ntimbre = true\ngate_on_db = -40\n')
    assert mapping.follow == {"unvoiced": "release", "timbre": True, "gate_on_db": -40.0}
    settings = FollowSettings(**mapping.follow)
    assert settings.unvoiced == "release" and settings.gate_off_db == FollowSettings().gate_off_db
    assert parse_mapping("").follow == {}


@pytest.mark.parametrize("policy,pitch,expected", [
    ("clamp", 10, 21), ("clamp", 120, 108), ("fold", 10, 22), ("fold", 120, 108), ("fold", 121, 109 - 12),
    ("ignore", 10, None), ("ignore", 60, 60), ("fold", 60.5, 60.5),
])
def test_out_of_range_note_policy(policy, pitch, expected):
    assert place_pitch(pitch, 21, 108, policy) == expected


def test_docs_tables_render_from_the_registries(test_model):
    settings = settings_markdown()
    assert "`midi.bend_range`" in settings and "`midi.cc.N.curve`" in settings
    targets = targets_markdown(targets_for(test_model))
    assert "| `volume` | 0.5 | 0..1 |" in targets and "| `piano` |" in targets
