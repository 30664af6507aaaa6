"""`serve --dump-midi / --dump-osc`: one line per incoming event, as FluidSynth's -d and
scsynth's /dumpOSC do. The port's thread (the JACK callback included) only puts the event on a
queue; a printer thread of its own formats and writes it, so a slow terminal never delays sound."""

from __future__ import annotations

import queue
import sys
import threading
import time


class EventDump:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.t0 = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="vqsynth-dump", daemon=True)
        self.thread.start()

    def put(self, kind: str, what):
        self.events.put((time.monotonic(), kind, what))

    def close(self):
        self.events.put(None)
        self.thread.join(timeout=2.0)

    def _run(self):
        while (item := self.events.get()) is not None:
            t, kind, what = item
            print(f"{t - self.t0:10.4f} {kind} {what}", file=self.stream, flush=True)
