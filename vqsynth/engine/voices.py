"""Voice slots: preallocated per-voice audio rings that the render thread fills and the audio
callback drains, plus the bookkeeping of which note owns which slot.

Ownership (so no lock is needed in the audio callback):
- the render thread writes ring data, then advances `written`;
- the audio callback reads ring data, advances `read`, and frees a slot that reached `end`;
- control threads change note bookkeeping under Engine's lock (short, O(polyphony)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Note:
    pitch: float
    channel: int
    velocity: int
    note_id: int
    serial: int  # order of note-ons: the oldest note has the smallest serial
    tokens: object  # vqsynth.model.prior.NoteTokens
    release_at: int | None = None  # output sample where the release starts
    sustained: bool = False  # note-off came while the pedal was down
    fixed_tokens: list = field(default_factory=list)  # a drawn envelope (OSC /tokens)
    done_frames: int = 0  # frames rendered after the tokens reached silence
    cached_frames: list = field(default_factory=list)  # attack frames from the cache still to play (bent notes)
    key: tuple = ()  # (channel, n-th note on it): seeds its tokens and noise, whatever else plays
    attr_offset: object = None  # what its velocity adds to its attributes [A] (Model.velocity_offset), or None


GAIN_RATE = 1.0 / 1024  # a level or pan gain moves at most this much a sample: full scale in 1,024
# samples (21 ms at 48 kHz), whatever the block size


def line_into(into: np.ndarray, steps: np.ndarray, start: float, step: float):
    """into[k] = start + k * step, in place (`steps` holds 0, 1, 2, ...): a ramp with no allocation."""
    np.multiply(steps[:into.shape[0]], step, out=into)
    into += start


def glide_into(into: np.ndarray, steps: np.ndarray, now: float, target: float, rate: float, k0: int) -> float:
    """into[k] = the gain at sample k of a block: `now` until k0 (where the change was sent), then
    moving towards `target` by `rate` a sample; returns the gain after the block. No allocation."""
    n = into.shape[0]
    k0 = min(max(k0, 0), n)
    into[:k0] = now
    if k0 == n:
        return now
    d = rate if target > now else -rate
    line_into(into[k0:], steps, now + d, d)
    if d > 0:
        np.minimum(into[k0:], target, out=into[k0:])
    else:
        np.maximum(into[k0:], target, out=into[k0:])
    return float(into[n - 1])


def glided(now: float, target: float, since: int, pos: int) -> float:
    """Where a gain moving from `now` towards `target` by GAIN_RATE a sample from sample `since`
    is at sample `pos` (glide_into's path, in one step)."""
    d = GAIN_RATE * max(pos - since, 0)
    return min(now + d, target) if target > now else max(now - d, target)


class VoiceSlots:
    def __init__(self, slots: int, ring_size: int, block_size: int = 1024):
        self.n = slots
        self.size = ring_size
        self._scratch(block_size)
        self.ring = np.zeros((slots, ring_size), dtype=np.float32)
        self.written = np.zeros(slots, dtype=np.int64)  # samples rendered since the note started
        self.read = np.zeros(slots, dtype=np.int64)  # samples played since the note started
        self.start = np.zeros(slots, dtype=np.int64)  # output sample of the note's first sample
        self.end = np.full(slots, -1, dtype=np.int64)  # samples after which the voice is silent
        self.cut_at = np.full(slots, -1, dtype=np.int64)  # sample (from its start) where a stolen voice ends
        self.gain = np.zeros(slots, dtype=np.float32)  # velocity
        self.level = np.ones(slots, dtype=np.float32)  # expression (MPE pressure), as applied now
        self.level_target = np.ones(slots, dtype=np.float32)  # ... and where it ramps to
        self.pan = np.full((slots, 2), np.sqrt(0.5), dtype=np.float32)  # (left, right) gains as applied now
        self.pan_target = self.pan.copy()  # ... and where they ramp to (the part's pan)
        self.level_at = np.zeros(slots, dtype=np.int64)  # output sample where that ramp starts
        self.active = np.zeros(slots, dtype=bool)
        self.generation = np.zeros(slots, dtype=np.int64)  # bumps when a slot gets a new note
        self.notes: list[Note | None] = [None] * slots

    def _scratch(self, n: int):
        """The audio callback's working buffers, made once (again only for a longer block)."""
        self.voice = np.empty(n, dtype=np.float32)  # one voice's samples of this block
        self.ramp = np.empty(n, dtype=np.float32)  # a level or pan ramp across it
        self.side = np.empty(n, dtype=np.float32)  # one side of a panned voice
        self.steps = np.arange(n, dtype=np.float32)  # 0, 1, ... n-1

    def retarget(self, slot: int, level: float, pan, pos: int, now: int):
        """A level and pan move for one voice from output sample `pos` (control thread, under
        the engine's lock; `now`: the next sample the callback makes). A move still waiting for
        its sample is not lost under the new one: the voice starts this one from where that one
        would have reached at `pos`. (Only one move waits per voice, and a pressure stream faster
        than a block kept replacing it before its sample came: the level never moved.)"""
        at = int(self.level_at[slot])
        if at >= now:  # the callback has not begun the waiting move
            self.level[slot] = glided(float(self.level[slot]), float(self.level_target[slot]), at, pos)
            for c in (0, 1):
                self.pan[slot, c] = glided(float(self.pan[slot, c]), float(self.pan_target[slot, c]), at, pos)
        self.level_target[slot] = level
        self.pan_target[slot] = pan
        self.level_at[slot] = pos
        if self.read[slot] == 0 and pos <= self.start[slot]:  # the change comes first: the note starts there
            self.level[slot], self.pan[slot] = self.level_target[slot], self.pan_target[slot]

    def write(self, slot: int, audio: np.ndarray):
        """Append audio to a slot's ring (render thread, or a note-on copying a cached attack)."""
        w, n = int(self.written[slot]), audio.shape[0]
        i = w % self.size
        first = min(n, self.size - i)
        self.ring[slot, i:i + first] = audio[:first]
        if first < n:
            self.ring[slot, :n - first] = audio[first:]
        self.written[slot] = w + n

    def fade_out(self, slot: int, n: int):
        """End a voice within n samples with a linear fade over what is already rendered (no click)."""
        r = int(self.read[slot])
        n = max(min(n, int(self.written[slot]) - r), 0)
        idx = (r + np.arange(n)) % self.size
        self.ring[slot, idx] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
        self.end[slot] = r + n

    def cut(self, slot: int, at: int, fade: int) -> bool:
        """End a voice with a fade over the `fade` samples from sample `at` of the note (a stolen
        voice fades under the note that took its place), once it is rendered that far (False: not
        yet; call again after writing). What is already played stays as it was."""
        at = max(at, int(self.read[slot]))
        if int(self.written[slot]) < at + fade:
            self.cut_at[slot] = at
            return False
        idx = np.arange(at, at + fade) % self.size
        self.ring[slot, idx] *= ((fade - np.arange(fade)) / max(fade, 1)).astype(np.float32)
        self.end[slot] = at + fade
        self.cut_at[slot] = -1
        return True

    def mix_into(self, out: np.ndarray, first_sample: int) -> tuple[int, int]:
        """Audio thread: add every active slot's next samples into out [n] (mono: pan ignored) or
        [n, 2] (stereo: each voice at its part's equal-power pan); returns (starved, late):
        sounding voices that ran dry, and voices due to start in this block with nothing yet.

        A voice that has not been rendered far enough plays what it has and resumes later
        (a gap, counted), rather than skipping ahead. A note still waiting for its first frame
        (no cached attack) is not a gap, it is late: counted once per block it makes the output wait.
        Level and pan moves ramp from the sample they were sent for, at GAIN_RATE a sample, so
        the same changes give the same audio at any block size.
        Every array operation writes into buffers made beforehand (tests/test_engine.py holds
        the callback to no block-sized allocation).
        """
        n = out.shape[0]
        if n > self.voice.shape[0]:
            self._scratch(n)
        stereo = out.ndim == 2
        starved = late = 0
        for s in range(self.n):
            if not self.active[s]:
                continue
            r = int(self.read[s])
            offset = max(int(self.start[s]) - first_sample, 0) if r == 0 else 0
            if offset >= n:
                continue
            want = n - offset
            end = int(self.end[s])
            limit = int(self.written[s]) if end < 0 else min(int(self.written[s]), end)
            take = max(min(want, limit - r), 0)
            if take < want and end < 0:
                if r + take > 0:  # a sounding voice ran dry
                    starved += 1
                elif self.notes[s] is not None:  # due now, and the render thread has not delivered yet
                    late += 1
            i = r % self.size
            first = min(take, self.size - i)
            voice, ramp = self.voice[:take], self.ramp[:take]
            voice[:first] = self.ring[s, i:i + first]
            voice[first:] = self.ring[s, :take - first]
            lv, to = float(self.level[s]), float(self.level_target[s])
            gain = float(self.gain[s])
            k0 = int(self.level_at[s]) - (first_sample + offset)  # where a change starts in this block
            if lv == to:
                voice *= gain * lv
            else:
                self.level[s] = glide_into(ramp, self.steps, lv, to, GAIN_RATE, k0)
                ramp *= gain
                voice *= ramp
            dest = out[offset:offset + take]
            if not stereo:
                dest += voice
            else:
                pan, pan_to = self.pan[s], self.pan_target[s]
                side = self.side[:take]
                for c in (0, 1):
                    p0, p1 = float(pan[c]), float(pan_to[c])
                    if p0 == p1:
                        np.multiply(voice, p0, out=side)
                    else:
                        pan[c] = glide_into(ramp, self.steps, p0, p1, GAIN_RATE, k0)
                        np.multiply(voice, ramp, out=side)
                    dest[:, c] += side
            self.read[s] = r + take
            if end >= 0 and r + take >= end:
                self.active[s] = False
        return starved, late

    def _rank(self, s):
        """Steal order, as FluidSynth's: released first, then sustained, then the oldest."""
        note = self.notes[s]
        if note is None:
            return (-1, 0)
        released = note.release_at is not None and not note.sustained
        return (0 if released else 1 if note.sustained else 2, note.serial)

    def choose_slot(self, polyphony: int) -> tuple[int, int | None]:
        """(slot for a new note, victim or None). With `polyphony` notes sounding, one is chosen to
        give way; it keeps sounding until the new note's first sample (Engine._cut) while the new
        note takes a free slot (there are more slots than notes for that). Only when none is free
        (every spare still ending) does a note lose its slot at once: the victim is then the slot."""
        active = np.flatnonzero(self.active)
        sounding = [int(i) for i in active if self.notes[i] is not None and self.end[i] < 0 and self.cut_at[i] < 0]
        victim = min(sounding, key=self._rank) if len(sounding) >= polyphony else None
        free = np.flatnonzero(~self.active)
        if free.size:
            return int(free[0]), victim
        return (victim if victim is not None else min((int(i) for i in active), key=self._rank)), None
