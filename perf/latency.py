"""Note-on -> first output sample, end to end in the JACK rig, vqsynth and FluidSynth side by side.

A JACK measuring client (tests/probe.py) writes a note-on at a known frame inside its process
callback and finds the first captured sample above a threshold; the difference is what a
performer feels. Jitter is the spread of that latency when the note lands at random offsets
inside the period (a clock that snaps to blocks would show a period-wide spread).

    .venv/bin/python perf/latency.py [--notes 40] [--period 128] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from probe import Probe  # noqa: E402
from rig import jack_name, start_jackd, stop_jackd  # noqa: E402


def wait_ready(proc, marker, timeout=60):
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if marker in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("did not start:\n" + "".join(lines[-20:]))


def measure(probe, midi_port, audio_port, notes, period, rng, keys=None, channel=0):
    """Note-ons at random offsets in the period (pitches 48.., or `keys` in turn on `channel`)."""
    probe.connect_to(midi_port)
    probe.connect_from(audio_port)
    time.sleep(0.3)
    lat = []
    for k in range(notes):
        offset = int(rng.integers(0, period))
        pitch = keys[k % len(keys)] if keys else 48 + (k % 24)
        v = probe.measure_note(pitch, 110, wait=0.12, offset=offset, channel=channel)
        if v is not None:
            lat.append(v)
        time.sleep(0.03)
    probe.client.disconnect(probe.midi_out.name, midi_port)
    probe.client.disconnect(audio_port, probe.audio_in.name)
    return np.array(lat, dtype=float)


def measure_osc(probe, audio_port, osc_port, notes):
    """Note-on over OSC (UDP from the probe's JACK callback) -> first sound, through --audio jack."""
    import socket

    from pythonosc.osc_message_builder import OscMessageBuilder

    def msg(addr, *args):
        b = OscMessageBuilder(addr)
        for a in args:
            b.add_arg(a)
        return b.build().dgram

    probe.connect_from(audio_port)
    time.sleep(0.3)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    lat = []
    for k in range(notes):
        v = probe.measure_osc_note(sock, ("127.0.0.1", osc_port), msg("/vqsynth/note/on", 48 + k % 24, 110),
                                   msg("/vqsynth/panic"), wait=0.12)
        if v is not None:
            lat.append(v)
        time.sleep(0.03)
    probe.client.disconnect(audio_port, probe.audio_in.name)
    return np.array(lat, dtype=float)


def summary(name, frames, sr, notes):
    if frames.size == 0:  # none heard: say so rather than fail on an empty median
        return {"instrument": name, "notes": notes, "heard": 0, "median_ms": None, "p95_ms": None,
                "max_ms": None, "jitter_std_ms": None}
    ms = frames * 1000 / sr
    return {"instrument": name, "notes": notes, "heard": int(frames.size),
            "median_ms": round(float(np.median(ms)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "max_ms": round(float(ms.max()), 2), "jitter_std_ms": round(float(ms.std()), 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--notes", type=int, default=40)
    ap.add_argument("--period", type=int, default=128)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    name = jack_name("vqs-perf")
    jackd = start_jackd(name, period=args.period)
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    procs, results = [], []
    try:
        probe = Probe("measure", server=name)
        rng = np.random.default_rng(0)
        for label, backend in (("vqsynth --audio jack", ["--audio", "jack"]),
                               ("vqsynth --audio sounddevice (PortAudio + rtmidi)",
                                ["--audio", "sounddevice", "--midi-api", "jack"])):
            cmd = [sys.executable, "-m", "vqsynth", "serve", *backend, "--osc-port", "0",
                   "--block-size", str(args.period)] + (["--model", args.model] if args.model else [])
            vq = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            procs.append(vq)
            ready = wait_ready(vq, "vqsynth ready").strip()
            print(ready)
            midi = [p for p in probe.find("", is_midi=True, is_input=True) if not p.startswith("measure:")][0]
            audio = [p for p in probe.find("", is_output=True) if not p.startswith(("system:", "measure:"))][0]
            results.append(summary(label + ", MIDI", measure(probe, midi, audio, args.notes, args.period, rng),
                                   probe.sr, args.notes))
            if backend[1] == "jack" and "drums" in ready:
                results.append(summary(label + ", MIDI drum hit (channel 10)",
                                       measure(probe, midi, audio, args.notes, args.period, rng,
                                               keys=(36, 38, 42, 46), channel=9),
                                       probe.sr, args.notes))
            if backend[1] == "jack":
                osc_port = int(ready.rsplit(":", 1)[1])
                results.append(summary(label + ", OSC", measure_osc(probe, audio, osc_port, args.notes),
                                       probe.sr, args.notes))
            vq.terminate()
            vq.wait(10)
            time.sleep(0.5)
        sf2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
        fs = subprocess.Popen(["fluidsynth", "-a", "jack", "-m", "jack", "-i", "-s", "-g", "1", "-R", "0", "-C", "0",
                               "-r", "48000", "-o", "audio.jack.autoconnect=0", "-o", "midi.jack.id=fsynth",
                               "-o", f"audio.jack.id=fsynth", sf2],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        procs.append(fs)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not probe.find("fsynth", is_midi=True, is_input=True):
            time.sleep(0.1)
        time.sleep(0.5)
        midi = probe.find("fsynth", is_midi=True, is_input=True)[0]
        audio = probe.find("fsynth", is_output=True)[0]
        results.append(summary("FluidSynth 2.3", measure(probe, midi, audio, args.notes, args.period, rng),
                               probe.sr, args.notes))
        xruns = probe.xruns
        probe.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        stop_jackd(jackd)
    print(f"JACK dummy, {args.period}-frame periods at 48 kHz; {xruns} xruns seen by the probe")
    print("| instrument | heard/sent | median | p95 | max | jitter (std) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['instrument']} | {r['heard']}/{r['notes']} | {r['median_ms']} ms | {r['p95_ms']} ms | "
              f"{r['max_ms']} ms | {r['jitter_std_ms']} ms |")
    if args.json:
        Path(args.json).write_text(json.dumps({"period": args.period, "xruns": xruns, "results": results}, indent=1))


if __name__ == "__main__":
    main()
