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
import threading

import numpy as np

_SEQ = itertools.count()  # ties at one position keep their order of arrival
SETTLED = 1e-5  # in attribute units (0..1 for most): far below what a listener or the model tells apart


class BendTrack:
    """Pitch bend per MIDI channel, in semitones."""

    def __init__(self, channels: int = 16):
        self.base = np.zeros(channels)
        self.changes: list = []  # (pos, seq, channel, semitones), by position
        self.lock = threading.Lock()

    def set(self, pos: int, channel: int, semitones: float):
        with self.lock:
            bisect.insort(self.changes, (int(pos), next(_SEQ), int(channel), float(semitones)))

    def at(self, channel: int, pos: int) -> float:
        """The bend of `channel` at output sample `pos`."""
        with self.lock:
            value = self.base[channel]
            for p, _, c, v in self.changes:
                if p > pos:
                    break
                if c == channel:
                    value = v
        return float(value)

    def fold(self, pos: int):
        """Forget the history before `pos` (no frame reads it any more)."""
        with self.lock:
            k = 0
            for p, _, c, v in self.changes:
                if p > pos:
                    break
                self.base[c] = v
                k += 1
            del self.changes[:k]


class AttrGlide:
    """The attributes as one-pole glides, per sample position: row 0 the global values, row c+1
    channel c's own (a part's, or an MPE member's), whose target is NaN while it follows row 0.

    The glide advances by (1 - coef) ** frames towards its target, frames in generator hops of
    `hop` output samples: the closed form, so its course does not depend on how often it is read.
    """

    def __init__(self, defaults: np.ndarray, coef: np.ndarray, hop: int, channels: int = 16):
        A = defaults.size
        self.hop = hop
        self.pos = 0  # where `now` is
        self.now = np.zeros((channels + 1, A))
        self.now[0] = defaults
        self.target = np.full((channels + 1, A), np.nan)
        self.target[0] = defaults
        self.coef = np.asarray(coef, dtype=np.float64).copy()
        self.changes: list = []  # (pos, seq, change), by position; see _apply
        # (k, at, now, target, coef): the state just after the first k changes, where the last
        # of them is. Voices read at nearby positions, so each read starts from there instead of
        # walking every change again (a 10k/s OSC storm keeps a few dozen of them pending).
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

    # reading
    def _advance(self, now, target, coef, samples):
        if samples <= 0:
            return
        step = target - now
        step[step != step] = 0.0  # NaN: a row that follows row 0 does not move
        step *= 1.0 - (1.0 - coef) ** (samples / self.hop)
        now += step
        # within SETTLED of its target a glide is there: a one-pole never arrives, and frames whose
        # attributes hold still are what the generator can run many at a time
        close = np.abs(target - now) < SETTLED
        now[close] = target[close]

    @staticmethod
    def _apply(now, target, coef, change):
        kind, row, k, value = change
        if kind == "set":
            if row > 0 and np.isnan(target[row, k]):
                now[row, k] = now[0, k]
            target[row, k] = value
        elif kind == "follow":
            target[row, k] = np.nan
        elif kind == "recall":
            target[0, k] = value
            target[1:, k] = np.nan
        elif kind == "speed":
            coef[k] = value
        elif kind == "jump":
            own = ~np.isnan(target)
            now[own] = target[own]

    def _run(self, pos, commit: bool):
        if commit:
            now, target, coef, at, k0 = self.now, self.target, self.coef, self.pos, 0
        elif self._memo is not None and self._memo[0] <= len(self.changes) and \
                (self._memo[0] == 0 or self.changes[self._memo[0] - 1][0] <= pos):
            k0, at, now, target, coef = self._memo
            now, target, coef = now.copy(), target.copy(), coef.copy()
        else:
            now, target, coef, at, k0 = self.now.copy(), self.target.copy(), self.coef.copy(), self.pos, 0
        k = k0
        for p, _, change in itertools.islice(self.changes, k0, None):
            if p > pos:
                break
            self._advance(now, target, coef, p - at)
            at = max(at, p)
            self._apply(now, target, coef, change)
            k += 1
        if commit:
            del self.changes[:k]
            if self._memo is not None:  # still the state after the same changes, now k fewer
                self._memo = (self._memo[0] - k,) + self._memo[1:] if self._memo[0] >= k else None
            self._advance(now, target, coef, pos - at)
            self.pos = max(at, pos)
            return now, target
        if k > k0 or self._memo is None:
            self._memo = (k, at, now.copy(), target.copy(), coef.copy())
        self._advance(now, target, coef, pos - at)
        return now, target

    def at(self, pos: int):
        """(values [rows, A], targets [rows, A]) at output sample `pos` (a position before the
        folded history reads the state there)."""
        with self.lock:
            return self._run(int(pos), commit=False)

    def voice(self, pos: int, part: int, channel: int) -> np.ndarray:
        """The attributes [A] a voice of `channel`, playing through `part`, reads at `pos`: the
        channel's own, else the part's own, else the global ones."""
        with self.lock:
            now, target = self._run(int(pos), commit=False)
        out = np.where(np.isnan(target[part + 1]), now[0], now[part + 1])
        if channel != part:
            out = np.where(np.isnan(target[channel + 1]), out, now[channel + 1])
        return out

    def still_after(self, pos: int) -> bool:
        """True if nothing moves after `pos`: every glide at its target and no change to come."""
        with self.lock:
            if self.changes and self.changes[-1][0] > pos:
                return False
            now, target = self._run(int(pos), commit=False)
        own = ~np.isnan(target)
        return bool(np.array_equal(now[own], target[own]))

    def fold(self, pos: int):
        with self.lock:
            if pos > self.pos and self.changes and self.changes[0][0] <= pos:
                self._run(int(pos), commit=True)
