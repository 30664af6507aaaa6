"""JACK MIDI bursts: N events written in one period by a sender in its own process (as a DAW
does), into the engine's own JACK client; how many it handled, how many it counted lost.

    .venv/bin/python perf/midi_burst.py [--events 100,200,400,1000] [--runs 3] [--server-root DIR]

--server-root runs the vqsynth of another checkout (`git worktree add /tmp/old <commit>`), to
measure a version before a fix side by side with this one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from rig import jack_name, start_jackd, stop_jackd  # noqa: E402

ONE_RUN = """
import glob, sys, time
from vqsynth.control.midi import MidiController
from vqsynth.engine.backends import JackBackend
from vqsynth.engine.engine import Engine
from vqsynth.model.folder import load_model, resolve_model
engine = Engine(load_model(resolve_model("vqsynth-gm")), sample_rate=48000, block_size=128)
controller = MidiController(engine)
backend = JackBackend(engine, controller=controller, connect=False)
engine.start(); backend.start()
import subprocess
sent = subprocess.run([sys.executable, sys.argv[2], sys.argv[1], backend.client.name + ":midi_in"],
                      capture_output=True, text=True).stdout.split()[-1]
time.sleep(1.0)
print(sent, controller.counters["messages"], engine.counters.get("midi_lost", 0), engine.status()["voices"])
backend.stop(); engine.stop()
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", default="100,200,400,1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--server-root", default=str(HERE.parent))
    args = ap.parse_args()
    name = jack_name()
    proc = start_jackd(name)
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1",
               PYTHONPATH=args.server_root)
    try:
        print(f"server code: {args.server_root}")
        print("| events in one period | sent | handled (each run) | counted lost | voices left sounding |")
        print("|---|---|---|---|---|")
        for n in [int(x) for x in args.events.split(",")]:
            rows = []
            for _ in range(args.runs):
                r = subprocess.run([sys.executable, "-c", ONE_RUN, str(n), str(HERE.parent / "tests" / "jack_burst.py")],
                                   capture_output=True, text=True, env=env, cwd=args.server_root, timeout=120)
                rows.append(r.stdout.split() or ["?", "?", "?", "?"])
                time.sleep(0.2)
            print(f"| {n} | {rows[0][0]} | {', '.join(r[1] for r in rows)} | {', '.join(r[2] for r in rows)} | "
                  f"{', '.join(r[3] for r in rows)} |", flush=True)
    finally:
        stop_jackd(proc)


if __name__ == "__main__":
    main()
