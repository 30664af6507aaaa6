"""A JACK measuring client: sends notes on a MIDI out port and captures audio on an in port,
inside its own process callback, so note-on -> first sound is measured in frames, the way a
performer feels it (../shared/RIG.md). Used by the rig tests and by perf/latency.py.
"""

from __future__ import annotations

import threading
import time

import numpy as np


class Probe:
    def __init__(self, name="probe", server=None, seconds=30.0):
        import jack

        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.midi_out = self.client.midi_outports.register("midi_out")
        self.audio_in = self.client.inports.register("in")
        self.audio_out = self.client.outports.register("out")  # plays `play()`'s audio
        self.playing = None  # (audio, frame time of its first sample) while it plays
        self.played_at = None  # frame time of the last played audio's first sample
        self.sr = self.client.samplerate
        self.capture = np.zeros(int(seconds * self.sr), dtype=np.float32)
        self.captured = 0
        self.first_frame = None  # JACK frame time of capture[0]
        self.outbox = []  # (raw midi bytes) to send in the next period
        self.sent = []  # (frame time, bytes) actually sent
        self.lock = threading.Lock()
        self.xruns = 0
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _xrun(self, delay):
        self.xruns += 1

    def _process(self, frames):
        t0 = self.client.last_frame_time
        self.midi_out.clear_buffer()
        if self.outbox and self.lock.acquire(blocking=False):
            for offset, msg in self.outbox:
                if isinstance(msg, tuple):  # (socket, address, datagram): OSC over UDP, sent now
                    msg[0].sendto(msg[2], msg[1])
                    self.sent.append((t0, msg[2]))
                    continue
                offset = min(offset, frames - 1)
                self.midi_out.write_midi_event(offset, msg)
                self.sent.append((t0 + offset, msg))
            self.outbox.clear()
            self.lock.release()
        out = self.audio_out.get_array()
        out.fill(0.0)
        if self.playing is not None:
            audio, at = self.playing
            if at is None:
                at = self.played_at = t0
                self.playing = (audio, at)
            k = t0 - at
            n = max(min(frames, audio.size - k), 0)
            out[:n] = audio[k:k + n]
            if k + frames >= audio.size:
                self.playing = None
        if self.first_frame is None:
            self.first_frame = t0
        at = t0 - self.first_frame  # by frame time, so an xrun leaves a gap instead of a shift
        n = min(frames, self.capture.size - at)
        if n > 0:
            self.capture[at:at + n] = self.audio_in.get_array()[:n]
            self.captured = at + n

    def play(self, audio):
        """Play mono float32 audio on the `out` port from the next period; `played_at` then says
        the frame time of its first sample."""
        self.played_at = None
        self.playing = (np.asarray(audio, dtype=np.float32), None)

    def connect_out_to(self, port_name):
        self.client.connect(self.audio_out.name, port_name)

    def send(self, *msg, offset=0):
        """Queue a MIDI message for the next period, `offset` frames into it."""
        with self.lock:
            self.outbox.append((offset, bytes(msg)))

    def send_udp(self, sock, address, datagram):
        """Send a UDP datagram (an OSC packet) from inside the next process callback."""
        with self.lock:
            self.outbox.append((0, (sock, address, datagram)))

    def measure_osc_note(self, sock, address, on, off, wait=0.25, threshold=1e-4):
        """Like measure_note, with OSC note-on/off datagrams sent from the JACK callback."""
        n_sent = len(self.sent)
        self.send_udp(sock, address, on)
        time.sleep(wait)
        self.send_udp(sock, address, off)
        time.sleep(0.05)
        if len(self.sent) <= n_sent:
            return None
        return self.onset_after(self.sent[n_sent][0], threshold)

    def connect_from(self, port_name):
        self.client.connect(port_name, self.audio_in.name)

    def connect_to(self, port_name):
        self.client.connect(self.midi_out.name, port_name)

    def find(self, pattern, is_midi=False, is_input=None, is_output=None):
        kw = {"is_midi": is_midi} if is_midi else {"is_audio": True}
        if is_input is not None:
            kw["is_input"] = is_input
        if is_output is not None:
            kw["is_output"] = is_output
        return [p.name for p in self.client.get_ports(pattern, **kw)]

    def onset_after(self, frame_time, threshold=1e-4, quiet_before=0.01):
        """Frames from `frame_time` to the first captured sample above threshold; None if nothing
        was heard, or if the input was not quiet for `quiet_before` seconds before (a tail)."""
        start = max(frame_time - self.first_frame, 0)
        before = self.capture[max(start - int(quiet_before * self.sr), 0):start]
        if before.size and np.abs(before).max() > threshold:
            return None
        loud = np.flatnonzero(np.abs(self.capture[start:self.captured]) > threshold)
        return int(loud[0]) if loud.size else None

    def measure_note(self, pitch=60, velocity=100, wait=0.25, threshold=1e-4, channel=0, offset=0):
        """Send a note-on, wait, note-off + all-sound-off; returns frames to the first sound."""
        n_sent = len(self.sent)
        self.send(0x90 | channel, pitch, velocity, offset=offset)
        time.sleep(wait)
        self.send(0x80 | channel, pitch, 0)
        self.send(0xB0 | channel, 120, 0)
        time.sleep(0.05)
        if len(self.sent) <= n_sent:
            return None
        return self.onset_after(self.sent[n_sent][0], threshold)

    def close(self):
        self.client.deactivate()
        self.client.close()
