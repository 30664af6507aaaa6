"""How many voices the engine renders in real time: render-thread + callback cost per second of
audio, measured offline on one thread with N voices held, for N = 1, 2, 4, ... (and the
generator alone, batched, in frames per second on one core).

    .venv/bin/python perf/voices.py [--model NAME] [--seconds 3]

Real time means the cost per audio second is under 1 s of one core; DESIGN.md's budget is half a
core for the model, so both the 100 % and the 50 % points are printed.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from vqsynth.engine.engine import Engine
from vqsynth.model.folder import load_model, resolve_model


def cost_per_second(model, voices, seconds, sample_rate=48000):
    engine = Engine(model, sample_rate=sample_rate, polyphony=max(voices, 1), attack_cache=False)
    out = np.zeros(engine.block_size, dtype=np.float32)
    for v in range(voices):
        engine.note_on(36 + (v * 7) % 60, 100, at_sample=0)
    engine.clock.tick(0, 0.0)
    blocks = int(seconds * sample_rate / engine.block_size)
    t0 = time.perf_counter()
    for b in range(blocks):
        engine.step(out, now=b * engine.block_size / sample_rate)
    took = time.perf_counter() - t0
    assert engine.counters["starved"] == 0
    return took / (blocks * engine.block_size / sample_rate)


def generator_fps(model, batch, frames=200):
    z = np.random.default_rng(0).standard_normal((batch, model.z_size)).astype(np.float32)
    pitch = np.full(batch, 60.0, dtype=np.float32)
    attrs = np.repeat(model.attr_defaults[None], batch, 0)
    tok = np.ones((batch, 1), dtype=np.int64)
    state = model.initial_state(batch)
    for _ in range(10):
        _, state = model.generate(z, pitch, attrs, tok, state)
    t0 = time.perf_counter()
    for _ in range(frames):
        _, state = model.generate(z, pitch, attrs, tok, state)
    return batch * frames / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--json", default=None, help="write the results here too")
    args = ap.parse_args()
    model = load_model(resolve_model(args.model), threads=1)
    rows = []
    print(f"model {model.name}: generator frames/s on one thread (batched voices)")
    for b in (1, 8, 32):
        fps = generator_fps(model, b)
        print(f"  batch {b:3d}: {fps:9.0f} frames/s = {fps / 100:.0f} voices at 100 frames/s")
        rows.append({"kind": "generator", "batch": b, "frames_per_s": round(fps)})
    print("engine (generator + DSP head + mixing), cost per second of 48 kHz audio, one thread")
    best100 = best50 = 0
    for v in (1, 2, 4, 8, 16, 24, 32, 48, 64):
        c = cost_per_second(model, v, args.seconds)
        print(f"  {v:3d} voices: {c:6.3f} core-s per s")
        rows.append({"kind": "engine", "voices": v, "core_s_per_s": round(c, 4)})
        best100 = v if c < 1.0 else best100
        best50 = v if c < 0.5 else best50
        if c > 1.2:
            break
    print(f"max voices in real time: {best100} (under one core), {best50} (under half a core)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": model.name, "rows": rows, "max_voices_1core": best100,
                       "max_voices_half_core": best50}, f, indent=1)


if __name__ == "__main__":
    main()
