"""MIDI input through python-rtmidi: a virtual port for DAWs plus hardware ports by name prefix.

RtMidi calls our callback on its own thread with the GIL held, so the callback only stamps the
arrival time and enqueues; one consumer thread parses and drives the MidiController, keeping
messages in arrival order. Clock, active sensing and SysEx stay filtered (RtMidi's own default,
which mido undoes): nothing here uses them, and 24-per-beat clock would flood the queue.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time

import mido
import rtmidi

log = logging.getLogger("vqsynth.control.midi")

APIS = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK,
        "coremidi": rtmidi.API_MACOSX_CORE, "winmm": rtmidi.API_WINDOWS_MM}
HINTS = {
    "alsa": "the ALSA sequencer is missing (no /dev/snd/seq: `modprobe snd-seq`, or no sound hardware here)",
    "jack": "no JACK server is running (start jackd, qjackctl, or PipeWire with pipewire-jack)",
}


class MidiUnavailable(RuntimeError):
    """No MIDI API could be opened; the message says why for each one tried."""


def pick_api(name: str | None = None) -> str:
    """The API to use: `name` if given, else the first compiled-in one that opens (ALSA, then JACK)."""
    compiled = [n for n, api in APIS.items() if api in rtmidi.get_compiled_api()]
    tried = []
    for n in ([name] if name else compiled):
        if n not in compiled:
            raise MidiUnavailable(f"MIDI API '{n}' is not available (this python-rtmidi has: {', '.join(compiled)})")
        try:
            rtmidi.MidiIn(APIS[n], name="vqsynth-probe").delete()
            return n
        except rtmidi.SystemError as exc:
            tried.append(f"{n}: {HINTS.get(n, exc)}")
    raise MidiUnavailable("no MIDI input available: " + "; ".join(tried))


class MidiInput:
    """Feed a MidiController from a virtual port and from hardware ports matched by name prefix.

    virtual: the name of the virtual input port DAWs connect to (None: none);
    ports: name prefixes of ports to open (case-insensitive; "" opens every port);
    api: "alsa" | "jack" | "coremidi" | "winmm" | None (pick the first that works).
    """

    def __init__(self, controller, virtual: str | None = "vqsynth", ports=(), api: str | None = None,
                 queue_size: int = 4096):
        self.controller = controller
        self.virtual = virtual
        self.prefixes = [p.lower() for p in ports]
        self.api_name = api
        self.queue: queue.Queue = queue.Queue(queue_size)
        self.ins: list[rtmidi.MidiIn] = []
        self.port_names: list[str] = []
        self.dropped = 0
        self.thread: threading.Thread | None = None

    def start(self) -> "MidiInput":
        self.api_name = pick_api(self.api_name)
        api = APIS[self.api_name]
        if self.virtual:
            try:
                self._open(rtmidi.MidiIn(api, name=self.virtual), None, self.virtual)
            except NotImplementedError:
                log.warning("%s has no virtual MIDI ports%s", self.api_name,
                            ": install loopMIDI and connect it as a hardware port" if sys.platform == "win32" else "")
        if self.prefixes:
            scan = rtmidi.MidiIn(api, name=f"{self.virtual or 'vqsynth'}-scan")
            for index, name in enumerate(scan.get_ports()):
                if any(name.lower().startswith(p) for p in self.prefixes):
                    self._open(rtmidi.MidiIn(api, name=self.virtual or "vqsynth"), index, name)
            scan.delete()
        self.thread = threading.Thread(target=self._consume, name="vqsynth-midi-in", daemon=True)
        self.thread.start()
        log.info("MIDI in (%s): %s", self.api_name, ", ".join(self.port_names) or "no ports")
        return self

    def _open(self, midi_in: rtmidi.MidiIn, index: int | None, name: str):
        if index is None:
            midi_in.open_virtual_port(name)
        else:
            midi_in.open_port(index, name="in")
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        midi_in.set_error_callback(self._on_error, name)
        midi_in.set_callback(self._on_event, name)
        self.ins.append(midi_in)
        self.port_names.append(name)

    def _on_event(self, event, port):
        """RtMidi's thread: stamp and enqueue, nothing else."""
        stamp = time.monotonic()
        try:
            self.queue.put_nowait((stamp, event[0]))
        except queue.Full:
            self.dropped += 1

    def _on_error(self, kind, message, port):
        self.controller.count(f"port error {port}", f"{kind}: {message}")

    def _consume(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            stamp, data = item
            try:
                msg = mido.Message.from_bytes(data)
            except (ValueError, TypeError) as exc:
                self.controller.count("malformed", f"{bytes(data).hex()}: {exc}")
                continue
            try:
                self.controller.handle(msg, stamp)
            except Exception:  # a bug must not stop MIDI input: log it, count it, go on
                log.exception("MIDI handler failed on %s", msg)
                self.controller.count("handler errors")

    def stop(self):
        for midi_in in self.ins:
            midi_in.cancel_callback()
            midi_in.close_port()
            midi_in.delete()
        self.ins, self.port_names = [], []
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(timeout=2.0)
            self.thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
