"""The drum part: hits from a per-key cache of one-shots, mixed in the audio callback.

A hit must sound within the same latency as a tonal note, and making one (generator + Griffin-Lim,
~0.1 s of a core) is far too slow for that, so every hit the current controls can ask for is made
ahead: per GM key of the kit, per velocity layer, and with variation > 0 a few variants drawn near
the key's z, so a roll is not a machine gun. A control change (kit, variation, class morph,
features) rebuilds the cache in the background on the render thread, keys most recently hit
first; until a key is rebuilt its old hits keep playing. A hit is then a slot pointing at a cached
array: the audio callback adds the slot's next samples into the output (no allocation, no lock)
and a hit of a GM exclusive group (hi-hats, whistles, ...) fades out the others of its group.

Threads: `hit` runs where notes start (control threads, the render thread for bundled events)
under the part's own short lock; `mix_into` is the audio callback's and takes no lock: a slot is
filled before it is marked active, and the callback only reads it.
"""

from __future__ import annotations

import threading

import numpy as np

MAX_HITS = 48           # hits sounding at once; the oldest is cut (with a fade) past it
LAYERS = (50, 90, 120)  # velocities the cache holds hits for; a hit takes the nearest built one
VARIANTS = 4            # hits cached per key and layer when variation > 0
CHOKE_FADE_S = 0.005    # a choked hit fades out over 5 ms instead of clicking
CHUNK_DONE = "chunk"    # what a cache builder yields after each chunk of hits
TRIM_DB = 70.0          # a cached hit ends where its spectrum has fallen this far under its peak


def velocity_gain(velocity: int) -> float:
    return (max(min(int(velocity), 127), 1) / 127.0) ** 2  # the tonal parts' square law


class DrumPart:
    """Cache, controls and sounding hits of the drum part (one kit at a time)."""

    def __init__(self, model, sample_rate: int, block_size: int, seed: int = 0):
        self.model = model
        self.sample_rate = sample_rate
        self.seed = seed
        self.lock = threading.Lock()
        self.kit = 0
        self.variation = 0.0
        self.morph = np.zeros(len(model.classes), np.float32)   # per class 0..1: pull every key towards it
        self.offsets = np.zeros(len(model.attr_names), np.float32)  # per feature -1..1, added to each key's
        self.version = 0          # bumps with every control change: a cache built for another is stale
        self.cache: dict = {}     # (key, layer) -> (version, [float32 arrays at the device rate])
        self.recent: list = []    # keys hit, most recent last: rebuilt first
        self.built_version = -1
        # offline renders make each (key, layer) when first hit instead of the whole kit ahead: the
        # same hits (a hit takes the nearest layer, and a kit's hits do not depend on each other),
        # for the price of the keys a file plays (a kit costs 7 s; perf/README.md "Drums")
        self.on_demand = False
        self.counters = {"drum_hits": 0, "drum_uncached": 0, "drum_unknown_key": 0, "drum_choked": 0,
                         "drum_cut": 0}
        self.next_variant = 0
        # sounding hits
        n = MAX_HITS
        self.active = np.zeros(n, bool)
        self.buf = [None] * n
        self.start = np.zeros(n, np.int64)
        self.gain = np.zeros((n, 2), np.float32)
        self.group = np.zeros(n, np.int32)
        self.cut_at = np.full(n, -1, np.int64)  # sample where a choke's fade starts; -1: none
        self.fade_len = max(1, int(CHOKE_FADE_S * sample_rate))
        self.fade = (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, self.fade_len))).astype(np.float32)
        self.scratch = np.zeros(2 * max(block_size, 256), np.float32)  # two halves: the hit, the hit x gain

    # ------------------------------------------------------------ controls (any thread)
    def set_controls(self, kit=None, variation=None, morph=None, offsets=None):
        """Change what the cache holds; the hits already cached play on until rebuilt."""
        with self.lock:
            if kit is not None:
                self.kit = int(kit)
            if variation is not None:
                self.variation = float(variation)
            if morph is not None:
                for k, v in morph.items():
                    self.morph[k] = float(v)
            if offsets is not None:
                for k, v in offsets.items():
                    self.offsets[k] = float(v)
            self.version += 1

    def conditions(self, key: int):
        """(z, labels, attrs) of a key for the current kit and controls, or None if the kit lacks it."""
        entry = self.model.kits[self.kit].keys.get(int(key))
        cls = self.model.key_class(key)
        if entry is None or cls is None:
            return None
        z, attrs = entry
        labels = np.zeros(len(self.model.classes), np.float32)
        labels[cls] = 1.0
        pull = float(np.clip(self.morph.sum(), 0.0, 1.0))
        if pull > 0:  # the key's own class gives way to the classes asked for, in their proportions
            labels = (1.0 - pull) * labels + pull * self.morph / max(float(self.morph.sum()), 1e-9)
        return z, labels, np.clip(attrs + self.offsets, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------ hits (where notes start)
    def hit(self, key: int, velocity: int, pos: int, level: float, pan_lr) -> bool:
        """Start a hit at output sample `pos`; False (counted) if the key has no cached hit yet."""
        key = int(key)
        if self.model.key_class(key) is None or key not in self.model.kits[self.kit].keys:
            self.counters["drum_unknown_key"] += 1
            return False
        if self.on_demand:  # offline: make the one hit asked for now, with the current controls
            layer = min(range(len(LAYERS)), key=lambda i: abs(LAYERS[i] - velocity))
            if self.cache.get((key, layer), (None,))[0] != self.version:
                self._make([(key, layer)], self.version, self.variation)
        with self.lock:
            self.recent = [k for k in self.recent if k != key][-15:] + [key]
            layers = [(abs(v - velocity), i) for i, v in enumerate(LAYERS) if (key, i) in self.cache]
            if not layers:
                self.counters["drum_uncached"] += 1
                return False
            _, layer = min(layers)
            variants = self.cache[(key, layer)][1]
            buf = variants[self.next_variant % len(variants)]
            self.next_variant += 1
            group = self.model.choke_group(key)
            if group:
                for i in np.flatnonzero(self.active & (self.group == group)):
                    if self.cut_at[i] < 0 or self.cut_at[i] > pos:
                        self.cut_at[i] = pos
                        self.counters["drum_choked"] += 1
            free = np.flatnonzero(~self.active)
            if len(free):
                slot = int(free[0])
            else:  # the oldest hit gives way (a fade is not possible: its slot is reused now)
                slot = int(np.argmin(self.start))
                self.active[slot] = False
                self.counters["drum_cut"] += 1
            g = float(level) * velocity_gain(velocity)
            self.buf[slot] = buf
            self.start[slot] = pos
            self.gain[slot] = (g * pan_lr[0], g * pan_lr[1])
            self.group[slot] = group
            self.cut_at[slot] = -1
            self.active[slot] = True  # last: the callback sees a slot only once it is whole
            self.counters["drum_hits"] += 1
        return True

    def silence(self):
        self.active[:] = False

    def sounding(self) -> int:
        return int(self.active.sum())

    # ------------------------------------------------------------ audio callback
    def mix_into(self, out: np.ndarray, first: int):
        """Add every sounding hit's samples for the block [first, first + len(out)) into out
        (mono, or [n, 2] at each hit's pan), in pieces the preallocated scratch holds."""
        step = len(self.scratch) // 2
        for b0 in range(0, out.shape[0], step):
            self._mix_piece(out[b0:b0 + step], first + b0)

    def _mix_piece(self, out, first):
        n = out.shape[0]
        half = len(self.scratch) // 2
        for i in np.flatnonzero(self.active):
            buf, s = self.buf[i], int(self.start[i])
            begin = max(s - first, 0)
            if begin >= n:
                continue
            src = first + begin - s
            stop = len(buf)
            cut = int(self.cut_at[i])
            if cut >= 0:
                stop = min(stop, cut - s + self.fade_len)
            m = min(n - begin, stop - src)
            if m <= 0:
                self.active[i] = False
                continue
            seg = self.scratch[:m]
            np.copyto(seg, buf[src:src + m])
            if cut >= 0 and cut - s < src + m:  # inside (or past) the choke fade: apply its part
                a = max(src, cut - s)
                f0 = a - (cut - s)
                seg[a - src:] *= self.fade[f0:f0 + (src + m - a)]
            tmp = self.scratch[half:half + m]
            if out.ndim == 1:
                np.multiply(seg, self.gain[i, 0] + self.gain[i, 1], out=tmp)
                out[begin:begin + m] += tmp
            else:
                for c in range(2):
                    np.multiply(seg, self.gain[i, c], out=tmp)
                    col = out[begin:begin + m, c]
                    col += tmp
            if src + m >= stop:
                self.active[i] = False

    # ------------------------------------------------------------ cache (render thread)
    def wanted(self) -> bool:
        return self.built_version != self.version

    def started_builder(self):
        """A builder already through the first layer (the middle velocity, every key of the kit), so a
        hit sounds from the first second; the render thread finishes the other two layers."""
        chunk = 2
        built = self.builder(chunk)
        chunks = -(-len(self.model.kits[self.kit].keys) // chunk)
        while chunks:
            step = next(built, StopIteration)
            if step is StopIteration:
                return None
            chunks -= step == CHUNK_DONE
        return built

    def builder(self, chunk: int = 2):
        """Rebuild the cache for the current controls, a few hits per chunk (a generator): the layer
        nearest the last hits first, keys most recently hit first, then the rest of the kit. It
        yields every few ms (after the generator, after each Griffin-Lim iteration: a whole hit
        took ~50 ms, and the voices, 20 ms ahead, starved while it was made) and CHUNK_DONE after
        each chunk."""
        with self.lock:
            version, kit, variation = self.version, self.kit, self.variation
            recent = list(reversed(self.recent))
        keys = recent + [k for k in sorted(self.model.kits[kit].keys) if k not in recent]
        order = [(k, layer) for layer in (1, 2, 0) for k in keys]
        for c0 in range(0, len(order), chunk):
            if self.version != version:
                return  # the controls moved again: the next build starts from them
            yield from self._make_steps(order[c0:c0 + chunk], version, variation)
            yield CHUNK_DONE
        self.built_version = version

    def _make(self, wanted, version, variation):
        """Make and cache the hits of `wanted` [(key, layer)] for the controls of `version`: each
        from its own seed, so a hit does not depend on which others are made with it."""
        for _ in self._make_steps(wanted, version, variation):
            pass

    def _make_steps(self, wanted, version, variation):
        """`_make` as a generator: None every few ms of work."""
        import soxr

        n_var = VARIANTS if variation > 0 else 1
        todo = []
        for key, layer in wanted:
            cond = self.conditions(key)
            if cond is not None:
                todo.append((key, layer, cond))
        if not todo:
            return
        z, labels, attrs, vel = [], [], [], []
        for key, layer, (zk, lab, att) in todo:
            rng = np.random.default_rng((self.seed, key, layer, version))
            for v in range(n_var):
                spread = 2.0 * variation * self.model.z_noise
                z.append(zk + (spread * rng.standard_normal(zk.shape).astype(np.float32) if variation > 0 else 0))
                labels.append(lab)
                attrs.append(att)
                vel.append(LAYERS[layer] / 127.0)
        for audio in self.model.hits_steps(np.stack(z), np.stack(labels), np.stack(attrs), np.array(vel, np.float32),
                                           seed=self.seed, trim_db=TRIM_DB):  # a list: each hit trimmed to its decay
            if audio is None:
                yield None
        for j, (key, layer, _) in enumerate(todo):
            variants = []
            for x in audio[j * n_var:(j + 1) * n_var]:
                if self.model.sample_rate != self.sample_rate:
                    x = soxr.resample(x, self.model.sample_rate, self.sample_rate, quality="HQ")
                if np.isfinite(x).all():
                    variants.append(np.ascontiguousarray(x, np.float32))
            if variants:
                self.cache[(key, layer)] = (version, variants)
