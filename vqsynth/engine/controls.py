"""Controls a voice's frames read, as changes at sample positions: pitch bend and the attributes.

A frame reads them at its own position (the last sample of its hop, where it reaches its
values), never at the time it happens to be rendered. So a voice sounds the same whether its
frames are rendered one per step or many per generator call, at any block size, and a glide
takes the same course for every voice whatever else plays. Changes wait here, ordered by
position, until no frame can still read the state before them; then they fold into the base.

Both are written and read under the engine's lock (control threads add, the render thread reads).
"""

from __future__ import annotations

import bisect
import itertools

import numpy as np

_SEQ = itertools.count()  # ties at one position keep their order of arrival


class BendTrack:
    """Pitch bend per MIDI channel, in semitones."""

    def __init__(self, channels: int = 16):
        self.base = np.zeros(channels)
        self.changes: list = []  # (pos, seq, channel, semitones), by position

    def set(self, pos: int, channel: int, semitones: float):
        bisect.insort(self.changes, (int(pos), next(_SEQ), int(channel), float(semitones)))

    def at(self, channel: int, pos: int) -> float:
        """The bend of `channel` at output sample `pos`."""
        value = self.base[channel]
        for p, _, c, v in self.changes:
            if p > pos:
                break
            if c == channel:
                value = v
        return float(value)

    def fold(self, pos: int):
        """Forget the history before `pos` (no frame reads it any more)."""
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
        bisect.insort(self.changes, (int(pos), next(_SEQ), change))

    # reading
    def _advance(self, now, target, coef, samples):
        if samples <= 0:
            return
        rate = 1.0 - (1.0 - coef) ** (samples / self.hop)
        own = ~np.isnan(target)
        now[own] += (rate * (np.where(own, target, 0.0) - now))[own]

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
        now, target, coef, at = self.now, self.target, self.coef, self.pos
        if not commit:
            now, target, coef = now.copy(), target.copy(), coef.copy()
        k = 0
        for p, _, change in self.changes:
            if p > pos:
                break
            self._advance(now, target, coef, p - at)
            at = max(at, p)
            self._apply(now, target, coef, change)
            k += 1
        self._advance(now, target, coef, pos - at)
        if commit:
            del self.changes[:k]
            self.pos = max(at, pos)
        return now, target

    def at(self, pos: int):
        """(values [rows, A], targets [rows, A]) at output sample `pos` (a position before the
        folded history reads the state there)."""
        return self._run(int(pos), commit=False)

    def voice(self, pos: int, part: int, channel: int) -> np.ndarray:
        """The attributes [A] a voice of `channel`, playing through `part`, reads at `pos`: the
        channel's own, else the part's own, else the global ones."""
        now, target = self.at(pos)
        out = np.where(np.isnan(target[part + 1]), now[0], now[part + 1])
        if channel != part:
            out = np.where(np.isnan(target[channel + 1]), out, now[channel + 1])
        return out

    def fold(self, pos: int):
        if pos > self.pos:
            self._run(int(pos), commit=True)
