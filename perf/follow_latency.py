"""Input-to-output latency of the follow part in the JACK rig: a measuring client plays
FluidSynth notes (and tone bursts) into vqsynth:audio_in inside its own process callback and
captures vqsynth:out_1; latency is onset to onset, in frames of the same clock.

    .venv/bin/python perf/follow_latency.py [--via jack|sounddevice] [--notes 20] [--period 128] [--model NAME]

--via jack: the JACK client's own input port; sounddevice: a PortAudio input stream (through
PortAudio's JACK host API here, so the same rig measures both).

The input's onset is where its own envelope first passes -40 dB of its peak; the output's, where
the captured output first passes 1e-5 after that (the follow part is silent in between). The
issue's target: <= 20 ms at 128-frame periods (DDSP-VST: 64 ms, RAVE through nn~: 46 ms and up).
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
from latency import wait_ready  # noqa: E402

SR = 48000


def inputs(notes: int):
    """[(name, audio)]: FluidSynth violin and flute notes, and a harmonic tone, each 0.4 s."""
    from vqsynth.data.cli import DEFAULT_SOUNDFONT
    from vqsynth.data.render import Renderer

    out = []
    with Renderer(DEFAULT_SOUNDFONT, SR) as r:
        for k in range(notes):
            program = (40, 73)[k % 2]
            out.append((("violin", "flute")[k % 2], r.note(0, program, 60 + (k * 5) % 17, 100, 0.4, 0.35)))
    t = np.arange(int(0.4 * SR)) / SR
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 6)) * 0.1
    out += [("tone", tone.astype(np.float32))] * max(1, notes // 2)
    return out


def onset(y, floor_db=-40.0):
    env = np.abs(y)
    return int(np.flatnonzero(env > env.max() * 10 ** (floor_db / 20))[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--via", choices=("jack", "sounddevice"), default="jack")
    ap.add_argument("--notes", type=int, default=20)
    ap.add_argument("--period", type=int, default=128)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    name = jack_name("vqs-perf")
    jackd = start_jackd(name, period=args.period)
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    extra = ["--input-device", "system"] if args.via == "sounddevice" else []
    cmd = [sys.executable, "-m", "vqsynth", "serve", "--audio", "jack", "--follow-input", args.via, *extra, "--no-midi",
           "--osc-port", "0", "--block-size", str(args.period)] + (["--model", args.model] if args.model else [])
    vq = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    results = {}
    try:
        print(wait_ready(vq, "vqsynth ready").strip())
        probe = Probe("measure", server=name, seconds=2.0 * args.notes + 10.0)
        probe.connect_out_to({"jack": "vqsynth:audio_in", "sounddevice": "PortAudio:in_0"}[args.via])
        probe.connect_from("vqsynth:out_1")
        time.sleep(0.3)
        lat: dict[str, list[float]] = {}
        for kind, audio in inputs(args.notes):
            probe.play(audio)
            time.sleep(1.0)
            start = probe.played_at - probe.first_frame
            on = start + onset(audio)
            heard = np.flatnonzero(np.abs(probe.capture[on:start + audio.size]) > 1e-5)
            if heard.size:
                lat.setdefault(kind, []).append(1000.0 * heard[0] / probe.sr)
        for kind, v in lat.items():
            v = np.array(v)
            results[kind] = {"n": int(v.size), "median_ms": round(float(np.median(v)), 2),
                             "p95_ms": round(float(np.percentile(v, 95)), 2), "max_ms": round(float(v.max()), 2)}
            print(kind, json.dumps(results[kind]), flush=True)
        probe.close()
    finally:
        vq.terminate()
        try:
            vq.wait(10)
        except subprocess.TimeoutExpired:
            vq.kill()
        stop_jackd(jackd)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
