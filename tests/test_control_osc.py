"""OSC end to end: real UDP on loopback into the real Engine (null audio backend), sent by
python-osc's client, by liblo's oscsend and by a headless Pure Data patch."""

import math
import shutil
import socket
import struct
import subprocess
import time

import numpy as np
import pytest
from pythonosc.osc_bundle_builder import OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from rig import OscProbe, wait_until
from vqsynth.control.osc_addresses import ADDRESSES, addresses_markdown
from vqsynth.control.osc_server import OscPortInUse, OscServer


def message(address, *args) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def bundle(timetag, *messages):
    b = OscBundleBuilder(timetag)
    for address, args in messages:
        m = OscMessageBuilder(address)
        for a in args:
            m.add_arg(a)
        b.add_content(m.build())
    return b.build().dgram


def test_notes_status_and_sync_from_python_osc(live, server, probe):
    probe.send_message("/vqsynth/note/on", [60, 100])
    probe.send_message("/vqsynth/note/on", [64.0, 90.0, 7.0])  # floats, as Max/Pd/TouchOSC send them
    probe.send_message("/vqsynth/attr/brightness", 0.25)
    assert probe.sync() == []  # nothing to answer before the barrier
    status = probe.status()
    assert status["voices"] == 2 and status["sample_rate"] == 48000 and status["latency_ms"] > 0
    assert live.status()["attrs"]["brightness"] == 0.25
    probe.send_message("/vqsynth/note/off", [64, 7])
    probe.send_message("/vqsynth/note/off", 60)
    probe.sync()
    assert wait_until(lambda: probe.status()["voices"] == 0, timeout=3.0)
    assert server.counters["messages"] >= 6 and sum(server.counters[k] for k in ("bad arguments", "rejected")) == 0


def test_replies_done_and_preset_by_name_or_number(live, probe):
    assert probe.ask("/vqsynth/preset", "random-2", reply="/done") == ["/vqsynth/preset"]
    assert live.status()["preset"] == 2
    probe.ask("/vqsynth/preset", 1.0, reply="/done")
    assert live.status()["preset"] == 1
    assert probe.ask("/vqsynth/preset", "nope", reply="/fail")[0] == "/vqsynth/preset"
    probe.ask("/vqsynth/z", 1234, reply="/done")
    assert live.preset is None
    probe.ask("/vqsynth/z", *[0.5] * live.model.z_size, reply="/done")
    assert np.allclose(live.z, 0.5)


def test_bundles_are_scheduled_at_their_timetag_and_late_ones_play_at_once(live, server, probe):
    ahead = 0.4
    sent_at = time.monotonic()
    probe.send_raw(bundle(time.time() + ahead, ("/vqsynth/note/on", [60, 100]), ("/vqsynth/note/on", [67, 100])))
    probe.sync()
    assert live.counters["notes"] == 0 and len(live.scheduled) == 2  # waiting in the engine, not here
    expected = live.clock.position(sent_at + ahead)
    assert all(abs(pos - expected) < 0.005 * live.sample_rate for pos, *_ in live.scheduled)
    probe.send_raw(bundle(time.time() - 1.0, ("/vqsynth/note/on", [72, 100])))
    probe.sync()
    assert live.counters["notes"] == 1 and server.counters["late"] == 1
    assert wait_until(lambda: live.counters["notes"] == 3, timeout=2.0)
    assert time.monotonic() - sent_at > ahead - 0.05


def test_a_bundle_too_far_ahead_is_refused(live, probe):
    probe.send_raw(bundle(time.time() + 3600, ("/vqsynth/note/on", [60, 100])))
    address, why = probe.ask("/vqsynth/status", reply="/fail")
    assert address == "/vqsynth/note/on" and "ahead" in why and not live.scheduled


def test_datagrams_above_8192_bytes_arrive_whole(live, probe):
    tokens = [i % 16 for i in range(4000)]  # 16 kB of arguments
    assert probe.ask("/vqsynth/tokens", *tokens, reply="/done") == ["/vqsynth/tokens"]
    assert live.fixed_tokens == tokens


def test_an_envelope_from_a_wav_file(live, tmp_path):
    import soundfile as sf

    sr = 44100  # not the model's rate, and stereo: resampled and mixed down on the way in
    t = np.arange(int(1.5 * sr)) / sr
    tone = np.sin(2 * np.pi * 220 * t) * np.clip((t - 0.3) / 0.02, 0, 1) * (t < 1.2)
    path = tmp_path / "envelope.wav"
    sf.write(path, np.stack([tone, tone], 1) * 0.5, sr)
    model = live.model
    tokens = model.encode_file(path)
    assert abs(len(tokens) - 1.5 * model.sample_rate / model.hop) <= 1
    with OscServer(live, host="127.0.0.1", port=0, files_dir=tmp_path) as server:
        probe = OscProbe(server.port)
        try:
            for name in (str(path), "envelope.wav"):  # absolute inside the folder, or relative to it
                done = probe.ask("/vqsynth/tokens/wav", name, reply="/done")
                assert done[0] == "/vqsynth/tokens/wav" and done[1] == len(live.fixed_tokens)
            assert live.fixed_tokens == tokens[len(tokens) - done[1]:].tolist()  # from the first sounding frame
            assert not model.prior.silence[live.fixed_tokens[0]]
        finally:
            probe.close()


def _nested(depth):
    inner = message("/vqsynth/panic")
    for _ in range(depth):
        inner = b"#bundle\x00" + struct.pack(">II", 0, 1) + struct.pack(">i", len(inner)) + inner
    return inner


MALFORMED = [
    ("random bytes", bytes(np.random.default_rng(1).integers(0, 256, 64, dtype=np.uint8)), "malformed"),
    ("empty", b"", "malformed"),
    ("truncated args", message("/vqsynth/note/on", 60, 100)[:-4], "malformed"),
    ("bad utf-8 address", b"/vq\xff\xfe\x00\x00\x00,\x00\x00\x00", "malformed"),
    ("unknown type tag", b"/vqsynth/sync\x00\x00\x00,c\x00\x00\x00\x00\x00A", "malformed"),
    ("bundle element too big", b"#bundle\x00" + struct.pack(">IIi", 0, 1, 4096) + b"/x\x00\x00", "malformed"),
    ("bundles nested 20 deep", _nested(20), "malformed"),
    ("strings for numbers", message("/vqsynth/note/on", "C4", "loud"), "bad arguments"),
    ("too few arguments", message("/vqsynth/note/on", 60), "bad arguments"),
    ("too many arguments", message("/vqsynth/note/off", 60, 1, 2, 3), "bad arguments"),
    ("NaN", message("/vqsynth/attr/warmth", math.nan), "bad arguments"),
    ("inf", message("/vqsynth/note/on", math.inf, 100), "bad arguments"),
    ("fractional id", message("/vqsynth/sync", 1.5), "bad arguments"),
    ("velocity out of range", message("/vqsynth/note/on", 60, 300), "bad arguments"),
    ("unknown attribute", message("/vqsynth/attr/loudness", 0.5), "rejected"),
    ("attribute out of range", message("/vqsynth/attr/warmth", 7.0), "rejected"),
    ("token out of range", message("/vqsynth/tokens", 99), "rejected"),
    ("unknown address", message("/vqsynth/nope", 1), "unknown address"),
]


@pytest.mark.parametrize("what,dgram,counter", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_bad_packets_get_fail_and_a_counter_and_the_server_goes_on(live, server, probe, what, dgram, counter):
    probe.send_raw(dgram)
    replies = probe.sync()
    assert [r[0] for r in replies] == ["/fail"], replies
    assert isinstance(replies[0][1][1], str) and replies[0][1][1], replies
    assert server.counters[counter] == 1, server.counters
    assert probe.status()["sample_rate"] == 48000
    assert server.threads[0].is_alive()


def test_a_storm_of_notes_leaves_no_voice_hanging(live, server, probe):
    rng = np.random.default_rng(0)
    for i, pitch in enumerate(rng.integers(40, 90, 300)):
        probe.send_raw(bundle(0, ("/vqsynth/note/on", [int(pitch), 100]), ("/vqsynth/note/off", [int(pitch)])))
        if i % 50 == 49:
            probe.sync()  # keep within the socket buffer: this is about order, not loss
    probe.sync()
    assert live.counters["notes"] == 300
    assert wait_until(lambda: live.status()["voices"] == 0, timeout=3.0)


def test_mapped_addresses_and_cc_go_through_the_mapping(live, probe):
    probe.send_message("/1/fader1", 0.5)  # TouchOSC's layout, bound in mappings/default.toml
    probe.send_message("/vqsynth/cc", [77, 127])  # CC77 -> warmth
    probe.send_message("/vqsynth/cc", [64, 127, 3])  # sustain on MIDI channel 3
    probe.sync()
    assert live.status()["attrs"]["brightness"] == 0.5 and live.status()["attrs"]["warmth"] == 1.0
    assert live.sustain_on[2] and not live.sustain_on[0]


def pushes(probe, seconds):
    """Everything pushed to the probe during `seconds`."""
    got, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        reply = probe.next_reply(timeout=left)
        if reply:
            got.append(reply)
    return got


def test_a_subscriber_gets_the_whole_state_then_changes_at_its_rate(live, server, probe):
    assert probe.ask("/vqsynth/notify", 1, 20, reply="/done") == ["/vqsynth/notify"]
    first = pushes(probe, 0.3)
    addresses = {a for a, _ in first}
    assert {f"/vqsynth/attr/{n}" for n in live.model.attr_names} | {"/vqsynth/attr/volume"} <= addresses
    assert ("/vqsynth/state/preset", [0, live.model.presets[0]]) in first
    server.controller.control_change(0, 74, 127)  # MIDI moves brightness: the TouchOSC fader bound to it follows
    server.controller.set_target("volume", 1.0)
    server.controller.control_change(2, 10, 0)  # channel 3's part panned hard left
    probe.send_message("/vqsynth/note/on", [60, 100])
    got = pushes(probe, 1.0)
    assert ("/vqsynth/attr/brightness", [1.0]) in got and ("/1/fader1", [1.0]) in got
    assert ("/1/fader5", [pytest.approx(1.0)]) in got  # through the inverse of its exp curve
    assert ("/vqsynth/state/part/level", [3, 100.0, 127.0, -1.0]) in got  # part 3: volume, expression, pan
    levels = [args for a, args in got if a == "/vqsynth/level"]
    assert 15 <= len(levels) <= 25, len(levels)  # 20 a second, as asked
    assert any(voices == 1 and db > -120 for db, voices in levels), levels
    assert not [a for a, _ in got if a == "/vqsynth/attr/warmth"]  # only what changed


def test_a_sweep_is_merged_to_the_subscriber_rate_and_the_last_value_wins(live, server, probe):
    probe.ask("/vqsynth/subscribe", 1, 4, reply="/done")
    pushes(probe, 0.4)  # the initial state
    for v in range(128):
        server.controller.control_change(0, 77, v)  # CC77 -> warmth, 128 moves at once
    got = [args[0] for a, args in pushes(probe, 1.0) if a == "/vqsynth/attr/warmth"]
    assert 1 <= len(got) <= 2 and got[-1] == 1.0, got
    levels = [a for a, _ in pushes(probe, 1.0) if a == "/vqsynth/level"]
    assert 3 <= len(levels) <= 5, levels


def test_pushes_to_another_port_until_the_client_leaves(live, server, probe):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(1.0)
    port = listener.getsockname()[1]
    try:
        probe.ask("/vqsynth/notify", 1, 10, port, reply="/done")
        assert listener.recv(65535).startswith(b"/vqsynth/")  # Max's udpreceive would get this
        assert list(server.subscribers) == [("127.0.0.1", port)]
        probe.ask("/vqsynth/notify", 0, 10, port, reply="/done")
        assert server.subscribers == {}
        time.sleep(0.3)
        listener.settimeout(0.0)
        while True:  # drain what was already in flight
            try:
                listener.recv(65535)
            except BlockingIOError:
                break
        assert pushes(probe, 0.3) == []
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.recv(65535)
    finally:
        listener.close()


def test_port_in_use_is_a_clear_error(live):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    with pytest.raises(OscPortInUse, match=rf"OSC port {port} .* already in use"):
        OscServer(live, host="127.0.0.1", port=port).start()
    taken.close()


@pytest.mark.rig
@pytest.mark.skipif(shutil.which("oscsend") is None, reason="liblo-tools not installed")
def test_liblo_oscsend(live, server, probe):
    port = str(server.port)
    for args in (["/vqsynth/attr/roughness", "f", "0.125"], ["/vqsynth/note/on", "ii", "64", "80"],
                 ["/vqsynth/preset", "s", "random-3"], ["/vqsynth/note/on", "fff", "65", "80", "nan"]):
        subprocess.run(["oscsend", "127.0.0.1", port, *args], check=True, timeout=10)
    probe.sync()
    status = live.status()
    assert status["attrs"]["roughness"] == 0.125 and status["preset"] == 3 and status["notes"] == 1
    assert server.counters["bad arguments"] == 1  # the NaN id


PD_PATCH = """#N canvas 0 50 450 300 10;
#X obj 10 10 loadbang;
#X obj 10 30 t b b;
#X msg 10 60 connect 127.0.0.1 {port};
#X msg 100 60 set vqsynth attr brightness \\, 0.75 \\, set vqsynth note on \\, 64 90 \\, set vqsynth cc \\, 7 127;
#X obj 100 90 oscformat;
#X obj 100 110 list prepend send;
#X obj 100 130 list trim;
#X obj 10 160 netsend -u -b;
#X obj 200 30 delay 100;
#X msg 200 60 \\; pd quit;
#X connect 0 0 1 0;
#X connect 1 1 2 0;
#X connect 1 0 3 0;
#X connect 2 0 7 0;
#X connect 3 0 4 0;
#X connect 4 0 5 0;
#X connect 5 0 6 0;
#X connect 6 0 7 0;
#X connect 0 0 8 0;
#X connect 8 0 9 0;
"""


@pytest.mark.rig
@pytest.mark.skipif(shutil.which("pd") is None, reason="puredata-core not installed")
def test_pure_data_oscformat_netsend(live, server, probe, tmp_path):
    patch = tmp_path / "send.pd"
    patch.write_text(PD_PATCH.format(port=server.port))
    subprocess.run(["pd", "-nogui", "-nosound", "-nomidi", "-stderr", str(patch)], check=True, timeout=20)
    probe.sync()
    status = live.status()
    assert status["attrs"]["brightness"] == 0.75 and status["notes"] == 1 and status["parts"][0]["volume"] == 127
    assert server.counters["messages"] == 4  # three from Pd, the sync


def test_readme_table_lists_every_address():
    table = addresses_markdown()
    assert all(f"`{row.address}`" in table for row in ADDRESSES)
    assert "pitch `i\\|f` velocity `i\\|f` [id `i\\|f`]" in table


def test_state_feedback_tells_the_instrument(live, server, probe):
    """/vqsynth/state/z carries the z, a z set by hand makes the preset -1, /status.reply and
    OSCQuery tell the current preset."""
    from vqsynth.control.discovery import find, namespace

    probe.send_message("/vqsynth/notify", [1, 50])
    probe.send_message("/vqsynth/preset", [1])
    time.sleep(0.3)
    probe.send_message("/vqsynth/z", [42])
    time.sleep(0.3)
    seen = probe.sync()
    z_pushes = [args for address, args in seen if address == "/vqsynth/state/z"]
    assert z_pushes and len(z_pushes[-1]) == live.model.z_size
    presets = [args for address, args in seen if address == "/vqsynth/state/preset"]
    assert presets[-1] == [-1, "(custom z)"]
    reply = probe.ask("/vqsynth/status", reply="/status.reply")
    assert reply[-2:] == [-1, "(custom z)"]
    probe.send_message("/vqsynth/preset", [2])
    probe.sync()
    assert probe.ask("/vqsynth/status", reply="/status.reply")[-2:] == [2, live.model.presets[2]]
    node = find(namespace(server), "/vqsynth/preset")
    assert node["VALUE"] == [2] and node["RANGE"][0]["VALS"] == list(live.model.presets)


def test_a_full_scheduler_refuses_a_bundle_with_fail(live, server, probe, monkeypatch):
    """The heap of events timed for later is bounded: past it, a bundle's note is refused, counted
    and told, and the server goes on (it was unbounded: 1 M note-ons took 184 MB)."""
    import vqsynth.engine.engine as engine_module

    monkeypatch.setattr(engine_module, "MAX_SCHEDULED", 4)
    later = time.time() + 20.0
    for k in range(5):
        probe.send_raw(bundle(later + k * 0.01, ("/vqsynth/note/on", [60 + k, 100])))
    replies = probe.sync()
    fails = [args for address, args in replies if address == "/fail"]
    assert len(fails) == 1 and "scheduler is full" in fails[0][1], replies
    assert len(live.scheduled) == 4 and live.counters["scheduled_refused"] == 1


def test_parts_over_osc(live, server, probe):
    k = live.model.attr_names.index("brightness")
    probe.send_message("/vqsynth/part/3/preset", [2])  # recalls its attributes on part 3 only
    probe.send_message("/vqsynth/part/3/attr/brightness", [0.9])
    probe.send_message("/vqsynth/part/3/pan", [-1.0])
    probe.send_message("/vqsynth/part/3/volume", [80])
    probe.send_message("/vqsynth/part/3/note/on", [60, 100, 5])
    probe.send_message("/vqsynth/part/17/volume", [80])
    probe.send_message("/vqsynth/part/3/attr/volume", [0.5])
    replies = probe.sync()
    fails = [args for address, args in replies if address == "/fail"]
    assert [f[0] for f in fails] == ["/vqsynth/part/17/volume", "/vqsynth/part/3/attr/volume"], replies
    assert "outside 1..16" in fails[0][1] and "unknown attribute" in fails[1][1]
    part = live.parts[2]
    assert (part.preset, part.pan, part.volume) == (2, -1.0, 80) and live.parts[0].preset == 0
    assert live.channel_attr_target[2, k] == pytest.approx(0.9) and np.isnan(live.channel_attr_target[0, k])
    notes = [n for n in live.slots.notes if n is not None]
    assert [(n.channel, n.note_id) for n in notes] == [(2, 5)]
