"""Maps arrival times (time.monotonic) to output sample positions.

The audio callback calls `tick(first_sample, now)` once per block. A delay-locked loop smooths
the callback's wake-up jitter so the mapping follows the sample clock, not the scheduler: an
event stamped at time t is placed at sample `position(t) + latency`, a constant delay, so its
timing does not jitter with the block size (DESIGN.md real-time rules).
"""

from __future__ import annotations

import time


class SampleClock:
    def __init__(self, sample_rate: int, latency_samples: int):
        self.sample_rate = sample_rate
        self.latency = latency_samples
        self.anchor_sample = 0
        self.anchor_time = time.monotonic()
        self.locked = False

    def tick(self, first_sample: int, now: float):
        """Called by the audio thread at the start of each block; O(1), no allocation."""
        predicted = self.anchor_time + (first_sample - self.anchor_sample) / self.sample_rate
        error = now - predicted
        if not self.locked or abs(error) > 0.02:
            self.anchor_time, self.locked = now, True  # start, or a jump (xrun): re-anchor
        else:
            self.anchor_time = predicted + 0.02 * error
        self.anchor_sample = first_sample

    def now_sample(self, t: float | None = None) -> float:
        t = time.monotonic() if t is None else t
        return self.anchor_sample + (t - self.anchor_time) * self.sample_rate

    def position(self, t: float | None = None) -> int:
        """The output sample at which an event that arrived at monotonic time t sounds."""
        return int(round(self.now_sample(t))) + self.latency

    def time_of(self, sample: int) -> float:
        """The arrival stamp that `position` maps to `sample`: lets a backend that knows an event's
        exact sample (JACK MIDI) hand it to code that speaks in arrival times."""
        return self.anchor_time + (sample - self.latency - self.anchor_sample) / self.sample_rate
