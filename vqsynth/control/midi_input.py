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

import rtmidi

from vqsynth.control.quiet import library_errors_silenced

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
            with library_errors_silenced():  # what is missing is said below, once, in our words
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
                 queue_size: int = 4096, rescan: float = 1.0):
        self.controller = controller
        self.virtual = virtual
        self.prefixes = [p.lower() for p in ports]
        self.api_name = api
        self.queue: queue.Queue = queue.Queue(queue_size)
        self.ins: list[rtmidi.MidiIn] = []  # the virtual port
        self.hardware: dict[str, rtmidi.MidiIn] = {}  # port name -> the MidiIn reading it
        self.received = 0  # events RtMidi delivered: each one is handled or counted as dropped
        self.dropped = 0  # events lost to a full queue (RtMidi's thread counts, the consumer reports)
        self._dropped_reported = 0
        self.rescan = rescan  # seconds between looks for ports that left or came (0: never)
        self.thread: threading.Thread | None = None
        self.watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._scan: rtmidi.MidiIn | None = None

    @property
    def port_names(self) -> list[str]:
        return ([self.virtual] if self.ins else []) + list(self.hardware)

    def start(self) -> "MidiInput":
        self.api_name = pick_api(self.api_name)
        api = APIS[self.api_name]
        if self.virtual:
            try:
                midi_in = rtmidi.MidiIn(api, name=self.virtual)
                midi_in.open_virtual_port(self.virtual)
                self._listen(midi_in, self.virtual)
                self.ins.append(midi_in)
            except NotImplementedError:
                log.warning("%s has no virtual MIDI ports%s", self.api_name,
                            ": install loopMIDI and connect it as a hardware port" if sys.platform == "win32" else "")
        if self.prefixes:
            self._scan = rtmidi.MidiIn(api, name=f"{self.virtual or 'vqsynth'}-scan")
            self.rescan_ports(announce=False)
            if self.rescan > 0:
                self.watcher = threading.Thread(target=self._watch, name="vqsynth-midi-ports", daemon=True)
                self.watcher.start()
        self.thread = threading.Thread(target=self._consume, name="vqsynth-midi-in", daemon=True)
        self.thread.start()
        log.info("MIDI in (%s): %s", self.api_name, ", ".join(self.port_names) or "no ports")
        return self

    def _listen(self, midi_in: rtmidi.MidiIn, name: str):
        midi_in.ignore_types(sysex=True, timing=True, active_sense=True)
        midi_in.set_error_callback(self._on_error, name)
        midi_in.set_callback(self._on_event, name)

    def rescan_ports(self, announce: bool = True):
        """Close ports that left (a keyboard unplugged, a program quit) and open ports that match
        a prefix and are new or back: a performer replugs and plays on, nothing restarts."""
        try:
            names = self._scan.get_ports()
        except Exception as exc:  # the MIDI system itself went away (JACK stopped): try again later
            self.controller.count("port scan errors", str(exc))
            return
        for name in [n for n in self.hardware if n not in names]:
            self._close(self.hardware.pop(name))
            self.controller.count("ports lost", name)
            log.warning("MIDI port '%s' disappeared (unplugged, or its program quit): it is reopened "
                        "if it comes back; everything else plays on", name)
        for name in names:
            if name in self.hardware or not any(name.lower().startswith(p) for p in self.prefixes):
                continue
            midi_in = rtmidi.MidiIn(APIS[self.api_name], name=self.virtual or "vqsynth")
            try:
                midi_in.open_port(midi_in.get_ports().index(name), name="in")  # its own list: indices move
            except (ValueError, rtmidi.RtMidiError) as exc:  # gone again between the two looks
                midi_in.delete()
                self.controller.count("port open errors", f"{name}: {exc}")
                continue
            self._listen(midi_in, name)
            self.hardware[name] = midi_in
            if announce:
                log.warning("MIDI port '%s' is here (back, or new): opened", name)

    def _watch(self):
        while not self._stopping.wait(self.rescan):
            self.rescan_ports()

    @staticmethod
    def _close(midi_in: rtmidi.MidiIn):
        try:
            midi_in.cancel_callback()
            midi_in.close_port()
        finally:
            midi_in.delete()

    def _on_event(self, event, port):
        """RtMidi's thread: stamp and enqueue, nothing else."""
        stamp = time.monotonic()
        self.received += 1
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
            if self.dropped != self._dropped_reported:  # told once in the log, always in the counters
                lost, self._dropped_reported = self.dropped - self._dropped_reported, self.dropped
                self.controller.counters["dropped"] += lost - 1
                self.controller.count("dropped", f"{lost} MIDI events lost: more than {self.queue.maxsize} "
                                                 "waiting (a sender faster than vqsynth handles)")
            try:
                self.controller.handle_bytes(data, stamp)
            except Exception:  # a bug must not stop MIDI input: log it, count it, go on
                log.exception("MIDI handler failed on %s", bytes(data)[:32].hex())
                self.controller.count("handler errors")

    def stop(self):
        self._stopping.set()
        if self.watcher is not None:
            self.watcher.join(timeout=2.0 + self.rescan)
            self.watcher = None
        for midi_in in self.ins + list(self.hardware.values()):
            self._close(midi_in)
        self.ins, self.hardware = [], {}
        if self._scan is not None:
            self._scan.delete()
            self._scan = None
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(timeout=2.0)
            self.thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
