"""Fuzzing, CI-sized: hypothesis drives the same targets and oracles perf/fuzz.py runs for millions
of cases (perf/fuzz_targets.py): OSC datagrams, MIDI events, mapping files, model.json.

Derandomized (the same examples every run) so CI is repeatable; the long run explores.
Nothing is mocked: a real Engine, OscServer (replies over real UDP), MidiController, mapping
parser and model loader.
"""

import functools
import math
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perf"))
import fuzz_targets as ft  # noqa: E402

from rig import OscProbe  # noqa: E402
from vqsynth.control.osc_addresses import ADDRESSES  # noqa: E402

def ci(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def osc(test_model, test_drum_model):
    target = ft.OscTarget(test_model, drums=test_drum_model)
    yield target
    target.close()


@pytest.fixture(scope="module")
def midi(test_model):
    return ft.MidiTarget(test_model)


# ------------------------------------------------------------------ OSC

@ci(1500)
@given(st.binary(min_size=1, max_size=400))
def test_any_osc_datagram_is_handled_or_answered_with_fail(osc, data):
    """Raw bytes, and packets built from the bytes (real addresses, any tags, bundles, timetags)."""
    osc(data)


def _value(tag):
    return {"i": st.integers(-2**31, 2**31 - 1), "h": st.integers(-2**63, 2**63 - 1),
            "f": st.floats(width=32), "d": st.floats(), "s": st.text(max_size=40),
            "b": st.binary(min_size=1, max_size=40), "T": st.just(True), "F": st.just(False), "N": st.none()}[tag]


tagged = st.sampled_from("ihfdsbTFN").flatmap(lambda t: st.tuples(st.just(t), _value(t)))
rows = st.sampled_from(ADDRESSES)


def _address(row):
    name = "snare" if row.address.startswith("/vqsynth/drums/class/") else "brightness"
    return row.address.replace("<name>", name).replace("<part>", "3")


@ci(300)
@given(rows, st.lists(tagged, max_size=8))
def test_wrong_argument_counts_are_refused_naming_the_count(osc, row, args):
    required = sum(1 for a in row.args if not a.optional)
    variadic = bool(row.args) and row.args[-1].many
    if required <= len(args) and (variadic or len(args) <= len(row.args)):
        args = [] if variadic else [("i", 0)] * (len(row.args) + 1)  # make the count wrong
    before = osc.server.counters["bad arguments"]
    osc(ft.osc_message(_address(row), *args))
    assert osc.server.counters["bad arguments"] == before + 1
    fails = osc.fails
    assert len(fails) == 1 and "wrong number of arguments" in fails[0][1][1], fails


@functools.lru_cache(maxsize=1)
def _wav():
    """A real recording for /vqsynth/tokens/wav: a tone with a noisy attack, 0.3 s."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(4800) / 16000
    x = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.2 * rng.standard_normal(t.size) * np.exp(-t * 20)
    path = Path(tempfile.mkdtemp(prefix="vqs-fuzz-")) / "tone.wav"
    sf.write(path, x, 16000)
    return path


def _good_args(row, data, model):
    """Arguments the table says are fine, drawn by hypothesis."""
    out = []
    for a in row.args:
        if a.optional and data.draw(st.booleans()):
            break
        if a.kind == "string" and row.address.endswith("/wav"):
            out.append(str(_wav()))
            break  # an id would have to name a sounding note
        elif row.address == "/vqsynth/drums/kit":
            out.append(data.draw(st.sampled_from([0, 1, "Test Standard", "test e"])))
        elif row.address == "/vqsynth/drums/hit" and a.name == "key":
            out.append(data.draw(st.sampled_from([36, 38, 42, 44, 46, 49])))  # the test kit's keys
        elif row.address == "/vqsynth/follow/unvoiced":
            out.append(data.draw(st.sampled_from(["hold", "release"])))
        elif row.address == "/vqsynth/follow/mode":
            out.append(data.draw(st.sampled_from(["follow", "gate"])))
        elif "string" in a.kind:
            out.append(data.draw(st.sampled_from([0, 1, 3, "random-0", "random-3"])))
        elif a.many and row.address.endswith("tokens"):
            out += data.draw(st.lists(st.integers(0, model.n_tokens - 1), min_size=1, max_size=32))
        elif a.many:
            out += data.draw(st.one_of(st.lists(st.integers(0, 2**20), min_size=1, max_size=1),
                                       st.lists(st.floats(-3, 3, width=32), min_size=model.z_size,
                                                max_size=model.z_size)))
        else:
            lo, hi = a.range or (0, 1)
            out.append(data.draw(st.integers(int(lo), int(min(hi, 2**20))) if a.kind == "int"
                                 else st.floats(lo, hi, width=32)))
    return out


@ci(300)
@given(rows, st.sampled_from([math.nan, math.inf, -math.inf]), st.data())
def test_nan_and_inf_are_refused_wherever_a_number_goes(osc, row, bad, data):
    args = _good_args(row, data, osc.engine.model)
    numeric = [i for i, v in enumerate(args) if not isinstance(v, str)]
    assume(numeric)
    args[data.draw(st.sampled_from(numeric))] = ("d", bad)
    osc(ft.osc_message(_address(row), *args))
    fails = osc.fails
    assert len(fails) == 1 and "finite" in fails[0][1][1], (row.address, args, fails)


@ci(400)
@given(rows, st.data())
def test_every_well_formed_message_is_accepted(osc, row, data):
    """The converse: no over-strict refusal of good input (numbers as ints or floats, optional args)."""
    assume(row.address != "/vqsynth/learn")  # its string is a parameter name, and it arms learn: tests/test_learn.py
    assume(not row.address.startswith("/vqsynth/state/"))  # they need serve --state: tests/test_osc_loops.py
    args = _good_args(row, data, osc.engine.model)
    if data.draw(st.booleans()):  # Max, Pd and TouchOSC send floats
        args = [float(a) if isinstance(a, int) else a for a in args]
    osc(ft.osc_message(_address(row), *args))
    assert osc.fails == [], (row.address, args)


@ci(200)
@given(st.floats(-1e7, 1e7), st.integers(1, 10))
def test_bundle_timetags_far_past_and_far_future(osc, offset, depth):
    packet = ft.osc_message("/vqsynth/cc", 74, 64)
    for _ in range(depth):
        packet = ft.osc_bundle(ft.ntp(time.time() + offset), packet)
    c = osc.server.counters
    before = {k: c[k] for k in ("too far ahead", "late", "malformed", "messages")}
    osc(packet)
    if depth > 8:
        assert c["malformed"] == before["malformed"] + 1  # nested deeper than the parser allows
    elif offset > osc.server.max_ahead + 1:
        assert c["too far ahead"] == before["too far ahead"] + 1
    elif offset < -1:
        assert c["late"] == before["late"] + 1 and c["messages"] == before["messages"] + 1


def test_huge_strings_blobs_and_bundles_get_a_reply_that_fits(osc):
    big = "x" * 60000
    for packet in (ft.osc_message("/vqsynth/preset", big), ft.osc_message("/" + big),
                   ft.osc_message("/vqsynth/note/on", ("b", b"\0" * 60000), 1),
                   ft.osc_bundle(1, *[ft.osc_message("/vqsynth/note/on", 200, 1)] * 3000)):
        osc(packet)  # the oracle checks one /fail per refusal, each fitting a datagram (else send errors)
    assert osc.server.counters["send errors"] == 0


def test_a_z_the_generator_cannot_take_is_refused(osc):
    before = osc.engine.z.copy()
    osc(ft.osc_message("/vqsynth/z", *[1e9] * osc.engine.model.z_size))  # the test model outputs NaN from 1e8
    assert len(osc.fails) == 1 and "z values must be within" in osc.fails[0][1][1]
    assert np.array_equal(osc.engine.z, before)


def test_a_generator_that_blows_up_never_reaches_the_output(test_model):
    """Whatever reaches the model (here a z the OSC table refuses, set through the engine's API), a
    NaN voice is silenced, counted and ended: the other voices and the output stay finite."""
    from vqsynth.engine.engine import Engine

    for cache in (False, True):
        engine = Engine(test_model, attack_cache=cache, polyphony=4)
        engine.note_on(48, 100)
        engine.set_z([1e9] * test_model.z_size)
        if cache:
            engine.build_attack_cache()
        engine.note_on(60, 100)
        out = np.zeros(engine.block_size, dtype=np.float32)
        for _ in range(400):
            engine.render_step(engine.clock.now_sample() + engine.lead)
            engine.process(out)
            assert np.isfinite(out).all()
        assert engine.counters["nonfinite"] >= 1
        assert 48.0 in [n.pitch for n in engine.slots.notes if n is not None]  # the healthy voice plays on


def test_osc_over_real_udp_stays_up_under_fuzzed_packets(test_model):
    """The receiving thread itself: 600 fuzzed datagrams over loopback, then it still answers."""
    from vqsynth.control.osc_server import OscServer

    target = ft.OscTarget(test_model)  # for its engine; the server under test is a started one
    with OscServer(target.engine, target.controller, host="127.0.0.1", port=0,
                   files_dir=tempfile.gettempdir()) as server:
        probe = OscProbe(server.port)
        rng = np.random.default_rng(7)
        for k in range(600):
            raw = rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
            probe.send_raw(ft.structured_osc(raw) if k % 2 else raw)
            if k % 100 == 99:
                probe.sync(timeout=5.0)
        replies = probe.sync(timeout=5.0)
        refused = sum(server.counters[k] for k in ft.FAIL_COUNTERS)
        assert server.counters["errors"] == 0 and server.counters["packets"] == 607
        assert server.threads[0].is_alive() and refused > 300
        assert probe.status()["sample_rate"] == target.engine.sample_rate
        assert all(len(r[1]) == 2 and r[1][1] for r in replies if r[0] == "/fail")
        probe.close()
    target.close()


# ------------------------------------------------------------------ MIDI

def test_every_status_byte_with_every_length_is_handled_or_counted(midi):
    """All 256 first bytes x 0..3 data bytes (and a SysEx each way): exhaustive, no sampling."""
    for status in range(256):
        for data in ([], [60], [60, 100], [60, 100, 1], [0x80], [60, 0xF7]):
            midi(bytes([1 + len(data), status, *data]))
    midi(bytes([6, 0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7]))  # identity request: a SysEx, handled (ignored)
    midi(bytes([3, 0xF0, 0x7E, 0x7F]))  # unterminated SysEx: malformed
    assert midi.controller.counters["handler errors"] == 0


@ci(600)
@given(st.lists(st.binary(min_size=0, max_size=6), max_size=24))
def test_any_run_of_midi_events_is_handled_or_counted(midi, events):
    midi(b"".join(bytes([len(e)]) + e for e in events))


status_and_data = st.tuples(st.integers(0x80, 0xEF), st.integers(0, 127), st.integers(0, 127))


@ci(300)
@given(st.lists(status_and_data, max_size=40), st.integers(0, 3))
def test_running_status_and_truncation_never_reach_the_engine_as_messages(midi, messages, cut):
    """A raw byte stream (running status, a message cut short) is never read here: JACK and RtMidi
    hand over whole messages. Fragments of such a stream arrive as malformed events: counted."""
    stream = bytearray()
    for status, a, b in messages:
        stream += bytes([status, a, b]) if stream[-3:-2] != bytes([status]) else bytes([a, b])
    chunk = max(len(stream) - cut, 0)
    midi(bytes([min(chunk, 23)]) + bytes(stream[:min(chunk, 23)]))


# ------------------------------------------------------------------ mapping files

def _toml_value(v):
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


scalar = st.one_of(st.integers(-10**6, 10**6), st.floats(), st.booleans(),
                   st.sampled_from(["volume", "brightness", "warmth", "nope", "lin", "exp", "log", "clamp",
                                    "fold", "ignore", ""]), st.text(max_size=8))
value = st.one_of(scalar, st.lists(scalar, max_size=3))
binding = st.dictionaries(st.sampled_from(["target", "range", "curve", "smooth_ms", "input", "other"]), value,
                          max_size=5)
cc_key = st.one_of(st.integers(0, 130).map(str), st.sampled_from(["-1", "x", "²", "٣", "07"]))
osc_key = st.sampled_from(["/fader", "/vqsynth/x", "noslash", "/a/b", "/1/fader1", ""])


def _mapping_text(midi_settings, ccs, oscs, top):
    lines = []
    for k, v in top.items():
        lines.append(f"{k} = {_toml_value(v)}")
    lines.append("[midi]")
    lines += [f"{k} = {_toml_value(v)}" for k, v in midi_settings.items()]
    for num, b in ccs.items():
        lines.append(f'[midi.cc."{num}"]')
        lines += [f"{k} = {_toml_value(v)}" for k, v in b.items()]
    for address, b in oscs.items():
        lines.append(f'[osc."{address}"]')
        lines += [f"{k} = {_toml_value(v)}" for k, v in b.items()]
    return "\n".join(lines) + "\n"


@ci(500)
@given(st.dictionaries(st.sampled_from(["bend_range", "out_of_range", "cc_typo"]), value, max_size=3),
       st.dictionaries(cc_key, binding, max_size=4), st.dictionaries(osc_key, binding, max_size=2),
       st.dictionaries(st.sampled_from(["title", "osc_port"]), scalar, max_size=1))
def test_any_mapping_file_loads_or_is_refused_naming_file_line_and_key(test_model, midi_settings, ccs, oscs, top):
    target = ft.MappingTarget(test_model)
    target(_mapping_text(midi_settings, ccs, oscs, top).encode())


@ci(300)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_mapping_file(test_model, data):
    ft.MappingTarget(test_model)(ft.mapping_seeds()[0][:200] + data)


# ------------------------------------------------------------------ model.json

@pytest.fixture(scope="module")
def model_json(test_model_dir):
    target = ft.ModelJsonTarget(test_model_dir)
    yield target
    target.close()


@ci(150)
@given(st.binary(min_size=1, max_size=60))
def test_any_model_json_loads_or_is_refused_naming_the_file(model_json, data):
    model_json(b"\x01" + data)  # the valid file with parts replaced, removed or retyped


@ci(100)
@given(st.binary(max_size=200))
def test_any_bytes_as_model_json(model_json, data):
    model_json(b"\x00" + data)


def test_numbers_json_allows_but_a_model_cannot_use_are_refused(model_json):
    import json

    for field, bad in (("sample_rate", "1e999"), ("sample_rate", "NaN"), ("hop", "-Infinity"), ("z_size", "1e300")):
        meta = json.loads(json.dumps(model_json.valid))
        meta[field] = "@@"
        refused = model_json.outcomes["refused"]
        model_json(b"\x00" + json.dumps(meta).replace('"@@"', bad).encode())
        assert model_json.outcomes["refused"] == refused + 1, (field, bad)
    meta = json.loads(json.dumps(model_json.valid))
    meta["attributes"][0]["default"] = "@@"
    refused = model_json.outcomes["refused"]
    model_json(b"\x00" + json.dumps(meta).replace('"@@"', "NaN").encode())  # would make every voice NaN
    assert model_json.outcomes["refused"] == refused + 1


def test_packets_are_built_the_way_the_oracles_assume():
    """The helpers themselves: a bundle's element sizes and the structured builder's output."""
    b = ft.osc_bundle(1, b"/a\x00\x00,\x00\x00\x00")
    assert b[:8] == b"#bundle\x00" and struct.unpack(">i", b[16:20])[0] == 8
    assert ft.midi_well_formed(bytes([0x90, 60, 100])) and not ft.midi_well_formed(bytes([0x90, 60]))
    assert ft.midi_well_formed(bytes([0xF0, 1, 0xF7])) and not ft.midi_well_formed(bytes([0xF0, 0x80, 0xF7]))
    assert not ft.midi_well_formed(bytes([60, 100])) and ft.midi_well_formed(bytes([0xF8]))
