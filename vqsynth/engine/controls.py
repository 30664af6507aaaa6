"""Controls a voice's frames read, as changes at sample positions: pitch bend and the attributes.

A frame reads them at its own position (the last sample of its hop, where it reaches its
values), never at the time it happens to be rendered. So a voice sounds the same whether its
frames are rendered one per step or many per generator call, at any block size, and a glide
takes the same course for every voice whatever else plays. Changes wait here, ordered by
position, until no frame can still read the state before them; then they fold into the base.

Control threads add changes and the render thread reads them, each under the track's own short
lock (not the engine's: a 10k/s OSC storm of attribute changes waited on it behind the render thread).
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading

import numpy as np

_SEQ = itertools.count()  # ties at one position keep their order of arrival
SETTLED = 1e-5  # in attribute units (0..1 for most): far below what a listener or the model tells apart


class BendTrack:
    """Pitch bend per MIDI channel, in semitones: each channel's changes by position, so a read
    is a bisection (a voice reads every frame, and a storm of bends can pile up behind a voice
    that starves: a walk through all of them fed the starving)."""

    def __init__(self, channels: int = 16):
        self.base = np.zeros(channels)
        self.changes: list = [[] for _ in range(channels)]  # per channel: (pos, seq, semitones)
        self.lock = threading.Lock()

    def set(self, pos: int, channel: int, semitones: float):
        with self.lock:
            bisect.insort(self.changes[channel], (int(pos), next(_SEQ), float(semitones)))

    def at(self, channel: int, pos: int) -> float:
        """The bend of `channel` at output sample `pos`."""
        with self.lock:
            mine = self.changes[channel]
            k = bisect.bisect(mine, (int(pos), math.inf))
            return float(mine[k - 1][2] if k else self.base[channel])

    def fold(self, pos: int):
        """Forget the history before `pos` (no frame reads it any more)."""
        with self.lock:
            for channel, mine in enumerate(self.changes):
                k = bisect.bisect(mine, (int(pos), math.inf))
                if k:
                    self.base[channel] = mine[k - 1][2]
                    del mine[:k]


class AttrGlide:
    """The attributes as one-pole glides, per sample position: row 0 the global values, row c+1
    channel c's own (a part's, or an MPE member's), whose target is NaN while it follows row 0.

    Each value is kept in closed form: where it was (`v0`) at position `t0`, its target, and the
    column's coefficient; at `pos` it is target + (v0 - target) * (1 - coef) ** ((pos - t0) / hop),
    frames in generator hops of `hop` output samples. So its course does not depend on how often
    it is read, and a change rebases only the values it touches (a few scalar operations): a 10k/s
    OSC storm of changes, each once advancing every value, took most of the render thread.
    """

    def __init__(self, defaults: np.ndarray, coef: np.ndarray, hop: int, channels: int = 16):
        A = defaults.size
        self.hop = hop
        self.pos = 0  # the base state holds every change up to here
        v0 = np.zeros((channels + 1, A))
        v0[0] = defaults
        target = np.full((channels + 1, A), np.nan)
        target[0] = defaults
        # the base state: (v0, t0, target, coef)
        self.base = (v0, np.zeros((channels + 1, A)), target, np.asarray(coef, dtype=np.float64).copy())
        self.changes: list = []  # (pos, seq, change), by position; see _apply
        # (k, state): the state just after the first k changes. Voices read at nearby positions,
        # so each read starts from there instead of applying every pending change again.
        self._memo = None
        self.lock = threading.Lock()

    # changes, each at its output sample position
    def set(self, pos, row, k, value):
        """Row's target of attribute k (row 0: global; a channel row starts from where row 0 is)."""
        self._add(pos, ("set", row, k, float(value)))

    def follow(self, pos, row, k=slice(None)):
        """A channel row hands attribute k (default: all) back to the global one."""
        self._add(pos, ("follow", row, k, None))

    def recall(self, pos, k, value):
        """A global recall (a preset for every part): row 0's target, and no channel keeps its own."""
        self._add(pos, ("recall", 0, k, float(value)))

    def speed(self, pos, k, coef):
        self._add(pos, ("speed", 0, k, float(coef)))

    def jump(self, pos):
        """Every glide at its target at once (a recalled state: no glide from the defaults)."""
        self._add(pos, ("jump", 0, None, None))

    def _add(self, pos, change):
        entry = (int(pos), next(_SEQ), change)
        with self.lock:
            k = bisect.bisect(self.changes, entry)
            self.changes.insert(k, entry)
            if self._memo is not None and k < self._memo[0]:
                self._memo = None  # it had run past where this change goes

    # the closed form
    def _values(self, state, pos, rows=slice(None), k=slice(None)):
        """The values [rows, k] at `pos` (default: all; a row that follows row 0 holds still)."""
        v0, t0, target = (a[rows, k] for a in state[:3])
        coef = state[3][k]
        frames = np.maximum(pos - t0, 0.0) / self.hop
        now = target + (v0 - target) * (1.0 - coef) ** frames
        # within SETTLED of its target a glide is there: a one-pole never arrives, and frames whose
        # attributes hold still are what the generator can run many at a time
        there = np.abs(now - target) < SETTLED
        now[there] = target[there]
        free = np.isnan(target)
        now[free] = v0[free]
        return now

    def _value(self, state, pos, row, k) -> float:
        """One value at `pos`: _values for one element, in scalar arithmetic."""
        v0, t0, target, coef = state
        v, t = float(v0[row, k]), float(target[row, k])
        if t != t:
            return v
        now = t + (v - t) * (1.0 - float(coef[k])) ** (max(pos - float(t0[row, k]), 0.0) / self.hop)
        return t if abs(now - t) < SETTLED else now

    def _apply(self, state, pos, change):
        v0, t0, target, coef = state
        kind, row, k, value = change
        if kind == "set":
            v0[row, k] = self._value(state, pos, 0 if target[row, k] != target[row, k] else row, k)
            t0[row, k], target[row, k] = pos, value
        elif kind == "speed" and np.all(coef[k] == value):
            return  # the same speed again (a mapped CC sends its smoothing with every value)
        elif kind in ("follow", "recall", "speed"):
            rows = slice(row, row + 1) if kind == "follow" else slice(None)
            v0[rows, k] = self._values(state, pos, rows, k)  # each goes on from where it is
            t0[rows, k] = pos
            if kind == "follow":
                target[row, k] = np.nan
            elif kind == "recall":
                target[0, k] = value
                target[1:, k] = np.nan
            else:
                coef[k] = value
        elif kind == "jump":
            own = ~np.isnan(target)
            v0[own] = target[own]
            t0[own] = pos

    def _state(self, pos, commit: bool):
        """The state with every change up to `pos` applied (commit: folded into the base)."""
        if commit:
            state, k0 = self.base, 0
        elif self._memo is not None and self._memo[0] <= len(self.changes) and \
                (self._memo[0] == 0 or self.changes[self._memo[0] - 1][0] <= pos):
            k0, state = self._memo[0], tuple(a.copy() for a in self._memo[1])
        else:
            state, k0 = tuple(a.copy() for a in self.base), 0
        k = k0
        for p, _, change in itertools.islice(self.changes, k0, None):
            if p > pos:
                break
            self._apply(state, p, change)
            k += 1
        if commit:
            del self.changes[:k]
            if self._memo is not None:  # still the state after the same changes, now k fewer
                self._memo = (self._memo[0] - k, self._memo[1]) if self._memo[0] >= k else None
            self.pos = max(self.pos, pos)
        elif k > k0 or self._memo is None:
            self._memo = (k, tuple(a.copy() for a in state))
        return state

    def _run(self, pos):
        state = self._state(pos, commit=False)
        return self._values(state, pos), state[2]

    def at(self, pos: int):
        """(values [rows, A], targets [rows, A]) at output sample `pos` (a position before the
        folded history reads the state there)."""
        with self.lock:
            return self._run(int(pos))

    def voice(self, pos: int, part: int, channel: int) -> np.ndarray:
        """The attributes [A] a voice of `channel`, playing through `part`, reads at `pos`: the
        channel's own, else the part's own, else the global ones."""
        with self.lock:
            now, target = self._run(int(pos))
        out = np.where(np.isnan(target[part + 1]), now[0], now[part + 1])
        if channel != part:
            out = np.where(np.isnan(target[channel + 1]), out, now[channel + 1])
        return out

    def still_after(self, pos: int) -> bool:
        """True if nothing moves after `pos`: every glide at its target and no change to come."""
        with self.lock:
            if self.changes and self.changes[-1][0] > pos:
                return False
            now, target = self._run(int(pos))
        own = ~np.isnan(target)
        return bool(np.array_equal(now[own], target[own]))

    def fold(self, pos: int):
        with self.lock:
            if pos > self.pos and self.changes and self.changes[0][0] <= pos:
                self._state(int(pos), commit=True)
