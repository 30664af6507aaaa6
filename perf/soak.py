"""Soak: continuous playing from MIDI and OSC at once for 10 minutes (or an hour), in the JACK rig.

The same rig as perf/flood.py (the real server with --audio jack, a private jackd -d dummy, a
JACK client that plays and listens), with a performance instead of a storm:
- MIDI (written in the player's JACK callback): a melody on channel 1 (about 6 notes a second,
  0.08-1.2 s long, chords now and then), the sustain pedal down 2 s in every 6, a pitch-bend
  sweep (~47 updates a second), CC74 and CC1 sweeps (~23 a second each), a program change every
  30 s, and a drone on channel 2 that is always held (each new drone note starts before the old
  one ends), so the output must never fall silent;
- OSC (another process): attribute sweeps (warmth, hardness, sharpness, depth) --osc-rate
  times a second, notes with ids about twice a second, a preset change every 45 s.
Every second: voices, underruns, the server's memory. At the end: all notes off, and every voice
must end. Target: 0 underruns, no growth in memory or voices.

Underruns come in two kinds, both reported: JACK's xruns of the whole graph (whoever was late:
on this VM the dummy driver's own cycles start late now and then, with no vqsynth running at
all), and `late_callbacks`, the periods in which vqsynth's own callback finished after its
deadline or cycles it missed (CycleWatch). So that both can be read, the run starts with
`--floor-minutes` of the same rig with only the player client in it, and two witnesses play
beside vqsynth all along, idle JACK clients each in a process of its own, counted by the same
rule: one in C (perf/witness.c) connected to nothing, which JACK runs as soon as the cycle
starts (what any client on this machine suffers), and one in Python that reads the player's
MIDI, so JACK runs it after the player, where vqsynth runs (what any client in vqsynth's place
suffers). The player is counted too: a late player makes every client after it late.

    nice -n 10 .venv/bin/python perf/soak.py --minutes 10 --json perf/results/soak.json
    nice -n 10 .venv/bin/python perf/soak.py --minutes 60 --json perf/results/soak-1h.json
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import flood  # noqa: E402


def performance(seed=0, periods_per_second=375.0):
    """A MIDI schedule(period) -> [(offset, bytes)] that plays forever until state["on"] is False."""
    rng = np.random.default_rng(seed)
    second = periods_per_second
    offs: dict[int, list[bytes]] = {}
    state = {"on": True, "pitch": 60, "drone": None, "held": set(), "program": 0, "finished": False}

    def at(period, msg):
        offs.setdefault(period, []).append(msg)

    def schedule(p):
        ev = []
        if not state["on"]:
            if not state["finished"]:  # release everything still held, pedal up
                state["finished"] = True
                for due in sorted(offs):
                    ev += [(0, m) for m in offs.pop(due)]
                ev += [(0, bytes([0xB0, 64, 0])), (0, bytes([0xB1, 64, 0]))]
            return ev
        ev += [(0, m) for m in offs.pop(p, [])]
        t = p / second
        # drone on channel 2: a new note every 8 s, the old one released half a second later
        if p % int(8 * second) == 0:
            pitch = 48 if state["drone"] != 48 else 55
            ev.append((1, bytes([0x91, pitch, 90])))
            if state["drone"] is not None:
                at(p + int(0.5 * second), bytes([0x81, state["drone"], 0]))
            state["drone"] = pitch
        # melody on channel 1
        if rng.random() < 6.0 / second:
            k = 3 if rng.random() < 0.15 else 1
            state["pitch"] = int(np.clip(state["pitch"] + rng.integers(-5, 6), 48, 84))
            length = int(rng.uniform(0.08, 1.2) * second)
            for j in range(k):
                pitch = state["pitch"] + (0, 4, 7)[j]
                ev.append((int(rng.integers(0, 100)), bytes([0x90, pitch, int(rng.integers(40, 121))])))
                at(p + length, bytes([0x80, pitch, 0]))
        # sustain pedal: down 2 s in every 6
        if p % int(6 * second) == int(1 * second):
            ev.append((2, bytes([0xB0, 64, 127])))
        if p % int(6 * second) == int(3 * second):
            ev.append((2, bytes([0xB0, 64, 0])))
        # pitch bend sweep, CC74 and CC1 sweeps
        if p % 8 == 0:
            bend = int(8192 + 4000 * math.sin(2 * math.pi * 0.2 * t))
            ev.append((3, bytes([0xE0, bend & 0x7F, bend >> 7])))
        if p % 16 == 0:
            ev.append((4, bytes([0xB0, 74, int(63.5 + 63.5 * math.sin(2 * math.pi * t / 10))])))
        if p % 16 == 8:
            ev.append((4, bytes([0xB0, 1, int(63.5 + 63.5 * math.sin(2 * math.pi * t / 7))])))
        # a program change every 30 s
        if p % int(30 * second) == int(15 * second):
            state["program"] = (state["program"] + 1) % 4
            ev.append((5, bytes([0xC0, state["program"]])))
        ev.sort(key=lambda e: e[0])
        return ev
    schedule.state = state
    return schedule


def osc_performer(port, rate, seconds, seed, results):
    """Child process: attribute sweeps `rate` a second, notes with ids ~2 a second, a preset every 45 s."""
    from fuzz_targets import osc_message

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    target = ("127.0.0.1", port)
    rng = np.random.default_rng(seed + 1)
    attrs = ["warmth", "hardness", "sharpness", "depth"]
    sent = fails = 0
    held = {}  # id -> release time
    next_id, next_note, next_preset, preset = 1, 0.5, 45.0, 0
    start = time.perf_counter()
    k = 0
    while True:
        t = time.perf_counter() - start
        if t >= seconds:
            break
        while k < int(t * rate):
            name = attrs[k % len(attrs)]
            value = 0.5 + 0.45 * math.sin(2 * math.pi * t / (5 + 3 * (k % len(attrs))))
            sock.sendto(osc_message(f"/vqsynth/attr/{name}", float(value)), target)
            sent += 1
            k += 1
        if t >= next_note:
            pitch = int(rng.integers(60, 85))
            sock.sendto(osc_message("/vqsynth/note/on", pitch, int(rng.integers(50, 110)), next_id), target)
            held[next_id] = (t + rng.uniform(0.1, 0.6), pitch)
            next_id, next_note, sent = next_id + 1, t + rng.exponential(0.5), sent + 1
        for nid, (due, pitch) in list(held.items()):
            if t >= due:
                sock.sendto(osc_message("/vqsynth/note/off", pitch, nid), target)
                del held[nid]
                sent += 1
        if t >= next_preset:
            preset = (preset + 1) % 4
            sock.sendto(osc_message("/vqsynth/preset", preset), target)
            next_preset, sent = t + 45.0, sent + 1
        while True:
            try:
                fails += sock.recv(65536).startswith(b"/fail")
            except BlockingIOError:
                break
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    for nid, (_, pitch) in held.items():
        sock.sendto(osc_message("/vqsynth/note/off", pitch, nid), target)
        sent += 1
    time.sleep(0.2)
    while True:
        try:
            fails += sock.recv(65536).startswith(b"/fail")
        except BlockingIOError:
            break
    results.put({"sent": sent, "seconds": round(elapsed, 2), "rate": round(sent / elapsed), "fails": fails,
                 "releases": 0})


def rig_floor(seconds, period=128) -> dict:
    """JACK xruns of the rig with no vqsynth: jackd -d dummy and the player client only."""
    jackd = flood.Jackd(period=period)
    try:
        player = flood.Player(jackd.name, lambda p: [])
        time.sleep(seconds)
        xruns, periods = player.xruns, player.period
        player.close()
    finally:
        jackd.stop()
    return {"seconds": seconds, "xruns": xruns, "xruns_per_minute": round(xruns / (seconds / 60), 1),
            "periods": periods}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="10 (the default) or 60 for the one-hour soak")
    ap.add_argument("--osc-rate", type=int, default=100, help="OSC attribute updates a second")
    ap.add_argument("--model", default=None, help="model folder (default: a random-weight test model made here)")
    ap.add_argument("--server-nice", type=int, default=None,
                    help="niceness of the server under test (default: this script's); a performer's runs at 0")
    ap.add_argument("--floor-minutes", type=float, default=1.0,
                    help="first, the rig alone (jackd + the player, no vqsynth) for this long [1]")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="one more argument for `vqsynth serve` (repeatable), e.g. --server-arg=--no-gc-freeze")
    ap.add_argument("--no-witness", dest="witness", action="store_false",
                    help="leave out the witnesses: idle JACK clients, one in C (perf/witness.c) connected to "
                         "nothing and one in Python after the player, as vqsynth is, each in a process of its own, "
                         "counted like vqsynth's callback (what the graph and the CPU do to any client)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    floor = rig_floor(args.floor_minutes * 60) if args.floor_minutes > 0 else None
    model_dir = args.model
    if model_dir is None:
        from vqsynth.train.export import make_test_model

        model_dir = make_test_model(Path(tempfile.mkdtemp(prefix="vqs-soak-")) / "test-random")
    seconds = args.minutes * 60

    def every(s):
        if int(s["t"]) % 10 == 0:
            print(json.dumps(s), flush=True)
    out = flood.run(model_dir, seconds, osc_rate=args.osc_rate, midi_rate=0, midi_schedule=performance(),
                    osc_process=osc_performer, on_second=every, server_nice=args.server_nice, progress=args.json,
                    extra_args=args.server_arg, witness=args.witness)
    out["command"] = " ".join(["perf/soak.py", *sys.argv[1:]])
    out["rig_floor"] = floor
    out["xruns_per_minute"] = round(out["underruns"] / (seconds / 60), 1)
    out["late_callbacks"] = out["engine"].get("late_callbacks")
    out["late_callbacks_entered_late"] = out["engine"].get("late_callbacks_entered_late")
    out["gc_slow"], out["gc_longest_us"] = out["engine"].get("gc_slow"), out["engine"].get("gc_longest_us")
    tl = out["timeline"]
    out["voices_first_minute_max"] = max((x["voices"] or 0) for x in tl[:60]) if tl else None
    out["voices_last_minute_max"] = max((x["voices"] or 0) for x in tl[-60:]) if tl else None
    flood.report(out, args.json)


if __name__ == "__main__":
    main()
