"""MIDI in through real JACK MIDI ports (a private jackd -d dummy) into the real Engine."""

import os
import time

import pytest
import rtmidi

from rig import LiveEngine, wait_until
from vqsynth.control.midi import MidiController
from vqsynth.control.midi_input import MidiInput, MidiUnavailable, pick_api

pytestmark = pytest.mark.rig


@pytest.fixture
def live(jack_server, test_model):
    live = LiveEngine(test_model)
    yield live.engine
    live.close()


@pytest.fixture
def jack_out(jack_server):
    """Make JACK MIDI senders (other programs); they leave before the server stops."""
    made = []

    def make(name="tester"):
        made.append(rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name))
        return made[-1]
    yield make
    for out in made:
        out.delete()


def test_a_daw_playing_into_the_virtual_port_reaches_the_engine(live, jack_out):
    controller = MidiController(live)
    with MidiInput(controller, virtual="vqsynth", api="jack") as midi_in:
        assert midi_in.port_names == ["vqsynth"]
        out = jack_out()
        out.open_port(next(i for i, p in enumerate(out.get_ports()) if p.startswith("vqsynth:")))
        for message in ([0xB0, 74, 127], [0xC0, 2], [0xB0, 64, 127], [0x90, 60, 100]):
            out.send_message(message)
        for _ in range(50):  # clock and active sensing: filtered before they reach the queue
            out.send_message([0xF8])
            out.send_message([0xFE])
        out.send_message([0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7])  # SysEx identity request: filtered
        out.send_message([0x80, 60, 0])
        assert wait_until(lambda: live.counters["notes"] == 1)
        out.send_message([0xB0, 1, 5])  # CC1 is mapped by default: a marker that everything before it arrived
        assert wait_until(lambda: live.status()["attrs"]["roughness"] == pytest.approx(5 / 127, abs=1e-4))
        status = live.status()
        assert status["attrs"]["brightness"] == 1.0 and status["preset"] == 2 and live.sustain_on[0]
        assert not [k for k in controller.counters if k.startswith("unhandled")], controller.counters
        out.send_message([0xB0, 64, 0])  # pedal up releases the note held by the pedal
        assert wait_until(lambda: live.status()["voices"] == 0, timeout=3.0)


def test_hardware_ports_are_opened_by_name_prefix(live, jack_out):
    keyboard = jack_out("Keystation 49")
    keyboard.open_virtual_port("out")
    controller = MidiController(live)
    with MidiInput(controller, virtual=None, ports=["keystation"], api="jack") as midi_in:
        assert midi_in.port_names == ["Keystation 49:out"]
        keyboard.send_message([0x90, 62, 90])
        assert wait_until(lambda: live.counters["notes"] == 1)


def test_no_jack_server_is_a_clear_message(monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "vqs-nobody-runs-this")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    with pytest.raises(MidiUnavailable, match="no JACK server is running"):
        pick_api("jack")
    if not os.path.exists("/dev/snd/seq"):  # this rig: neither API works, and both are named
        with pytest.raises(MidiUnavailable, match="alsa: the ALSA sequencer is missing.*jack: no JACK server"):
            pick_api()


def _burst(n, port):
    import subprocess
    import sys
    from pathlib import Path

    sender = Path(__file__).with_name("jack_burst.py")
    done = subprocess.run([sys.executable, str(sender), str(n), port], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.fixture
def jack_engine(jack_server, test_model):
    from vqsynth.engine.backends import JackBackend
    from vqsynth.engine.engine import Engine

    engine = Engine(test_model, sample_rate=48000, block_size=128)
    controller = MidiController(engine)
    backend = JackBackend(engine, controller=controller, connect=False)
    engine.start()
    backend.start()
    yield engine, controller, backend
    backend.stop()
    engine.stop()


def test_the_jack_callback_hands_midi_on_and_never_waits_for_the_controller(jack_engine):
    """It handled each event itself: a burst outlasted the period and the sender's next cycle
    overwrote the rest (4 to 11 of 200 arrived, notes hung), and a controller held up (a GC
    pause, a learn) held up the audio. Now it only copies the bytes out."""
    engine, controller, backend = jack_engine
    port = f"{backend.client.name}:midi_in"
    with controller._lock:  # the controller held up while a burst arrives
        blocks = engine.samples_out
        sent = _burst(100, port)
        time.sleep(0.2)
        assert engine.samples_out - blocks > 10 * 128  # the callback ran on meanwhile (blocked, it ran not at all)
    assert sent == 100 and backend.midi_seen > 0
    assert wait_until(lambda: controller.counters["messages"] == backend.midi_seen, timeout=5.0), \
        (controller.counters, backend.midi_seen)


def test_jack_midi_events_beyond_the_queue_are_counted_lost(jack_engine, monkeypatch):
    import vqsynth.engine.backends as backends

    engine, controller, backend = jack_engine
    monkeypatch.setattr(backends, "MIDI_QUEUE", 16)
    with controller._lock:  # the handler held up while the burst arrives
        _burst(200, f"{backend.client.name}:midi_in")
    assert wait_until(lambda: controller.counters["messages"] + engine.counters["midi_lost"] == backend.midi_seen,
                      timeout=5.0), (controller.counters, engine.counters["midi_lost"], backend.midi_seen)
    assert backend.midi_seen <= 16 or engine.counters["midi_lost"] > 0
