"""Offline rendering through the live engine code, faster than real time.

The engine runs exactly as live, with a virtual clock: the audio callback is called block after
block and the render step runs until every voice is ahead. Each event keeps the sample position
it would get live (arrival + the engine's constant latency), but is delivered ahead of it, as
soon as a frame rendered for the next block could reach that position: the voices can then be
rendered `chunk` frames ahead, many frames per generator call. That changes nothing in the sound,
because a frame reads the controls at its own position (engine/controls.py), a stolen note ends
at the new note's first sample, and a change the audio callback makes waits for its block
(Engine._at_output). tests/test_engine.py holds chunked renders equal to frame-by-frame ones.
"""

from __future__ import annotations

import time

import numpy as np

CHUNK = 16  # frames per generator call: 0.24 ms a frame against 2.9 ms one at a time (perf/README.md)


def render(engine, events, seconds: float, tail: float = 1.0, channels: int = 1, progress=None,
           chunk: int = CHUNK):
    """events: list of (time_s, function) where function(t) calls the engine with arrival stamp t.

    Returns float32 audio at the engine's sample rate, [samples] mono or [samples, 2] stereo
    (channels=2: each part at its pan), `seconds + tail` long; `progress(done_s, total_s)` is
    called about once a second of wall time, and at the end. With the
    engine's constant latency taken off so an event at time t sounds at sample t * rate.
    """
    sr, n = engine.sample_rate, engine.block_size
    lat = engine.clock.latency
    engine.render_ahead(chunk)
    # how far past a block's first sample the frames rendered before it can reach
    ahead = n + engine.lead + 2 * engine.hop
    total = int(round((seconds + tail) * sr)) + lat
    out = np.zeros((total + n, 2) if channels == 2 else total + n, dtype=np.float32)
    events = sorted(events, key=lambda e: e[0])
    k = 0
    engine.samples_out = 0
    engine.clock.tick(0, 0.0)
    engine.now = lambda: 0.0
    engine.z_changed_at = engine.settings_changed_at = 0.0  # stamps made before, on the wall clock
    if engine.attacks.enabled:
        engine.build_attack_cache(drums=False)
    if engine.drums is not None:  # each hit made when first played, with the controls of its time
        engine.drums.on_demand = True
    told = time.monotonic()
    for first in range(0, total, n):
        if progress is not None and time.monotonic() - told >= 1.0:
            told = time.monotonic()
            progress(first / sr, total / sr)
        while k < len(events) and events[k][0] * sr + lat < first + ahead:
            t = events[k][0]
            # the attack cache's policy runs on the events' own times (they are handed over ahead
            # of their samples): what the render thread would have built live by t is built first
            engine.now = lambda s=t: s
            if engine.attacks.enabled:
                engine.build_attack_cache(drums=False, now=t)
            events[k][1](t)
            k += 1
        engine.step(out[first:first + n], now=first / sr)
    if progress is not None:
        progress(total / sr, total / sr)
    return out[lat:total]
