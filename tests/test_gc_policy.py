"""The server's garbage-collector policy (vqsynth/engine/gc_policy.py)."""

import gc

from vqsynth.engine import gc_policy


def test_watch_sees_collections_and_counts_slow_ones():
    counters = {}
    cb = gc_policy.watch(counters)
    try:
        junk = [[i] for i in range(300_000)]  # tracked objects a full collection must walk
        gc.collect()
        assert counters["gc_longest_us"] > 0
        slow_before = counters["gc_slow"]
        gc_policy.SLOW_MS, old = 0.0, gc_policy.SLOW_MS
        try:
            gc.collect()
        finally:
            gc_policy.SLOW_MS = old
        assert counters["gc_slow"] == slow_before + 1
        del junk
    finally:
        gc.callbacks.remove(cb)


def test_freeze_takes_startup_objects_out_of_every_collection():
    gc.unfreeze()
    keep = [[i] for i in range(50_000)]
    try:
        gc_policy.freeze_startup_objects()
        assert gc.get_freeze_count() >= len(keep)
        assert not any(o is keep for o in gc.get_objects(2))  # a full collection no longer walks them
    finally:
        gc.unfreeze()
