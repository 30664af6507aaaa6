"""Helpers for tests that use the real rig (../shared/RIG.md): a private JACK server, a live
engine on the null backend, and an OSC client that reads the server's replies."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient


# ------------------------------------------------------------------ JACK

def jack_name(prefix: str = "vqs-test") -> str:
    """A server name no other test on the machine uses (/dev/shm is shared)."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def start_jackd(name: str, rate: int = 48000, period: int = 128, timeout: float = 10.0) -> subprocess.Popen:
    """Start `jackd -n name -d dummy` and return once clients can connect to it."""
    import jack

    if shutil.which("jackd") is None:
        raise RuntimeError("jackd is not installed (apt-get install jackd2)")
    log = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: nobody reads it during a long run
    proc = subprocess.Popen(["jackd", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    proc.log = log
    deadline = time.monotonic() + timeout
    while True:
        try:
            jack.Client("vqs-probe", servername=name, no_start_server=True).close()
            return proc
        except jack.JackOpenError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                message = log.read()[-500:]
                stop_jackd(proc)
                raise RuntimeError(f"jackd -n {name} did not start: {message}")
            time.sleep(0.05)


def stop_jackd(proc: subprocess.Popen):
    """Stop a server started by start_jackd (close its clients first)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.close()


# ------------------------------------------------------------------ engine

class LiveEngine:
    """A real Engine with its render thread and the paced null audio backend running."""

    def __init__(self, model, **engine_args):
        from vqsynth.engine.backends import open_backend
        from vqsynth.engine.engine import Engine

        engine_args.setdefault("attack_cache", False)  # rebuilding it costs CPU these tests do not need
        engine_args.setdefault("polyphony", 8)
        self.engine = Engine(model, **engine_args)
        self.engine.start()
        self.backend = open_backend("null", self.engine)
        self.backend.start()

    def close(self):
        self.engine.panic()
        self.backend.stop()
        self.engine.stop()


def wait_until(condition, timeout: float = 2.0, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# ------------------------------------------------------------------ OSC

class OscProbe(SimpleUDPClient):
    """python-osc's client, bound to a port of its own so it can read what the server answers."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        super().__init__(host, port, timeout=2.0)
        self._sock.bind(("127.0.0.1", 0))
        self._serial = 0

    def send_raw(self, dgram: bytes):
        self._sock.sendto(dgram, (self._address, self._port))

    def next_reply(self, timeout: float = 2.0) -> tuple[str, list] | None:
        self._sock.settimeout(timeout)
        try:
            msg = OscMessage(self._sock.recv(65535))
        except TimeoutError:
            return None
        return msg.address, msg.params

    def sync(self, timeout: float = 2.0) -> list[tuple[str, list]]:
        """Send /vqsynth/sync and return every reply that came before /synced."""
        self._serial += 1
        self.send_message("/vqsynth/sync", self._serial)
        seen = []
        while True:
            reply = self.next_reply(timeout)
            assert reply is not None, f"no /synced {self._serial}; got {seen}"
            if reply == ("/synced", [self._serial]):
                return seen
            seen.append(reply)

    def ask(self, address: str, *args, reply: str, timeout: float = 2.0) -> list:
        """Send and return the arguments of the first reply with address `reply`."""
        self.send_message(address, list(args))
        while True:
            got = self.next_reply(timeout)
            assert got is not None, f"no {reply} after {address}"
            if got[0] == reply:
                return got[1]

    def status(self) -> dict:
        values = self.ask("/vqsynth/status", reply="/status.reply")
        return dict(zip(["voices", "cpu_load", "underruns", "sample_rate", "latency_ms"], values))


def sparse_wav(path, channels=1024):
    """A WAV whose header claims `channels` channels over a 1-GB sparse file (a hostile 'recording')."""
    import soundfile as sf

    sf.write(path, np.zeros((16, 2), np.float32), 16000)
    data = bytearray(Path(path).read_bytes())
    data[22:24] = int(channels).to_bytes(2, "little")
    Path(path).write_bytes(bytes(data))
    with open(path, "r+b") as f:
        f.truncate(1 << 30)
    return Path(path)
