"""Attacks made ahead, one set per instrument a part plays, so a live note sounds at once.

A note-on copies its cached first frames into a free voice ring (on the caller's thread, under
the engine's short lock) and the render thread carries the voice on from the cached generator
state; without a cache the first audio waits for a generator call on the render thread. One
entry per (pitch, prior velocity bucket): 88 x 3 attacks, ~0.3 s of one core to build and
~7.5 MiB at 44.1 kHz (perf/README.md "Parts"); at most one cache per part, so 16 at worst.

The policy (when to build, when a cache is stale, when a note may use it) lives here only; the
engine supplies what its parts play (`instruments`: key -> (z, attribute targets)).
"""

from __future__ import annotations

import time

import numpy as np

from vqsynth.model.dsp import VoiceSynth, midi_to_hz

VELOCITIES = (40, 80, 115)  # one cached attack per velocity bucket of the prior
STALE_ATTRS = 0.5  # a cache serves while no attribute has moved further than this since its build


class AttackCache:
    def __init__(self, model, sample_rate: int, hop: int, frames: int, seed, enabled: bool = True,
                 clock=time.monotonic):
        self.model, self.sample_rate, self.hop, self.frames, self.seed = model, sample_rate, hop, frames, seed
        self.enabled = enabled
        self.clock = clock  # seconds, the time the policy reads (the engine's: offline, the render's)
        self.built: dict = {}  # instrument key -> {"entries", "built_at", "attrs"}

    def lookup(self, instrument, attrs: np.ndarray, pitch: float, velocity: int):
        """(audio, frames, (gen_state, synth_snapshot, token_writer)) for a note of `instrument`
        whose part's attributes are now `attrs`, or None.

        A cache serves the instrument (z) it was built for, even while attributes move (by up
        to STALE_ATTRS since its build): a performer sweeping a CC keeps hearing notes at once,
        their first frames made with the attributes of the last rebuild (which follows within
        50 ms of the sweep settling, or 2 s into it), the rest rendered live with the current
        ones. Further than that (a storm of random values) notes start from the model, as without
        a cache: serving them all cost the 10k OSC/s flood a third of its OSC throughput. A bent
        or fractional pitch takes the frames of the nearest cached pitch, which the render thread
        puts through the DSP head at the true fundamental frame by frame instead of running the
        model (not here, where the caller may be the audio callback: 0.8 ms per note there starved
        the OSC thread of the GIL in a MIDI storm)."""
        c = self.built.get(instrument)
        if c is None or np.abs(c["attrs"] - attrs).max() > STALE_ATTRS:
            return None  # none yet, or too far from what it was built for (an OSC storm of random values)
        return c["entries"].get((int(round(pitch)), self.model.prior.bucket(velocity)))

    def wanted(self, instruments: dict, now: float | None = None, instrument_changed_at: float = 0.0,
               settings_changed_at: float = 0.0):
        """The key of the instrument whose cache to (re)build now, or None. A missing one 20 ms
        after the instrument changed, even while attributes keep moving (a performer who changes
        program with a hand on the mod wheel); a stale one once the settings rest for 50 ms, or
        every 2 s while a sweep goes on, so the cache follows a CC that never stops. A rebuild
        is paced at half duty by the render thread, so a storm of changes cannot starve the OSC
        and MIDI threads of the GIL (the 10k OSC/s flood: 2,800 handled of 40,000 without both
        rules). Caches of instruments no part plays are dropped. now=None: no waiting (start-up,
        tests)."""
        if not self.enabled:
            return None
        for key in [k for k in self.built if k not in instruments]:
            del self.built[key]
        for key, (_, attrs) in instruments.items():
            c = self.built.get(key)
            if c is None:
                if now is None or now - instrument_changed_at > 0.02:
                    return key
            elif np.abs(c["attrs"] - attrs).max() > 1e-6:
                if now is None or now - settings_changed_at > 0.05 or now - c["built_at"] > 2.0:
                    return key
        return None

    def build_all(self, instruments, now=None, instrument_changed_at=0.0, settings_changed_at=0.0):
        """Build, to the end, every cache `wanted` asks for at `now` (offline renders, which
        have no render thread to build on; None: every missing or stale one: start-up, tests);
        `instruments()` gives what the parts play."""
        done = set()
        while ((key := self.wanted(instruments(), now, instrument_changed_at, settings_changed_at)) is not None
               and key not in done):
            for _ in self.builder(key, instruments):
                pass
            done.add(key)

    def _note_attrs(self, key, attrs, part) -> np.ndarray:
        """The attributes each cached attack plays with: the part's, plus what its velocity adds
        under a preset that says (Model.velocity_offset), as the render thread gives a live note."""
        preset = key[1] if key[0] == "preset" else None
        out = np.repeat(attrs[None], len(part), 0).astype(np.float32)
        for k, (_, _, v) in enumerate(part):
            offset = self.model.velocity_offset(preset, v)
            if offset is not None:
                out[k] = np.clip(out[k] + offset, self.model.attr_lo, self.model.attr_hi)
        return out

    def builder(self, key, instruments, chunk: int = 4):
        """Build one instrument's cache in chunks (a generator), so the render thread can serve
        voices in between. A chunk of 4 attacks takes ~4 ms here, well inside the voices' lead,
        so playing voices do not run dry while it builds. The build is dropped only if no part
        plays the instrument any more (`instruments()` is asked after each chunk); attributes that
        moved meanwhile only mark it for the next rebuild."""
        z, attrs = (a.copy() for a in instruments()[key])
        lo, hi = self.model.pitch_range
        keys = [(p, self.model.prior.bucket(v), v) for p in range(lo, hi + 1) for v in VELOCITIES]
        entries = {}
        for c0 in range(0, len(keys), chunk):
            part = keys[c0:c0 + chunk]
            B, T = len(part), self.frames
            pitch = np.array([k[0] for k in part], dtype=np.float32)
            writers = [self.model.prior.note(v, seed=(self.seed, p, v)) for p, _, v in part]
            tokens = np.array([[w.next() for _ in range(T)] for w in writers], dtype=np.int64)
            frames, state = self.model.generate(np.repeat(z[None], B, 0), pitch, self._note_attrs(key, attrs, part),
                                                tokens, self.model.initial_state(B))
            synth = VoiceSynth(B, self.model.n_harmonics, self.model.n_noise, self.sample_rate, self.hop,
                               self.model.band_limit_hz, self.seed)
            idx = np.arange(B)
            f0 = midi_to_hz(pitch)
            synth.reset(idx, f0)
            audio = synth.render(idx, frames, np.repeat(f0[:, None], T, 1))
            for k, (p, b, _) in enumerate(part):
                if np.isfinite(audio[k]).all():  # a NaN attack is left out: that note renders (and is checked) live
                    entries[(p, b)] = (audio[k], frames[k].copy(),
                                       (state[k].copy(), synth.snapshot(np.array([k])), writers[k]))
            if key not in instruments():
                return  # no part plays this instrument any more
            yield
        self.built[key] = {"entries": entries, "built_at": self.clock(), "attrs": attrs}
