"""The server as a user runs it, in the JACK rig: a note through a real MIDI port is heard back."""

import os
import re
import subprocess
import sys
import time

import pytest
from probe import Probe


def start_server(model_dir, *extra, env=None):
    cmd = [sys.executable, "-m", "vqsynth", "serve", "--model", str(model_dir), "--osc-port", "0", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("vqsynth ready"):
            return proc, line
    proc.kill()
    raise AssertionError("server did not get ready:\n" + "".join(lines))


def stop_server(proc):
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture
def server_in_jack(jack_server, test_model_dir):
    proc, ready = start_server(test_model_dir, "--audio", "sounddevice", "--midi-api", "jack",
                               env=dict(os.environ))
    probe = Probe("measure", server=jack_server)
    yield proc, ready, probe
    probe.close()
    out = stop_server(proc)
    assert "Traceback" not in out, out


def test_note_through_jack_midi_is_heard(server_in_jack):
    proc, ready, probe = server_in_jack
    assert "MIDI port 'vqsynth' via jack" in ready
    midi_in = [p for p in probe.find("vqsynth", is_midi=True, is_input=True)]
    audio_out = [p for p in probe.find("", is_output=True) if not p.startswith("system:")
                 and not p.startswith("measure:")]
    assert midi_in and audio_out, (probe.find("", is_midi=True), probe.find(""))
    probe.connect_to(midi_in[0])
    probe.connect_from(audio_out[0])
    time.sleep(0.2)
    before = probe.captured
    latencies = [probe.measure_note(60 + k, 110, wait=0.3) for k in range(3)]
    assert all(lat is not None for lat in latencies), latencies
    # a few ms: the note sounds within the block + constant latency, not after a render round-trip
    assert max(latencies) < 0.05 * probe.sr, latencies
    assert probe.captured > before


def test_server_refuses_a_busy_osc_port(test_model_dir):
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    port = s.getsockname()[1]
    try:
        out = subprocess.run([sys.executable, "-m", "vqsynth", "serve", "--model", str(test_model_dir),
                              "--audio", "null", "--no-midi", "--osc-port", str(port)],
                             capture_output=True, text=True, timeout=60)
    finally:
        s.close()
    assert out.returncode == 2
    assert re.search(rf"OSC port {port}.*already in use", out.stderr), out.stderr
    assert "Traceback" not in out.stderr


def test_dump_osc_prints_one_line_per_message(test_model_dir):
    import socket

    from pythonosc.osc_message_builder import OscMessageBuilder

    proc, ready = start_server(test_model_dir, "--audio", "null", "--no-midi", "--no-discovery", "--dump-osc")
    try:
        port = int(re.search(r"OSC udp [\d.]+:(\d+)", ready).group(1))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for address, args in (("/vqsynth/note/on", [60, 100]), ("/vqsynth/attr/brightness", [0.25])):
            b = OscMessageBuilder(address)
            for a in args:
                b.add_arg(a)
            s.sendto(b.build().dgram, ("127.0.0.1", port))
        s.close()
        lines, deadline = [], time.monotonic() + 10
        while len([x for x in lines if " osc " in x]) < 2 and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        dumped = [x for x in lines if " osc " in x]
        assert "/vqsynth/note/on 60 100" in dumped[0] and "/vqsynth/attr/brightness 0.25" in dumped[1], lines
    finally:
        out = stop_server(proc)
    assert "Traceback" not in out, out


def test_quiet_silences_warnings_about_bad_input(test_model_dir):
    import socket

    for flag, want in (("-q", False), ("-v", True)):
        proc, ready = start_server(test_model_dir, "--audio", "null", "--no-midi", "--no-discovery", flag)
        try:
            port = int(re.search(r"OSC udp [\d.]+:(\d+)", ready).group(1))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"/no/such\x00\x00\x00\x00,\x00\x00\x00", ("127.0.0.1", port))
            s.close()
            time.sleep(0.5)
        finally:
            out = stop_server(proc)
        assert ("unknown address" in out) == want, (flag, out)


def test_an_installation_comes_back_as_it_was(test_model_dir, tmp_path):
    """serve --config and --state: the state saved over OSC (and at the stop) is recalled at the
    next start, as after a reboot."""
    import json

    from rig import OscProbe

    config = tmp_path / "serve.toml"
    state = tmp_path / "state.json"
    config.write_text(f'audio = "null"\nno-midi = true\nno-discovery = true\nstate = "{state}"\n')
    proc, ready = start_server(test_model_dir, "--config", str(config))
    try:
        probe = OscProbe(int(re.search(r"OSC udp [\d.]+:(\d+)", ready).group(1)))
        probe.send_message("/vqsynth/preset", [2])
        probe.send_message("/vqsynth/attr/brightness", [0.8])
        probe.sync()
        assert probe.ask("/vqsynth/state/save", reply="/done") == ["/vqsynth/state/save"]
        probe.close()
    finally:
        stop_server(proc)
    saved = json.loads(state.read_text())
    assert saved["preset"] == 2 and saved["attrs"]["brightness"] == pytest.approx(0.8)
    proc, ready = start_server(test_model_dir, "--config", str(config))
    try:
        probe = OscProbe(int(re.search(r"OSC udp [\d.]+:(\d+)", ready).group(1)))
        assert probe.ask("/vqsynth/status", reply="/status.reply")[-2] == 2
        probe.close()
    finally:
        out = stop_server(proc)
    assert "Traceback" not in out
