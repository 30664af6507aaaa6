"""Keep Python's cyclic garbage collector from stalling the audio callback.

Every thread, the JACK callback included, needs the GIL, and a full (generation 2) collection
holds it while it walks every tracked object: about 5 ms for the ~23,000 objects the model,
the mappings and the libraries leave after start-up, longer than a 2.67 ms JACK period. So once
the server is warm, everything alive is frozen (gc.freeze: never scanned again) and later
collections only walk what was made since. `watch` counts collections that still take over 1 ms.
In 10-minute soaks no full collection ran, frozen or not (perf/README.md, "Garbage collector,
GIL, ..."): the freeze is insurance for long sessions, not a measured fix for late callbacks.
"""

from __future__ import annotations

import gc
import time

SLOW_MS = 1.0


def freeze_startup_objects():
    gc.collect()
    gc.freeze()


def watch(counters: dict):
    """counters["gc_slow"]: collections over SLOW_MS; counters["gc_longest_us"]: the longest."""
    counters.setdefault("gc_slow", 0)
    counters.setdefault("gc_longest_us", 0)
    started = [0.0]

    def callback(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
            return
        us = int((time.perf_counter() - started[0]) * 1e6)
        if us > counters["gc_longest_us"]:
            counters["gc_longest_us"] = us
        if us > SLOW_MS * 1000:
            counters["gc_slow"] += 1

    gc.callbacks.append(callback)
    return callback
