"""Audio backends: where the engine's blocks go.

- `sounddevice`: PortAudio (ALSA, JACK, CoreAudio, WASAPI, ...), the real thing;
- `jack`: a native JACK client whose process callback also reads a JACK MIDI port: it copies
  each event's bytes out with its frame and a handler thread plays it one period later at that
  very frame (constant latency, no jitter), so a burst cannot outlast the period; with a
  follower (control/follow.py), an audio input port too (engine/audio_input.py), each sample
  stamped one period later as MIDI is;
- `null`: a thread paced in real time, for headless machines and tests;
- `file`: the null backend plus a recording (the WAV is the point).
`--record out.wav` works with any of them: the callback copies each block into a preallocated
ring and a writer thread drains it to disk, so the audio thread never touches the file.
"""

from __future__ import annotations

import queue
import re
import threading
import time

import numpy as np

from vqsynth.engine.audio_input import InputRing
from vqsynth.engine.errors import AudioError

BACKENDS = ("sounddevice", "jack", "null", "file")
MIDI_QUEUE = 8192  # JACK MIDI events waiting for the handler thread; more in a burst are counted lost


class Recorder:
    """Lock-free hand-off of output blocks to a WAV file (one writer thread); mono blocks into a
    stereo file go to both sides."""

    def __init__(self, path, sample_rate, channels=2, seconds_buffered=20.0):
        import soundfile as sf

        try:
            self.file = sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype="PCM_16")
        except Exception as exc:
            raise AudioError(f"cannot record to {path}: {exc}") from None
        self.ring = np.zeros((int(sample_rate * seconds_buffered), channels), dtype=np.float32)
        self.written = 0  # advanced by the audio thread
        self.saved = 0  # advanced by the writer thread
        self.dropped = 0
        self.running = True
        self.thread = threading.Thread(target=self._drain, name="vqsynth-recorder", daemon=True)
        self.thread.start()

    def push(self, block: np.ndarray):
        n, size = block.shape[0], self.ring.shape[0]
        if self.written + n - self.saved > size:
            self.dropped += n
            return
        if block.ndim == 1:
            block = block[:, None]
        i = self.written % size
        first = min(n, size - i)
        self.ring[i:i + first] = block[:first]
        self.ring[:n - first] = block[first:]
        self.written += n

    def _drain(self):
        size = self.ring.shape[0]
        while self.running or self.saved < self.written:
            w = self.written
            if w == self.saved:
                time.sleep(0.02)
                continue
            idx = np.arange(self.saved, w) % size
            self.file.write(self.ring[idx])
            self.saved = w

    def close(self):
        self.running = False
        self.thread.join(timeout=5.0)
        self.file.close()


class Backend:
    """Drives engine.process() once per block; subclasses say by what clock."""

    def __init__(self, engine, channels=2, record=None):
        self.engine = engine
        self.channels = channels
        self.mono = np.zeros(engine.block_size, dtype=np.float32)
        self.stereo = np.zeros((engine.block_size, 2), dtype=np.float32)
        self.recorder = Recorder(record, engine.sample_rate, 2 if channels >= 2 else 1) if record else None

    def _fill(self, n):
        """One block from the engine: [n, 2] (left, right) with 2 channels or more, else [n]."""
        buf = self.stereo if self.channels >= 2 else self.mono
        out = buf[:n] if n <= buf.shape[0] else np.zeros((n,) + buf.shape[1:], dtype=np.float32)
        self.engine.process(out)
        if self.recorder is not None:
            self.recorder.push(out)
        return out

    def close(self):
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def poll(self) -> list[str]:
        """Called by `serve` about twice a second, never in the audio thread: lines to print about
        the device (lost, back); raises AudioError when the sound cannot go on in this process."""
        return []

    @property
    def description(self):
        return type(self).__name__


class NullBackend(Backend):
    """Real-time pacing with no device: a thread wakes once per block period."""

    def start(self):
        self.running = True
        self.thread = threading.Thread(target=self._run, name="vqsynth-null-audio", daemon=True)
        self.thread.start()

    def _run(self):
        n, sr = self.engine.block_size, self.engine.sample_rate
        period = n / sr
        deadline = time.perf_counter()
        while self.running:
            self._fill(n)
            deadline += period
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.05:  # fell far behind (suspended): count it and re-sync
                self.engine.counters["underruns"] += 1
                deadline = time.perf_counter()

    def stop(self):
        self.running = False
        self.thread.join(timeout=2.0)
        self.close()

    @property
    def description(self):
        return f"null (paced, {self.engine.block_size} frames at {self.engine.sample_rate} Hz)"


def import_sounddevice():
    try:
        import sounddevice as sd
    except OSError as exc:
        raise AudioError(f"PortAudio is not installed ({exc}). Install it (Debian/Ubuntu: "
                         "apt-get install libportaudio2; macOS: brew install portaudio) "
                         "or run with --audio null") from None
    return sd


def find_device(sd, device, kind="output"):
    """A PortAudio device index for `kind` ("output" or "input") from an index or a
    case-insensitive name fragment (None: the default, or the first there is if none is set)."""
    hint = "; see `vqsynth devices`" + (", or run with --audio null" if kind == "output" else "")
    devices = sd.query_devices()
    usable = [i for i, d in enumerate(devices) if d[f"max_{kind}_channels"] > 0]
    have = ", ".join(f"{i}: {devices[i]['name']}" for i in usable) or "none"
    if device is None or device == "":
        default = sd.default.device[0 if kind == "input" else 1]
        if default is not None and default >= 0:
            return None  # PortAudio's default
        if not usable:
            raise AudioError(f"no audio {kind} device found (no sound card, no JACK/PulseAudio server)"
                             + ("; start one, or run with --audio null" if kind == "output" else ""))
        return usable[0]  # no default set (e.g. only JACK is up): the first there is
    if isinstance(device, int) or str(device).isdigit():
        if kind == "input" and int(device) not in usable:
            raise AudioError(f"input device {device} is not an input (have: {have})")
        return int(device)
    matches = [i for i in usable if str(device).lower() in devices[i]["name"].lower()]
    if not matches:
        raise AudioError(f"no {kind} device matches '{device}' (have: {have}){hint}")
    return matches[0]


class SoundDeviceBackend(Backend):
    def __init__(self, engine, channels=2, record=None, device=None, latency="low"):
        super().__init__(engine, channels, record)
        sd = import_sounddevice()
        self.sd = sd
        index = find_device(sd, device, "output")
        try:
            info = sd.query_devices(index, "output")
        except Exception as exc:
            raise AudioError(f"no audio output device ({exc}); connect one, start JACK/PulseAudio, "
                             "or run with --audio null") from None
        self.channels = max(1, min(channels, int(info["max_output_channels"])))
        self.device_name = info["name"]
        try:
            self.stream = sd.OutputStream(
                samplerate=engine.sample_rate, blocksize=engine.block_size, device=index,
                channels=self.channels, dtype="float32", latency=latency, callback=self._callback)
        except Exception as exc:
            raise AudioError(f"cannot open '{self.device_name}' at {engine.sample_rate} Hz, "
                             f"{engine.block_size} frames: {exc}") from None

    def _callback(self, outdata, frames, time_info, status):
        try:
            if status.output_underflow:
                self.engine.counters["underruns"] += 1
            out = self._fill(frames)
            outdata[:] = out[:, None] if out.ndim == 1 else out[:, :outdata.shape[1]]
        except Exception:  # sounddevice stops calling a callback that raised: never raise
            outdata.fill(0)
            self.engine.counters["callback_errors"] += 1

    def start(self):
        self.stream.start()
        self.engine.clock.latency = self.engine.block_size + 32
        self.output_latency = float(self.stream.latency)
        self.lost = None
        self._seen = (time.monotonic(), self.engine.samples_out)

    def poll(self) -> list[str]:
        now, samples = time.monotonic(), self.engine.samples_out
        if samples != self._seen[1]:
            self._seen = (now, samples)
        elif self.lost is None and (not self.stream.active or now - self._seen[0] > 2.0):
            self.lost = "stopped" if not self.stream.active else "no callback for 2 s"
        if self.lost is not None:
            # PortAudio cannot reopen a stream whose server or device died (closing it hangs, and
            # pa_jack asserts at exit): a clean exit, so a supervisor restarts vqsynth, is the way back
            raise AudioError(f"the audio stream on '{self.device_name}' {self.lost}: the device was unplugged "
                             "or its server (JACK, PulseAudio) went away. PortAudio cannot reopen it inside "
                             "this process, so vqsynth exits (status 3): start it again, or let a supervisor do "
                             "it (systemd Restart=on-failure); --audio jack reconnects by itself")
        return []

    def stop(self):
        try:
            if getattr(self, "lost", None) is None:  # a dead stream hangs in stop/close: leave it
                self.stream.stop()
                self.stream.close()
        finally:
            self.close()

    @property
    def description(self):
        return f"{self.device_name} via PortAudio ({self.stream.latency * 1000:.1f} ms output latency)"


class CycleWatch:
    """Counts a JACK client's late process callbacks, from inside the callback.

    Late: the callback ended after its period, or whole cycles went by without a callback
    (frames_since_cycle_start alone cannot see those: it counts from the newest cycle).
    Waited: most of a period, or whole cycles, went before the callback's code ran (waiting for
    the GIL, the CPU, or a client that JACK runs before this one, not working). Late or skipped
    cycles also come from the driver or another client stalling the graph, so this is an upper
    bound on the client's own overruns; the soak runs idle witnesses in other processes, counted
    by this class or its copy in perf/witness.c, to tell the two apart."""

    def __init__(self, client):
        self.client = client
        self.last_cycle = None  # JACK frame time of the previous callback's cycle
        self.late = self.waited = 0

    def enter(self):
        """First thing in the callback: (this cycle's frame time, frames since it started)."""
        return self.client.last_frame_time, self.client.frames_since_cycle_start

    def leave(self, frames, cycle, entered) -> tuple[bool, bool]:
        """Last thing in the callback: (late, waited) for this period, also added to the totals."""
        skipped = self.last_cycle is not None and (cycle - self.last_cycle) % 2 ** 32 > frames
        self.last_cycle = cycle
        late = skipped or self.client.last_frame_time != cycle or self.client.frames_since_cycle_start > frames
        waited = late and (skipped or entered > frames // 2)
        self.late += late
        self.waited += waited
        return late, waited


class JackBackend(Backend):
    """Audio out and MIDI in through one JACK client (the JACK-Client package).

    MIDI events arrive in the process callback with their frame offset inside the period about
    to be rendered, so each is placed at exactly that frame: no added latency and no jitter
    (events from other threads, OSC, still get the clock's constant latency). The event reaches
    the controller through the clock's inverse mapping; a cached attack makes the note sound at
    that very frame.
    """

    def __init__(self, engine, channels=2, record=None, name="vqsynth", controller=None, connect=True,
                 follower=None):
        super().__init__(engine, channels, record)
        try:
            import jack
        except (ImportError, OSError) as exc:
            raise AudioError(f"the jack backend needs the JACK-Client package and libjack ({exc}): "
                             "pip install JACK-Client; apt-get install libjack-jackd2-0") from None
        try:
            self.client = jack.Client(name, no_start_server=True)
        except jack.JackOpenError:
            raise AudioError("no JACK server is running: start jackd (or qjackctl, or PipeWire's JACK), "
                             "or use --audio sounddevice / null") from None
        if self.client.samplerate != engine.sample_rate or self.client.blocksize != engine.block_size:
            sr, bs = self.client.samplerate, self.client.blocksize
            self.client.close()
            raise AudioError(f"JACK runs at {sr} Hz with {bs}-frame periods: start vqsynth with "
                             f"--sample-rate {sr} --block-size {bs}")
        self.name, self.controller, self.connect = name, controller, connect
        self.lost = None  # why the server went away, set by JACK's shutdown callback
        self.standin = None  # a paced null backend that keeps the engine's clock going meanwhile
        self.connections: set = set()  # (our port's short name, the other port's full name)
        self.missing: set = set()  # connections whose other port disappeared: restored if it returns
        self._next_try, self._told = 0.0, False
        self.midi_events: queue.SimpleQueue = queue.SimpleQueue()  # (frame, bytes) from the callback
        self.midi_thread = None
        self.midi_seen = 0  # events JACK delivered to the callback: each is handled or counted lost
        self.follower = follower
        self.input = InputRing(follower, engine.sample_rate) if follower is not None else None
        self._setup(self.client)

    def _setup(self, client):
        self.client = client
        self.watch = CycleWatch(client)  # a new server starts its frame time anew
        self.outs = [client.outports.register(f"out_{i + 1}") for i in range(self.channels)]
        self.midi_in = client.midi_inports.register("midi_in") if self.controller is not None else None
        self.audio_in = client.inports.register("audio_in") if self.follower is not None else None
        client.set_process_callback(self._process)
        client.set_xrun_callback(self._xrun)
        client.set_shutdown_callback(self._on_shutdown)

    def _xrun(self, delay):
        """JACK reports every xrun of the graph, whoever caused it (see late_callbacks for ours)."""
        self.engine.counters["underruns"] += 1

    def _process(self, frames):
        cycle, entered = self.watch.enter()
        try:
            if self.midi_in is not None:
                first = self.engine.samples_out
                lost = self.midi_in.lost_midi_events  # JACK's own count: a burst that overflowed the
                if lost:                              # period's buffer (notes that would hang unseen)
                    self.engine.counters["midi_lost"] += lost
                # copy the bytes out and hand them on: handling 100 note-ons here took longer than a
                # period, and the sender's next cycle overwrote the rest (8-11 of 100 arrived;
                # perf/midi_burst.py, perf/README.md)
                due = first + frames
                for offset, data in self.midi_in.incoming_midi_events():
                    self.midi_seen += 1
                    if self.midi_events.qsize() < MIDI_QUEUE:
                        self.midi_events.put((due + offset, bytes(data)))
                    else:
                        self.engine.counters["midi_lost"] += 1
            if self.audio_in is not None:  # into the ring, for the follower's thread; its samples
                # sound one period on, as a MIDI event of this period does
                self.input.push(self.audio_in.get_array(),
                                self.engine.clock.time_of(self.engine.samples_out + 2 * frames))
            out = self._fill(frames)
            for i, port in enumerate(self.outs):  # out_1 left, out_2 right (more ports: the pair again)
                port.get_array()[:] = out if out.ndim == 1 else out[:, i % 2]
        except Exception:
            for port in self.outs:
                port.get_array().fill(0)
            self.engine.counters["callback_errors"] += 1
        late, waited = self.watch.leave(frames, cycle, entered)
        if late:
            self.engine.counters["late_callbacks"] += 1
            self.engine.counters["late_callbacks_entered_late"] += waited

    def _handle_midi(self):
        """The JACK MIDI handler thread: each event at its frame, one period after the one it was
        sent in (a constant latency, no jitter; a cached attack sounds on that very frame)."""
        while (item := self.midi_events.get()) is not None:
            pos, data = item
            self.controller.handle_bytes(data, self.engine.clock.time_of(pos))  # malformed: counted there

    def start(self):
        if self.input is not None:
            self.input.start()
        if self.midi_in is not None and self.midi_thread is None:
            self.midi_thread = threading.Thread(target=self._handle_midi, name="vqsynth-jack-midi", daemon=True)
            self.midi_thread.start()
        self.client.activate()
        if self.connect:
            self._connect_physical()

    def _connect_physical(self):
        for src, dst in zip(self.outs, self.client.get_ports(is_physical=True, is_input=True, is_audio=True)):
            try:
                self.client.connect(src, dst)
            except Exception:
                pass

    def stop(self):
        try:
            if self.standin is not None:
                self.standin.stop()
            self.client.deactivate(ignore_errors=True)
            self.client.close(ignore_errors=True)
        finally:
            if self.midi_thread is not None:
                self.midi_events.put(None)
                self.midi_thread.join(timeout=2.0)
                self.midi_thread = None
            if self.input is not None:
                self.input.stop()
            self.close()

    # ------------------------------------------------ the server going away and coming back
    def _on_shutdown(self, status, reason):
        """JACK's thread, when the server goes away: note it only; poll() does the rest."""
        self.lost = reason or "the JACK server stopped"

    def poll(self) -> list[str]:
        """The JACK server gone (keep time with a stand-in, release notes whose note-off cannot
        come, reconnect every second: a performer gets the instrument back as it was) or a
        connected port gone (say so, reconnect it when a port of that name returns)."""
        if self.lost is not None:
            return self._reconnect()
        said, client = [], self.client
        try:
            now = {(mine.shortname, other.name) for mine in self.outs + [self.midi_in, self.audio_in] if mine is not None
                   for other in client.get_all_connections(mine)}
            for mine, other in self.connections - now:
                if not client.get_ports("^" + re.escape(other) + "$"):
                    self.missing.add((mine, other))
                    said.append(f"JACK port '{other}' disappeared (it was connected to {mine}): "
                                "reconnected if it comes back; everything else plays on")
            for mine, other in list(self.missing - now):
                if client.get_ports("^" + re.escape(other) + "$") and self._join(mine, other):
                    self.missing.discard((mine, other))
                    now.add((mine, other))
                    said.append(f"JACK port '{other}' is back: reconnected to {mine}")
        except Exception:  # the server died under us: the shutdown callback says so next time
            return said
        self.connections = now
        return said

    def _join(self, mine, other) -> bool:
        ours = f"{self.client.name}:{mine}"
        try:
            self.client.connect(*((ours, other) if mine.startswith("out_") else (other, ours)))
            return True
        except Exception:
            return False

    def _reconnect(self) -> list[str]:
        import jack

        said = []
        if not self._told:
            self._told = True
            # close the dead client now: libjack's shared state must be gone before a new client is
            # made (closing it after opening the new one crashes libjack)
            self.client.deactivate(ignore_errors=True)
            self.client.close(ignore_errors=True)
            if self.controller is not None:  # their note-offs and pedal-ups cannot arrive: no hanging notes
                for ch in range(16):
                    self.controller.control_change(ch, 121, 0)
                    self.controller.control_change(ch, 123, 0)
            self.standin = NullBackend(self.engine)
            self.standin.start()
            said.append(f"JACK server gone ({self.lost}): no audio and no JACK MIDI until it is back; "
                        "OSC still works; trying to reconnect every second")
        if time.monotonic() < self._next_try:
            return said
        self._next_try = time.monotonic() + 1.0
        jack.set_error_function(lambda message: None)  # libjack would print 4 lines a try while down
        try:
            client = jack.Client(self.name, no_start_server=True)
        except jack.JackOpenError:
            return said
        finally:
            jack.set_error_function()
        if client.samplerate != self.engine.sample_rate or client.blocksize != self.engine.block_size:
            sr, bs = client.samplerate, client.blocksize
            client.close()
            raise AudioError(f"JACK came back at {sr} Hz with {bs}-frame periods, but this vqsynth runs at "
                             f"{self.engine.sample_rate} Hz / {self.engine.block_size}: restart it with "
                             f"--sample-rate {sr} --block-size {bs}")
        self.standin.stop()
        self.standin = None
        self._setup(client)
        self.lost, self._told = None, False
        client.activate()
        wanted = self.connections | self.missing
        joined = {c for c in wanted if self._join(*c)}
        self.connections, self.missing = joined, wanted - joined
        if not wanted and self.connect:
            self._connect_physical()
        said.append(f"JACK server is back: audio{' and MIDI' if self.midi_in is not None else ''} resumed as "
                    f"'{client.name}', {len(joined)} of {len(wanted)} connections restored")
        return said

    @property
    def description(self):
        midi = f", MIDI in {self.midi_in.name}" if self.midi_in is not None else ""
        heard = f", audio in {self.audio_in.name} plays part {self.follower.settings.channel + 1}" \
            if self.audio_in is not None else ""
        return f"JACK client '{self.client.name}' ({self.client.blocksize}-frame periods{midi}{heard})"


def open_backend(kind, engine, record=None, device=None, channels=2, latency="low", controller=None,
                 follower=None):
    if kind == "jack":
        return JackBackend(engine, channels, record, controller=controller, follower=follower)
    if follower is not None:
        raise AudioError("an audio input (--follow-input jack) needs --audio jack")
    if kind == "sounddevice":
        return SoundDeviceBackend(engine, channels, record, device, latency)
    if kind == "null":
        return NullBackend(engine, channels, record)
    if kind == "file":
        if not record:
            raise AudioError("--audio file needs --record PATH.wav")
        return NullBackend(engine, channels, record)
    raise AudioError(f"unknown audio backend '{kind}' (choose from {', '.join(BACKENDS)})")
