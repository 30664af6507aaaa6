"""Audio backends: where the engine's blocks go.

- `sounddevice`: PortAudio (ALSA, JACK, CoreAudio, WASAPI, ...), the real thing;
- `jack`: a native JACK client whose process callback also reads a JACK MIDI port, so each
  note lands at the exact frame it was sent for, with no MIDI thread in between;
- `null`: a thread paced in real time, for headless machines and tests;
- `file`: the null backend plus a recording (the WAV is the point).
`--record out.wav` works with any of them: the callback copies each block into a preallocated
ring and a writer thread drains it to disk, so the audio thread never touches the file.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from vqsynth.engine.errors import AudioError

BACKENDS = ("sounddevice", "jack", "null", "file")


class Recorder:
    """Lock-free hand-off of output blocks to a WAV file (one writer thread)."""

    def __init__(self, path, sample_rate, channels=1, seconds_buffered=20.0):
        import soundfile as sf

        try:
            self.file = sf.SoundFile(str(path), "w", samplerate=sample_rate, channels=channels, subtype="PCM_16")
        except Exception as exc:
            raise AudioError(f"cannot record to {path}: {exc}") from None
        self.ring = np.zeros(int(sample_rate * seconds_buffered), dtype=np.float32)
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
        self.recorder = Recorder(record, engine.sample_rate) if record else None

    def _fill(self, n):
        mono = self.mono[:n] if n <= self.mono.shape[0] else np.zeros(n, dtype=np.float32)
        self.engine.process(mono)
        if self.recorder is not None:
            self.recorder.push(mono)
        return mono

    def close(self):
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

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


def find_output_device(sd, device):
    """A device index from an index or a case-insensitive name fragment (None: the default)."""
    if device is None or device == "":
        if sd.default.device[1] is not None and sd.default.device[1] >= 0:
            return None  # PortAudio's default output
        outputs = [i for i, d in enumerate(sd.query_devices()) if d["max_output_channels"] > 0]
        if not outputs:
            raise AudioError("no audio output device found (no sound card, no JACK/PulseAudio server); "
                             "start one, or run with --audio null")
        return outputs[0]  # no default set (e.g. only JACK is up): the first output there is
    if isinstance(device, int) or str(device).isdigit():
        return int(device)
    devices = sd.query_devices()
    matches = [i for i, d in enumerate(devices)
               if str(device).lower() in d["name"].lower() and d["max_output_channels"] > 0]
    if not matches:
        names = ", ".join(f"{i}: {d['name']}" for i, d in enumerate(devices) if d["max_output_channels"] > 0)
        raise AudioError(f"no output device matches '{device}' (have: {names or 'none'}); "
                         "see `vqsynth devices`, or run with --audio null")
    return matches[0]


class SoundDeviceBackend(Backend):
    def __init__(self, engine, channels=2, record=None, device=None, latency="low"):
        super().__init__(engine, channels, record)
        sd = import_sounddevice()
        self.sd = sd
        index = find_output_device(sd, device)
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
            mono = self._fill(frames)
            outdata[:] = mono[:, None]
        except Exception:  # sounddevice stops calling a callback that raised: never raise
            outdata.fill(0)
            self.engine.counters["callback_errors"] += 1

    def start(self):
        self.stream.start()
        self.engine.clock.latency = self.engine.block_size + 32
        self.output_latency = float(self.stream.latency)

    def stop(self):
        try:
            self.stream.stop()
            self.stream.close()
        finally:
            self.close()

    @property
    def description(self):
        return f"{self.device_name} via PortAudio ({self.stream.latency * 1000:.1f} ms output latency)"


class JackBackend(Backend):
    """Audio out and MIDI in through one JACK client (the JACK-Client package).

    MIDI events arrive in the process callback with their frame offset inside the period about
    to be rendered, so each is placed at exactly that frame: no added latency and no jitter
    (events from other threads, OSC, still get the clock's constant latency). The event reaches
    the controller through the clock's inverse mapping; a cached attack makes the note sound at
    that very frame.
    """

    def __init__(self, engine, channels=2, record=None, name="vqsynth", controller=None, connect=True):
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
        self.outs = [self.client.outports.register(f"out_{i + 1}") for i in range(channels)]
        self.controller = controller
        self.midi_in = self.client.midi_inports.register("midi_in") if controller is not None else None
        self.connect = connect
        self.midi_errors = 0
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        import mido

        self._parse = mido.Message.from_bytes

    def _xrun(self, delay):
        self.engine.counters["underruns"] += 1

    def _process(self, frames):
        try:
            if self.midi_in is not None:
                first = self.engine.samples_out
                for offset, data in self.midi_in.incoming_midi_events():
                    try:
                        msg = self._parse(bytes(data))
                    except (ValueError, TypeError):
                        self.midi_errors += 1
                        continue
                    self.controller.handle(msg, self.engine.clock.time_of(first + offset))
            mono = self._fill(frames)
            for port in self.outs:
                port.get_array()[:] = mono
        except Exception:
            for port in self.outs:
                port.get_array().fill(0)
            self.engine.counters["callback_errors"] += 1

    def start(self):
        self.client.activate()
        if self.connect:
            for src, dst in zip(self.outs, self.client.get_ports(is_physical=True, is_input=True, is_audio=True)):
                try:
                    self.client.connect(src, dst)
                except Exception:
                    pass

    def stop(self):
        try:
            self.client.deactivate()
            self.client.close()
        finally:
            self.close()

    @property
    def description(self):
        midi = f", MIDI in {self.midi_in.name}" if self.midi_in is not None else ""
        return f"JACK client '{self.client.name}' ({self.client.blocksize}-frame periods{midi})"


def open_backend(kind, engine, record=None, device=None, channels=2, latency="low", controller=None):
    if kind == "jack":
        return JackBackend(engine, channels, record, controller=controller)
    if kind == "sounddevice":
        return SoundDeviceBackend(engine, channels, record, device, latency)
    if kind == "null":
        return NullBackend(engine, channels, record)
    if kind == "file":
        if not record:
            raise AudioError("--audio file needs --record PATH.wav")
        return NullBackend(engine, channels, record)
    raise AudioError(f"unknown audio backend '{kind}' (choose from {', '.join(BACKENDS)})")
