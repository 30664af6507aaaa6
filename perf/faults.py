"""Faults under a running server, in the JACK rig: what vqsynth says and whether the sound comes back.

Each scenario starts the real server (`python -m vqsynth serve`) against a private
`jackd -d dummy`, breaks something the way it breaks on stage, and records the server's own
words, whether everything else kept going, and how long recovery took:

- jack-restart:       the JACK server killed (SIGKILL) under `--audio jack`, then started again
- jack-restart-sd:    the same under `--audio sounddevice` (PortAudio on JACK)
- jack-port-gone:     the JACK client playing into vqsynth (and recording it) quits and comes back
- midi-port-gone:     a hardware-style MIDI port opened with --midi-port disappears and comes back
- bad-onnx:           a model folder whose generator.onnx is truncated, or is the encoder's file
- bad-mapping:        a mapping file with an error
- osc-port-taken:     the OSC port already in use

    .venv/bin/python perf/faults.py [--json perf/results/faults.json] [SCENARIO ...]

tests/test_faults.py runs the same scenarios and asserts on what they return.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
from rig import OscProbe, jack_name, start_jackd, stop_jackd  # noqa: E402


class Server:
    """`python -m vqsynth serve ...` with its output collected line by line (stdout and stderr)."""

    def __init__(self, model_dir, *args, env=None, ready=True, timeout=60.0, nice=None):
        cmd = [sys.executable, "-m", "vqsynth", "serve", "--model", str(model_dir), "--osc-port", "0", *args]
        self.started = time.monotonic()
        setnice = None if nice is None else (lambda: os.setpriority(os.PRIO_PROCESS, 0, nice))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env, cwd=ROOT, preexec_fn=setnice)
        self.lines: list[tuple[float, str]] = []
        self._new = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = None
        if ready:
            line = self.wait_for(r"^vqsynth ready", timeout)
            if line is None:
                self.kill()
                raise RuntimeError("server did not get ready:\n" + self.output())
            self.port = int(line.rsplit(":", 1)[1])

    def _read(self):
        for line in self.proc.stdout:
            with self._new:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._new.notify_all()
        with self._new:
            self._new.notify_all()

    def wait_for(self, pattern, timeout=10.0, after=0.0) -> str | None:
        """The first line matching `pattern` printed after monotonic time `after`; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._new:
            while True:
                for t, line in self.lines:
                    if t >= after and re.search(pattern, line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    return None
                self._new.wait(min(left, 0.1))

    def when(self, pattern) -> float | None:
        for t, line in self.lines:
            if re.search(pattern, line):
                return t
        return None

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_exit(self, timeout=15.0) -> int | None:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.reader.join(2.0)
        return rc

    def stop(self, timeout=15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill()
            rc = self.proc.wait()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def jack_env(name):
    return dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")


def counters(port) -> dict:
    probe = OscProbe(port)
    try:
        values = probe.ask("/vqsynth/counters", reply="/counters.reply")
    finally:
        probe.close()
    return Counter(dict(zip(values[::2], values[1::2])))  # a counter at zero is not sent


def osc_status(port) -> dict | None:
    probe = OscProbe(port)
    try:
        return probe.status()
    except AssertionError:
        return None
    finally:
        probe.close()


def _probe(name):
    from probe import Probe

    return Probe("measure", server=name, seconds=20.0)


def _hear(probe, notes=2, pitch=60, tries=3) -> bool:
    """Note-ons from the probe's MIDI port; True when every one was heard on its audio input.
    Each note may be tried again (up to `tries`): a note counts as unheard when the last one's
    tail still sounded just before it, which a loaded machine (336 underruns in one CI run) made
    happen though both were heard."""
    def once(k):
        heard = probe.measure_note(pitch + k, 110, wait=0.25)
        time.sleep(0.05)
        return heard is not None
    return all(any(once(k) for _ in range(tries)) for k in range(notes))


def _connect(probe, client="vqsynth"):
    midi = [p for p in probe.find(f"^{client}", is_midi=True, is_input=True)]
    audio = [p for p in probe.find("", is_output=True) if not p.startswith(("system:", "measure:"))]  # PortAudio
    audio = [p for p in audio if p.startswith(f"{client}:")] or audio  # names its client after the program
    probe.connect_to(midi[0])
    probe.connect_from(audio[0])
    time.sleep(0.2)


def _no_traceback(server) -> bool:
    return "Traceback" not in server.output()


# ------------------------------------------------------------------ scenarios

def jack_restart(model_dir, audio="jack", outage=2.0) -> dict:
    """Kill jackd under a running server, start it again; can it be played before and after?"""
    name = jack_name("vqs-fault")
    jackd = start_jackd(name)
    extra = ["--midi-api", "jack"] if audio == "sounddevice" else []
    server = Server(model_dir, "--audio", audio, *extra, env=jack_env(name))
    out = {"fault": f"JACK server killed and restarted (--audio {audio})"}
    try:
        probe = _probe(name)
        _connect(probe)
        out["heard_before"] = _hear(probe)
        probe.send(0x90, 72, 100)  # a key held down while JACK dies: its note-off can never arrive
        time.sleep(0.2)
        probe.close()
        killed = time.monotonic()
        jackd.kill()
        jackd.wait()
        stop_jackd(jackd)
        if audio == "sounddevice":
            rc = server.wait_exit(15.0)
            # a SIGKILLed jackd leaves its slot in JACK's shared registry (8 slots per machine, never
            # reclaimed under another name): start and stop one of the same name to give it back
            jackd = start_jackd(name)
            out.update(returncode=rc, exit_s=round(server.when(r"PortAudio cannot reopen") - killed, 2)
                       if server.when(r"PortAudio cannot reopen") else None,
                       message=server.wait_for(r"PortAudio cannot reopen", 0.1), behaviour="exits cleanly (status 3)",
                       survived=rc == 3 and _no_traceback(server))
            return out
        gone = server.wait_for(r"JACK server gone", 5.0)
        out["message"] = gone
        out["osc_during_outage"] = osc_status(server.port) is not None
        time.sleep(outage)
        jackd = start_jackd(name)
        restarted = time.monotonic()
        back = server.wait_for(r"JACK server is back", 10.0)
        out["message_back"] = back
        out["reconnect_s"] = round(server.when(r"JACK server is back") - restarted, 2) if back else None
        deadline = time.monotonic() + 3.0
        while (osc_status(server.port) or {}).get("voices", 1) and time.monotonic() < deadline:
            time.sleep(0.1)
        out["voices_after_reconnect"] = (osc_status(server.port) or {}).get("voices")  # no note left hanging
        probe = _probe(name)  # same client name: the server restores its connections to it
        restored = server.wait_for(r"JACK port 'measure:midi_out' is back", 5.0, after=restarted)
        out["connections_restored"] = restored is not None
        time.sleep(0.3)
        out["heard_after"] = _hear(probe)
        probe.close()
        rc = server.stop()
        out.update(returncode=rc, behaviour="reports, keeps OSC and time, reconnects",
                   survived=bool(gone and back and out["heard_before"] and out["heard_after"] and rc == 0
                                 and out["voices_after_reconnect"] == 0
                                 and out["osc_during_outage"] and _no_traceback(server)))
        return out
    finally:
        server.kill()
        stop_jackd(jackd)
        out["output"] = server.output()[-3000:]


def jack_port_gone(model_dir) -> dict:
    """The JACK client feeding vqsynth MIDI (and recording it) quits, then comes back."""
    name = jack_name("vqs-fault")
    jackd = start_jackd(name)
    server = Server(model_dir, "--audio", "jack", env=jack_env(name))
    out = {"fault": "the JACK MIDI port playing vqsynth disappears and returns (--audio jack)"}
    try:
        probe = _probe(name)
        _connect(probe)
        out["heard_before"] = _hear(probe)
        left = time.monotonic()
        probe.close()
        out["message"] = server.wait_for(r"JACK port 'measure:midi_out' disappeared", 5.0)
        out["osc_meanwhile"] = osc_status(server.port) is not None
        probe = _probe(name)
        out["message_back"] = server.wait_for(r"JACK port 'measure:midi_out' is back", 5.0, after=left)
        time.sleep(0.3)
        out["heard_after"] = _hear(probe)
        probe.close()
        rc = server.stop()
        out.update(returncode=rc, behaviour="reports; reconnects the port when it returns",
                   survived=bool(out["message"] and out["message_back"] and out["heard_before"] and out["heard_after"]
                                 and rc == 0 and _no_traceback(server)))
        return out
    finally:
        server.kill()
        stop_jackd(jackd)
        out["output"] = server.output()[-3000:]


def midi_port_gone(model_dir) -> dict:
    """--midi-port Keystation: the keyboard's port comes, goes (unplugged) and comes back."""
    import rtmidi

    name = jack_name("vqs-fault")
    jackd = start_jackd(name)
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")  # rtmidi's JACK client here
    server = Server(model_dir, "--audio", "null", "--midi-api", "jack", "--midi-port", "Keystation",
                    env=jack_env(name))
    out = {"fault": "a MIDI port opened with --midi-port disappears and returns"}
    keyboard = None

    def plug():
        k = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="Keystation 49")
        k.open_virtual_port("out")
        return k

    def play(k, n=20):
        before = counters(server.port).get("midi.messages", 0)
        for i in range(n):
            k.send_message([0x90, 60 + i % 12, 100])
            k.send_message([0x80, 60 + i % 12, 0])
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            got = counters(server.port).get("midi.messages", 0) - before
            if got >= 2 * n:
                return got
            time.sleep(0.05)
        return got

    try:
        keyboard = plug()
        out["message_plugged"] = server.wait_for(r"MIDI port 'Keystation 49:out' is here", 5.0)
        out["handled_before"] = play(keyboard)
        unplugged = time.monotonic()
        keyboard.delete()
        keyboard = None
        out["message"] = server.wait_for(r"MIDI port 'Keystation 49:out' disappeared", 5.0)
        out["osc_meanwhile"] = osc_status(server.port) is not None
        keyboard = plug()
        out["message_back"] = server.wait_for(r"MIDI port 'Keystation 49:out' is here", 5.0, after=unplugged)
        out["handled_after"] = play(keyboard)
        keyboard.delete()
        keyboard = None
        time.sleep(0.2)
        rc = server.stop()
        out.update(returncode=rc, behaviour="reports; reopens the port when it returns",
                   survived=bool(out["message"] and out["message_back"] and out["handled_before"] == 40
                                 and out["handled_after"] == 40 and rc == 0 and _no_traceback(server)))
        return out
    finally:
        if keyboard is not None:
            keyboard.delete()
        server.kill()
        stop_jackd(jackd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        out["output"] = server.output()[-3000:]


def _refused(model_dir, *args, expect, fault) -> dict:
    server = Server(model_dir, "--audio", "null", "--no-midi", *args, ready=False)
    rc = server.wait_exit(60.0)
    text = server.output()
    line = next((l for l in text.splitlines() if re.search(expect, l)), None)
    return {"fault": fault, "returncode": rc, "message": line, "behaviour": "refuses to start (status 2)",
            "survived": rc == 2 and line is not None and "Traceback" not in text, "output": text[-2000:]}


def bad_onnx(model_dir, only=None) -> list[dict]:
    results = []
    cases = (("truncated", lambda f: (f / "generator.onnx").write_bytes((f / "generator.onnx").read_bytes()[:3000])),
             ("the encoder's file", lambda f: (f / "generator.onnx").write_bytes((f / "encoder.onnx").read_bytes())))
    for what, breakage in (cases if only is None else [cases[only]]):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "broken"
            folder.mkdir()
            for f in Path(model_dir).iterdir():
                (folder / f.name).write_bytes(f.read_bytes())
            breakage(folder)
            results.append(_refused(folder, expect=r"generator\.onnx", fault=f"generator.onnx is {what}"))
    return results


def bad_mapping(model_dir) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "live.toml"
        path.write_text('[midi]\nbend_range = 2\n\n[midi.cc.74]\ntarget = "brightnes"\n')
        return _refused(model_dir, "--mapping", str(path), expect=r"live\.toml:5: midi\.cc\.74\.target",
                        fault="mapping file with an error (unknown target)")


def osc_port_taken(model_dir) -> dict:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("0.0.0.0", 0))
    port = taken.getsockname()[1]
    try:
        server = Server(model_dir, "--audio", "null", "--no-midi", "--osc-port", str(port), ready=False)
        rc = server.wait_exit(60.0)
        taken.sendto(b"still mine", taken.getsockname())  # the other program's socket works on
        still = taken.recv(64) == b"still mine"
    finally:
        taken.close()
    text = server.output()
    line = next((l for l in text.splitlines() if "already in use" in l), None)
    return {"fault": "OSC port already taken", "returncode": rc, "message": line,
            "behaviour": "refuses to start (status 2); the other program keeps its port",
            "survived": rc == 2 and line is not None and still and "Traceback" not in text, "output": text[-2000:]}


SCENARIOS = {
    "jack-restart": lambda m: [jack_restart(m, "jack")],
    "jack-restart-sd": lambda m: [jack_restart(m, "sounddevice")],
    "jack-port-gone": lambda m: [jack_port_gone(m)],
    "midi-port-gone": lambda m: [midi_port_gone(m)],
    "bad-onnx": bad_onnx,
    "bad-mapping": lambda m: [bad_mapping(m)],
    "osc-port-taken": lambda m: [osc_port_taken(m)],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--model", default=None, help="model folder (default: a random-weight test model made here)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    model_dir = args.model
    if model_dir is None:
        from vqsynth.train.export import make_test_model

        model_dir = make_test_model(Path(tempfile.mkdtemp(prefix="vqs-faults-")) / "test-random")
    results = []
    for name in args.scenarios:
        for r in SCENARIOS[name](model_dir):
            r["scenario"] = name
            results.append(r)
            shown = {k: v for k, v in r.items() if k != "output"}
            print(json.dumps(shown), flush=True)
    survived = sum(r["survived"] for r in results)
    print(f"faults: {survived} of {len(results)} survived", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"command": " ".join(["perf/faults.py", *sys.argv[1:]]),
                                               "results": results}, indent=1) + "\n")
    return 0 if survived == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
