"""What 16 parts cost: one attack-cache build per instrument in use (time, memory), and a GM-style
piece on N parts with N programs against the same notes on one part, rendered side by side.

    .venv/bin/python perf/parts.py [--model NAME] [--sample-rate 44100] [--parts 8]
"""

from __future__ import annotations

import argparse
import time

import mido
import numpy as np


def cache_bytes(cache: dict) -> int:
    total = 0
    for audio, frames, (state, snap, _) in cache["entries"].values():
        total += audio.nbytes + frames.nbytes + state.nbytes + sum(a.nbytes for a in snap)
    return total


def piece(parts: int, programs: list[int], seconds: float = 8.0):
    """Each part: its program, a pan across the field, then a note every 0.5 s (one part at a time
    plays two-note chords, so 2 x parts voices sound at most)."""
    msgs = []
    for ch in range(parts):
        c = ch if ch < 9 else ch + 1  # skip channel 10, the drum part
        msgs += [(0.0, mido.Message("program_change", channel=c, program=programs[ch])),
                 (0.0, mido.Message("control_change", channel=c, control=10, value=int(127 * ch / max(parts - 1, 1))))]
        for k in range(int(seconds / 0.5)):
            t = 0.1 + 0.5 * k + 0.03 * ch
            for p in (48 + 2 * ch, 55 + 2 * ch):
                msgs += [(t, mido.Message("note_on", channel=c, note=p, velocity=90)),
                         (t + 0.45, mido.Message("note_off", channel=c, note=p))]
    return sorted(msgs, key=lambda m: m[0])


def main():
    from vqsynth.control.mapping import load_mapping
    from vqsynth.control.midi import MidiController
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.offline import render
    from vqsynth.model.folder import load_model, resolve_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--parts", type=int, default=8)
    args = ap.parse_args()
    model = load_model(resolve_model(args.model))
    programs = [0, 24, 40, 56, 73, 11, 32, 48, 64, 80, 88, 104, 4, 19, 68, 71][:args.parts]

    engine = Engine(model, sample_rate=args.sample_rate, polyphony=32)
    t0 = time.perf_counter()
    engine.build_attack_cache()
    one = time.perf_counter() - t0
    size = cache_bytes(next(iter(engine.attacks.built.values())))
    print(f"{model.name} at {args.sample_rate} Hz: one attack cache {one:.2f} s to build, {size / 2**20:.1f} MiB "
          f"({len(next(iter(engine.attacks.built.values()))['entries'])} attacks)")

    def run(msgs):
        e = Engine(model, sample_rate=args.sample_rate, polyphony=32)
        c = MidiController(e, load_mapping())
        t = time.perf_counter()
        audio = render(e, [(at, lambda x, m=m: c.handle(m, x)) for at, m in msgs], 8.0, tail=0.5, channels=2)
        return time.perf_counter() - t, audio, e

    many = piece(args.parts, programs)
    single = [(t, m.copy(channel=0) if m.type in ("note_on", "note_off") else m) for t, m in many
              if m.type in ("note_on", "note_off")]
    took_many, audio, e = run(many)
    took_one, _, _ = run(single)
    seconds = audio.shape[0] / args.sample_rate
    print(f"{args.parts} parts, {args.parts} programs: {len(e.attacks.built)} caches, render {took_many:.1f} s for "
          f"{seconds:.1f} s ({seconds / took_many:.2f}x real time); the same notes on one part: {took_one:.1f} s "
          f"({seconds / took_one:.2f}x); ratio {took_many / took_one:.2f}")
    left, right = np.sqrt(np.mean(audio[:, 0] ** 2)), np.sqrt(np.mean(audio[:, 1] ** 2))
    print(f"stereo RMS left {20 * np.log10(left + 1e-12):.1f} dB, right {20 * np.log10(right + 1e-12):.1f} dB")


if __name__ == "__main__":
    main()
