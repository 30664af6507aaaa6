"""Faults under the running server, in the JACK rig (perf/faults.py runs the same scenarios and
prints the table): the JACK server killed and restarted, a JACK or MIDI port that leaves and comes
back, broken model folders, a broken mapping file, the OSC port already taken. Each must get a
clear message, and nothing else may stop."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perf"))
import faults  # noqa: E402


def _explain(result):
    return "\n".join(f"{k}: {v}" for k, v in result.items())


@pytest.mark.rig
def test_jack_server_killed_and_restarted_under_audio_jack(test_model_dir):
    """`--audio jack` reports the loss, keeps OSC (and time) going, reconnects, restores connections."""
    r = faults.jack_restart(test_model_dir, "jack", outage=1.0)
    assert r["message"] and "JACK server gone" in r["message"], _explain(r)
    assert r["osc_during_outage"], _explain(r)
    assert r["message_back"] and r["connections_restored"], _explain(r)
    assert r["heard_before"] and r["heard_after"], _explain(r)
    assert r["voices_after_reconnect"] == 0, _explain(r)  # the key held when JACK died does not hang
    assert r["survived"], _explain(r)


@pytest.mark.rig
def test_jack_server_killed_under_audio_sounddevice_exits_cleanly(test_model_dir):
    """PortAudio cannot reopen a dead JACK stream: a clear message and exit status 3, no hang,
    no traceback, no abort at exit."""
    r = faults.jack_restart(test_model_dir, "sounddevice")
    assert r["heard_before"], _explain(r)
    assert r["returncode"] == 3 and r["message"], _explain(r)
    assert r["survived"], _explain(r)


@pytest.mark.rig
def test_the_jack_client_playing_vqsynth_leaves_and_comes_back(test_model_dir):
    r = faults.jack_port_gone(test_model_dir)
    assert r["message"] and r["message_back"] and r["osc_meanwhile"], _explain(r)
    assert r["heard_after"] and r["survived"], _explain(r)


@pytest.mark.rig
def test_a_midi_port_that_is_unplugged_and_plugged_back(test_model_dir):
    r = faults.midi_port_gone(test_model_dir)
    assert r["message_plugged"] and r["message"] and r["message_back"], _explain(r)
    assert r["handled_before"] == 40 and r["handled_after"] == 40 and r["osc_meanwhile"], _explain(r)
    assert r["survived"], _explain(r)


@pytest.mark.parametrize("which", [0, 1], ids=["truncated", "wrong-file"])
def test_a_broken_generator_onnx_is_refused_naming_it(test_model_dir, which):
    r = faults.bad_onnx(test_model_dir, only=which)[0]
    assert r["returncode"] == 2 and r["message"] and "generator.onnx" in r["message"], _explain(r)
    assert r["survived"], _explain(r)


def test_a_mapping_file_with_an_error_is_refused_naming_line_and_key(test_model_dir):
    r = faults.bad_mapping(test_model_dir)
    assert r["returncode"] == 2 and r["message"], _explain(r)
    assert "unknown target 'brightnes'" in r["message"] and r["survived"], _explain(r)


def test_the_osc_port_already_taken(test_model_dir):
    r = faults.osc_port_taken(test_model_dir)
    assert r["returncode"] == 2 and r["message"] and r["survived"], _explain(r)
