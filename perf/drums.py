"""What the drum part costs: one kit's hit cache (time, memory, hits per second of one core), and
16th-note rolls at 200 BPM on four keys while the drum controls sweep, on the live engine (render
thread and paced audio callback of `--audio null`), with the counters that say whether a hit or a
block was lost.

    .venv/bin/python perf/drums.py [--drums NAME] [--seconds 20] [--sample-rate 48000]
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np


def main():
    from vqsynth.engine.backends import NullBackend
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.options import load_drums
    from vqsynth.model.folder import load_model, resolve_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--drums", default=None)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--sample-rate", type=int, default=48000)
    ap.add_argument("--bpm", type=float, default=200.0)
    args = ap.parse_args()
    model = load_model(resolve_model(args.model))
    drums = load_drums(args.drums)
    if drums is None:
        raise SystemExit("no drum model (models/vqsynth-drums, or --drums NAME)")

    e = Engine(model, sample_rate=args.sample_rate, block_size=128, drums=drums)
    t0 = time.process_time()
    w0 = time.perf_counter()
    for _ in e.drums.builder():
        pass
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    n_hits = sum(len(v) for _, v in e.drums.cache.values())
    mib = sum(a.nbytes for _, v in e.drums.cache.values() for a in v) / 2 ** 20
    lengths = [len(a) / args.sample_rate for _, v in e.drums.cache.values() for a in v]
    print(f"kit '{drums.kits[0].name}': {n_hits} hits ({len(drums.kits[0].keys)} keys x 3 layers) in {wall:.1f} s "
          f"wall, {cpu:.1f} s CPU ({n_hits / wall:.1f} hits/s), {mib:.1f} MiB, hit length median "
          f"{np.median(lengths):.2f} s (trimmed at -70 dB)")
    e.set_drums(variation=0.5)
    w0 = time.perf_counter()
    for _ in e.drums.builder():
        pass
    n_var = sum(len(v) for _, v in e.drums.cache.values())
    print(f"variation > 0: {n_var} hits in {time.perf_counter() - w0:.1f} s, "
          f"{sum(a.nbytes for _, v in e.drums.cache.values() for a in v) / 2 ** 20:.1f} MiB")

    # the roll, live: a player thread at real time, a sweeper changing the drum controls every 2 s
    e.set_drums(variation=0.0)
    e.build_attack_cache()
    backend = NullBackend(e)
    e.start()
    backend.start()
    keys = (36, 38, 42, 46)
    step = 60.0 / args.bpm / 4
    stop = threading.Event()
    sent = [0]

    def player():
        t_next = time.monotonic()
        k = 0
        while not stop.is_set():
            for key in keys:
                e.drum_hit(key, 60 + (k * 17) % 67, t=time.monotonic())
                sent[0] += 1
            k += 1
            t_next += step
            time.sleep(max(0.0, t_next - time.monotonic()))

    def sweeper():
        k = 0
        while not stop.wait(2.0):
            k += 1
            e.set_drums(variation=(k % 3) / 4, morph={"snare": (k % 4) / 8}, offsets={"brightness": ((k % 5) - 2) / 10})

    before = dict(e.counters)
    threads = [threading.Thread(target=player), threading.Thread(target=sweeper)]
    for t in threads:
        t.start()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    time.sleep(0.5)
    backend.stop()
    e.stop()
    c = e.drums.counters
    print(f"roll: {sent[0]} hits sent in {args.seconds:.0f} s ({args.bpm:.0f} BPM 16ths on {len(keys)} keys, "
          f"controls changed every 2 s): played {c['drum_hits']}, not cached {c['drum_uncached']}, "
          f"cut for a free slot {c['drum_cut']}, choked {c['drum_choked']}; engine late callbacks "
          f"{e.counters['late_callbacks'] - before['late_callbacks']}, underruns "
          f"{e.counters['underruns'] - before['underruns']}, starved {e.counters['starved'] - before['starved']}")


if __name__ == "__main__":
    main()
