"""MIDI learn: over OSC into a live engine, and end to end from the `vqsynth learn` CLI to a real
`vqsynth serve` whose JACK client reads the knob's CC in its process callback."""

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
import rtmidi

from rig import OscProbe, wait_until
from vqsynth.control.learn import MidiLearn, save_learned
from vqsynth.control.mapping import DEFAULT_MAPPING, MappingError, load_mapping, targets_for
from vqsynth.control.osc_server import OscServer


def test_learn_over_osc_binds_saves_and_reports(live, tmp_path):
    path = tmp_path / "mine.toml"
    with OscServer(live, host="127.0.0.1", port=0, learn_file=path) as server:
        probe = OscProbe(server.port)
        ctl = server.controller
        assert probe.ask("/vqsynth/learn", "warmth", reply="/done") == ["/vqsynth/learn"]
        ctl.control_change(0, 64, 127)  # the sustain pedal is not learnable: MIDI fixes it
        ctl.control_change(4, 20, 100)  # CC20 on channel 5 is the knob
        assert probe.ask("/vqsynth/status", reply="/vqsynth/learned") == ["warmth", 20, 5, str(path)]
        assert ctl.mapping.cc[20].target == "warmth" and 77 not in ctl.mapping.cc  # CC77 was warmth's
        ctl.control_change(0, 20, 127)
        assert live.status()["attrs"]["warmth"] == 1.0
        saved = load_mapping(path)
        assert saved.cc[20].target == "warmth" and 77 not in saved.cc and saved.cc[74].target == "brightness"
        assert "# sound controller 5" in path.read_text()  # the default file's comments came along
        assert probe.ask("/vqsynth/learn", "loudness", reply="/fail")[1].startswith("unknown parameter 'loudness'")
        assert server.counters["rejected"] == 1
        probe.close()


def test_learn_times_out_or_is_cancelled_with_a_reason(live, tmp_path):
    with OscServer(live, host="127.0.0.1", port=0, learn_file=tmp_path / "m.toml") as server:
        probe = OscProbe(server.port)
        MidiLearn(server.controller, "depth", tmp_path / "m.toml", done=None,
                  failed=lambda why: probe.send_message("/vqsynth/sync", 99) if "0.2 s" in why else None,
                  timeout=0.2).start()
        assert wait_until(lambda: server.controller.learner is None, timeout=2.0)
        assert probe.next_reply() == ("/synced", [99])
        probe.ask("/vqsynth/learn", "depth", reply="/done")
        probe.send_message("/vqsynth/learn", "off")
        replies = [probe.next_reply(), probe.next_reply()]
        assert ("/done", ["/vqsynth/learn"]) in replies and ("/fail", ["/vqsynth/learn", "learning depth was cancelled"]) in replies
        assert not (tmp_path / "m.toml").exists() and server.counters["learn failures"] == 1
        probe.close()


def test_a_file_learn_cannot_edit_is_left_alone(tmp_path, test_model):
    path = tmp_path / "inline.toml"
    text = '[midi]\ncc = { 74 = { target = "brightness" } }\n'
    path.write_text(text)
    with pytest.raises(MappingError, match="bind CC 20 to brightness there by hand"):
        save_learned(path, "", 20, "brightness", targets_for(test_model))
    assert path.read_text() == text
    fresh = tmp_path / "new" / "m.toml"
    mapping = save_learned(fresh, DEFAULT_MAPPING.read_text(), 21, "volume", targets_for(test_model))
    assert mapping.cc[21].target == "volume" and 7 not in mapping.cc and fresh.exists()


@pytest.mark.rig
def test_cli_learn_against_a_served_instrument_in_jack(jack_server, test_model_dir, tmp_path):
    from test_server_rig import start_server, stop_server

    path = tmp_path / "learned.toml"
    proc, ready = start_server(test_model_dir, "--audio", "jack", "--learn-file", str(path))
    osc_port = int(re.search(r"OSC udp [\d.]+:(\d+)", ready).group(1))
    http_port = int(re.search(r"OSCQuery http://[\d.]+:(\d+)", ready).group(1))
    knob = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="knobs")
    try:
        knob.open_port(next(i for i, p in enumerate(knob.get_ports()) if "midi_in" in p and p.startswith("vqsynth")))
        cli = subprocess.Popen([sys.executable, "-m", "vqsynth", "learn", "roughness", "--port", str(osc_port),
                                "--timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert cli.stdout.readline().startswith("move a control")
        knob.send_message([0xB2, 21, 30])  # CC21 on channel 3
        out = cli.communicate(timeout=20)[0]
        assert cli.returncode == 0 and f"roughness <- CC 21 (it came on channel 3); saved to {path}" in out, out
        def roughness():
            url = f"http://127.0.0.1:{http_port}/vqsynth/attr/roughness?VALUE"
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())["VALUE"][0]
        deadline = time.monotonic() + 10
        while roughness() != 1.0 and time.monotonic() < deadline:
            knob.send_message([0xB0, 21, 127])  # the knob turned (again: a loaded JACK rig may drop one)
            time.sleep(0.5)
        assert roughness() == 1.0
        assert load_mapping(path).cc[21].target == "roughness" and 1 not in load_mapping(path).cc  # CC1 was roughness'
    finally:
        knob.delete()
        out = stop_server(proc)
    assert "Traceback" not in out, out


def test_learning_keeps_the_files_comments_and_the_bindings_other_keys(tmp_path, test_model):
    """Found by hand: the comment heading the next section was deleted, and the user's curve lost."""
    from vqsynth.control.learn import save_learned
    from vqsynth.control.mapping import targets_for

    path = tmp_path / "mapping.toml"
    path.write_text('# my controller\n\n[midi.cc.74]\ntarget = "brightness"\ncurve = "exp"\nrange = [0.2, 0.9]\n'
                    'smooth_ms = 80\n\n# --- the mod wheel: keep this note ---\n[midi.cc.1]\ntarget = "warmth"\n')
    mapping = save_learned(path, "", 21, "brightness", targets_for(test_model))
    text = path.read_text()
    assert "# --- the mod wheel: keep this note ---\n[midi.cc.1]" in text
    assert "# my controller" in text and "[midi.cc.74]" not in text
    b = mapping.cc[21]
    assert b.target == "brightness" and b.curve == "exp" and tuple(b.range) == (0.2, 0.9) and b.smooth_ms == 80
    assert mapping.cc[1].target == "warmth"
