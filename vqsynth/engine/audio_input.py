"""Audio input for the follow part (control/follow.py): from an audio callback to the follower.

The callback (JACK's process callback, or a PortAudio input stream's) only copies its block into
a preallocated ring and posts where it ends, with the time its last sample maps to on the
engine's clock; the follower runs on its own thread (YIN and the encoder must not run in an
audio callback). A follower that falls more than the ring behind skips what was overwritten and
counts it (`input_lost`).
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from vqsynth.engine.errors import AudioError

INPUT_RING = 1 << 16  # samples waiting for the follower (1.4 s at 48 kHz)


class InputRing:
    def __init__(self, follower, sample_rate: int):
        self.follower, self.sr = follower, sample_rate
        self.ring = np.zeros(INPUT_RING, dtype=np.float32)
        self.written = 0  # samples the callback has put in the ring
        self.posts: queue.SimpleQueue = queue.SimpleQueue()  # (time after the last sample, written)
        self.thread = None

    def push(self, x: np.ndarray, t_end: float):
        """Audio callback: append mono block x whose last sample maps to time t_end (no allocation
        but the posted pair)."""
        n, w = x.shape[0], self.written % INPUT_RING
        first = min(n, INPUT_RING - w)
        self.ring[w:w + first] = x[:first]
        self.ring[:n - first] = x[first:]
        self.written += n
        self.posts.put((t_end, self.written))

    def _run(self):
        read = 0
        while (item := self.posts.get()) is not None:
            t_end, written = item
            if written - read > INPUT_RING:
                self.follower.counters["input_lost"] = self.follower.counters.get("input_lost", 0) + \
                    written - INPUT_RING - read
                read = written - INPUT_RING
            n = written - read
            if n <= 0:
                continue
            r = read % INPUT_RING
            block = np.concatenate([self.ring[r:r + n], self.ring[:max(0, r + n - INPUT_RING)]])
            self.follower.feed(block, t_end - n / self.sr)
            read = written

    def start(self):
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="vqsynth-follow", daemon=True)
            self.thread.start()

    def stop(self):
        if self.thread is not None:
            self.posts.put(None)
            self.thread.join(timeout=2.0)
            self.thread = None


class PortAudioInput:
    """An input device through PortAudio (sounddevice), beside whatever plays the output: its
    blocks are stamped with the time they arrive (PortAudio's own times are on another clock)."""

    def __init__(self, engine, follower, device=None):
        from vqsynth.engine.backends import find_device, import_sounddevice

        sd = import_sounddevice()
        index = find_device(sd, device, "input")
        self.ring = InputRing(follower, engine.sample_rate)
        self.sr = engine.sample_rate
        try:
            self.device_name = sd.query_devices(index, "input")["name"]
            self.stream = sd.InputStream(samplerate=engine.sample_rate, blocksize=engine.block_size, device=index,
                                         channels=1, dtype="float32", latency="low", callback=self._callback)
        except Exception as exc:
            raise AudioError(f"cannot open the input device {device if device is not None else '(default)'} at "
                             f"{engine.sample_rate} Hz: {exc}") from None
        self.errors = 0
        self.told = False

    def _callback(self, indata, frames, time_info, status):
        try:
            self.ring.push(indata[:, 0], time.monotonic())
        except Exception:  # sounddevice stops calling a callback that raised: never raise
            self.errors += 1

    def start(self):
        self.ring.start()
        self.stream.start()

    def poll(self) -> list[str]:
        """Once, if the stream stopped (device unplugged): the other parts play on."""
        if not self.told and not self.stream.active:
            self.told = True
            return [f"audio input '{self.device_name}' stopped (unplugged?): the follow part is silent, "
                    "everything else plays on"]
        return []

    def stop(self):
        try:
            if self.stream.active:
                self.stream.stop()
            self.stream.close()
        finally:
            self.ring.stop()

    @property
    def description(self):
        return f"audio in '{self.device_name}' via PortAudio plays part {self.ring.follower.settings.channel + 1}"
