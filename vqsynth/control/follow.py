"""Audio input as a controller: a singer or a violin plays one part ("follow" mode).

The thesis's artists found audio the richest control (it carries pitch, expression and timbre at
once), and the instruments played live with neural sound (DDSP-VST, RAVE through nn~) are played
this way. Each frame of the input (the model's hop, 10 ms) gives:
- a level (RMS, dBFS): a gate opens a note where it rises out of silence (velocity from the
  level), closes it where it stays under the gate for `release_ms`, and the part's expression
  follows it in between (ramped in the audio callback, so the envelope is not stepped);
- a fundamental (YIN, control/pitch_track.py): a pitch bend each frame to exactly that pitch
  (the DSP head bends the voice's harmonics, the generator sees the note's pitch);
- a token, from the model's own VQCPC encoder over the last 0.25 s of input: the envelope of the
  performance, appended to the note as the frames come, as VQCPC-GAN takes it from a recording;
- optionally (`timbre`), its brightness, which the part's brightness attribute follows.

In "gate" mode the part's own keys (MIDI on its channel) play the notes and the input only shapes
them: its level is their expression (a held key sounds while the input does), its brightness
their brightness if `timbre` is on.

The follower only calls the engine (through `send(t, fn)`, so the offline renderer can deliver
the calls at their times ahead, as it does MIDI): it never touches the audio thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from vqsynth.control.pitch_track import window_size, yin
from vqsynth.control.timbre_track import Brightness

FOLLOW_CHANNEL = 15  # part 16: the follow part's own (MIDI keeps channels 1-15, drums 10)
MODES = ("follow", "gate")
UNVOICED = ("hold", "release")  # what an unvoiced frame inside a note does
NOTE_IDS = 1 << 40  # the follower's note ids: far from the engine's own serials


@dataclass
class FollowSettings:
    channel: int = FOLLOW_CHANNEL
    mode: str = "follow"  # follow: the input plays notes; gate: keys play them, the input shapes them
    gate_on_db: float = -45.0  # the input's level (RMS of a frame) that opens a note
    gate_off_db: float = -55.0  # ... and that it must stay under for `release_ms` to close it
    release_ms: float = 50.0
    unvoiced: str = "hold"  # an unvoiced frame inside a note: "hold" the last pitch, or "release"
    reattack_db: float = 10.0  # a rise this large within 40 ms, 60 ms or more into a note, re-attacks
    leap: float = 12.0  # semitones from the note's pitch, held 30 ms, that start a note there (the
    # generator is conditioned on the note's pitch; the bend covers what is nearer)
    level: bool = True  # expression follows the input's level
    full_db: float = -18.0  # the input level that plays at full expression and velocity 127
    tokens: bool = True  # the envelope (tokens) from the encoder; else the prior's
    timbre: bool = False  # the part's brightness follows the input's (Audio Commons, control/timbre_track.py)
    token_context_s: float = 0.25  # input the encoder sees for a frame's token (it normalises over it)
    token_every: int = 2  # frames per encoder run (each run gives the tokens of the frames since the last)
    fmin: float = 60.0
    fmax: float = 1600.0
    onset_wait_ms: float = 20.0  # how long an onset may wait for its pitch (else it starts at the last one)
    voicing: float = 0.25  # YIN's dip that counts as voiced: at its paper's 0.15, 17 % of a voice's
    # voiced frames were not (perf/README.md)


class Call:
    """One call the follower makes, made with the time it is for: `Call(f, *args)(t)` is
    `f(*args, t=t)`. Kept as data (what, with what), so the same input is seen to make the same
    calls by any path (a file, a JACK port: tests/test_follow.py)."""

    __slots__ = ("func", "args", "kwargs", "timed")

    def __init__(self, func, *args, timed=True, **kwargs):
        self.func, self.args, self.kwargs, self.timed = func, args, kwargs, timed

    def __call__(self, t):
        return self.func(*self.args, t=t, **self.kwargs) if self.timed else self.func(*self.args, **self.kwargs)

    def key(self):
        """What the call does, comparable: its function's name and its arguments (lists by value)."""
        return (self.func.__name__, self.args, tuple(sorted(self.kwargs.items())))


def _db(x) -> float:
    return 20.0 * np.log10(float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) + 1e-9)


def midi_of(f0):
    return 69.0 + 12.0 * np.log2(f0 / 440.0)


def velocity_of(level_db: float, settings: FollowSettings) -> int:
    """The gate's threshold plays at velocity 64, the full level at 127: the onset frame catches
    the attack on its way up, so even a loud note opens at a modest level (the expression, which
    follows the level from then on, carries the rest)."""
    span = settings.full_db - settings.gate_on_db
    return int(np.clip(64 + 63 * (level_db - settings.gate_on_db) / max(span, 1e-6), 1, 127))


class Follower:
    """Feed it the input block by block (`feed`); it sends the engine what the input plays."""

    LISTEN = 64  # samples between looks for an onset while no note sounds (1.3 ms at 48 kHz)

    def __init__(self, engine, send, settings: FollowSettings | None = None):
        self.engine, self.send = engine, send
        self.settings = settings or FollowSettings()
        if self.settings.unvoiced not in UNVOICED:
            raise ValueError(f"unvoiced must be 'hold' or 'release', not {self.settings.unvoiced!r}")
        if self.settings.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.settings.mode!r}")
        self.sr, self.hop = engine.sample_rate, engine.hop
        self.window = window_size(self.sr, self.settings.fmin)
        self.context = max(int(self.settings.token_context_s * self.sr), self.window, self.settings.token_every * self.hop)
        self.history = np.zeros(self.context, np.float32)  # the last `context` samples of input
        self.pending = np.zeros(0, np.float32)  # input not yet a whole frame
        self.levels: list[float] = []  # the last few frames' levels (re-attack)
        self.note = None  # (note id, base pitch, tokens list, tokens on) of the sounding note
        self.quiet = 0  # frames under the gate since the note's last loud one
        self.age = 0  # frames since the note opened
        self.far = 0  # frames in a row more than `leap` from the note's pitch
        self.loud = 0  # samples in a row over the gate's closing level
        self.waited = 0  # samples an onset has waited for its pitch
        self.pitch = None  # the last voiced pitch (MIDI)
        self.serial = NOTE_IDS
        self.last_id = None  # the last note it opened (its release may still sound)
        self.counters = dict(notes=0, reattacks=0, leaps=0, unvoiced_frames=0, frames=0)  # frames: in notes
        lo, hi = engine.model.pitch_range
        self.range = (float(lo), float(hi))
        self.has_encoder = getattr(engine.model, "encoder", None) is not None
        self.brightness = Brightness(self.sr) if "brightness" in engine.model.attr_names else None
        self.enabled = True  # False (OSC /vqsynth/follow/on 0): the input is not heard

    # ------------------------------------------------------------ input
    def feed(self, block: np.ndarray, t0: float):
        """`block`: mono float input at the engine's rate whose first sample arrived at time t0
        (seconds, the engine clock's time base; offline: its position / rate). While no note
        sounds it looks for an onset every LISTEN samples; a note's frames start at its onset."""
        x = np.concatenate([self.pending, np.asarray(block, np.float32).reshape(-1)])
        t_first = t0 - self.pending.size / self.sr
        k = 0
        while True:
            step = self.hop if self.note is not None or self.settings.mode == "gate" else self.LISTEN
            if k + step > x.size:
                break
            chunk = x[k:k + step]
            self.history = np.concatenate([self.history[step:], chunk])
            self._step(chunk, t_first + (k + step) / self.sr)
            k += step
        self.pending = x[k:].copy()

    def finish(self, t: float):
        """The input has ended: close the note it left open."""
        if self.note is not None:
            self._off(t)

    # ------------------------------------------------------------ one step
    def _pitch(self):
        """The input's pitch (MIDI) now, or None (unvoiced). Just after an onset the window would
        start in silence: it looks at what has sounded since (the lowest pitch it can find rises
        with it: two periods must fit)."""
        st = self.settings
        span = min(self.window, self.loud)
        fmin = max(st.fmin, 2.0 * self.sr / max(span, 1))
        if fmin >= st.fmax:
            return None
        f0, _ = yin(self.history[-span:], self.sr, fmin, st.fmax, voicing=st.voicing)
        if f0 <= 0:
            return None
        self.pitch = float(np.clip(midi_of(f0), *self.range))
        return self.pitch

    @property
    def use_encoder(self) -> bool:
        return self.settings.tokens and self.has_encoder

    def _step(self, chunk: np.ndarray, t: float):
        st = self.settings
        if not self.enabled:
            if self.note is not None:
                self._off(t)
            self.loud = self.waited = 0
            return
        self.loud = self.loud + chunk.size if _db(chunk) >= st.gate_off_db else 0
        level = _db(self.history[-self.hop:])  # the last 10 ms, wherever this step ends
        if st.mode == "gate":  # the part's keys play the notes: the input only shapes them
            if self.note is not None:
                self._off(t)
            e, ch, expr = self.engine, st.channel, self._expression(level)
            self.send(t, Call(e.channel_expression, ch, expr))
            self._timbre(t)
            return
        if self.note is None:
            if level < st.gate_on_db:
                self.waited = 0
                return
            pitch = self._pitch()
            self.waited += chunk.size
            # an onset whose pitch is not found yet waits for it, `onset_wait_ms` at most
            if pitch is not None or self.waited > st.onset_wait_ms * 1e-3 * self.sr:
                self.waited = 0
                self.levels = [level]
                self._on(level, pitch, t)
            return
        self.counters["frames"] += 1
        pitch = self._pitch()
        rise = level - min(self.levels) if self.levels else 0.0
        self.levels = (self.levels + [level])[-4:]
        self.age += 1
        if level < st.gate_off_db:
            self.quiet += 1
            if self.quiet * self.hop >= st.release_ms * 1e-3 * self.sr:
                self._off(t)
                return
        else:
            self.quiet = 0
        if pitch is None:
            self.counters["unvoiced_frames"] += 1
            if st.unvoiced == "release" and level < st.gate_on_db:
                self._off(t)
                return
        elif rise >= st.reattack_db and level >= st.gate_on_db and self.age >= 6:
            self.counters["reattacks"] += 1
            self._off(t)
            self._on(level, pitch, t)
            return
        else:
            self.far = self.far + 1 if abs(pitch - self.note[1]) > st.leap else 0
            if self.far >= 3:
                self.counters["leaps"] += 1
                self._off(t)
                self._on(level, pitch, t)
                return
        self._follow(level, pitch, t)

    def _on(self, level, pitch, t):
        st = self.settings
        base = float(round(pitch if pitch is not None else (self.pitch if self.pitch is not None else 60.0)))
        base = float(np.clip(base, *self.range))
        self.serial += 1
        tokens: list[int] = []
        self.note = (self.serial, base, tokens, self.use_encoder)  # tokens on or off for the whole note
        self.note_frames = 0  # frames of input the note has sounded for
        self.tokens_sent = 0  # ... and tokens sent for it
        self.quiet = self.age = self.far = 0
        self.counters["notes"] += 1
        bend = (pitch - base) if pitch is not None else 0.0
        velocity = velocity_of(level, st)
        e, ch, note_id, envelope = self.engine, st.channel, self.serial, tokens if self.note[3] else None
        expr = self._expression(level)
        self.send(t, Call(e.pitch_bend, ch, bend))
        if st.level:
            self.send(t, Call(e.channel_expression, ch, expr))
        self._timbre(t)
        if self.last_id is not None:  # a part that follows one voice is monophonic: the last note's
            self.send(t, Call(e.cut_note, self.last_id))  # release ends where this note starts
        self.last_id = note_id
        self.send(t, Call(e.note_on, base, velocity, ch, note_id=note_id, tokens=envelope))
        self._tokens(t)

    def _follow(self, level, pitch, t):
        st = self.settings
        e, ch = self.engine, st.channel
        if pitch is not None:
            bend = float(np.clip(pitch - self.note[1], -48.0, 48.0))  # the engine's bend range
            self.send(t, Call(e.pitch_bend, ch, bend))
        if st.level:
            expr = self._expression(level)
            self.send(t, Call(e.channel_expression, ch, expr))
        self._timbre(t)
        self._tokens(t)

    def _off(self, t):
        note_id, base = self.note[0], self.note[1]
        e, ch = self.engine, self.settings.channel
        self.send(t, Call(e.note_off, base, ch, note_id=note_id))
        self.note = None

    def _timbre(self, t):
        """The part's brightness to the input's (the engine glides attributes, so no steps)."""
        if not self.settings.timbre or self.brightness is None:
            return
        value = self.brightness(self.history)
        if value is not None:
            e, ch = self.engine, self.settings.channel
            self.send(t, Call(e.channel_attr, ch, "brightness", value))

    def _expression(self, level_db) -> float:
        return float(np.clip(10.0 ** ((level_db - self.settings.full_db) / 20.0), 0.0, 1.0))

    def _tokens(self, t):
        """The tokens of the frames since the last run, appended to the note's (the voice reads its
        frame's, or the last one it has): an encoder run every `token_every` frames, and at once
        for a new note's first frame."""
        if not self.note[3]:
            return
        self.note_frames += 1
        due = self.note_frames - self.tokens_sent
        if self.tokens_sent and due < self.settings.token_every:
            return
        model = self.engine.model
        audio = self.history
        if self.sr != model.sample_rate:
            import soxr

            audio = soxr.resample(audio, self.sr, model.sample_rate).astype(np.float32)
        new = [int(x) for x in model.encode(audio)[-due:]]
        self.tokens_sent += due
        tokens = self.note[2]
        self.send(t, Call(tokens.extend, new, timed=False))


def live_sender(follower):
    """`send` for a live follower: each call made at once with its time; one the engine refuses
    (a pitch outside the model's, a full scheduler) is counted, and the input plays on."""
    log = logging.getLogger("vqsynth.follow")

    def send(t, fn):
        try:
            fn(t)
        except Exception as exc:  # noqa: BLE001 - never let one call stop the input
            follower.counters["refused"] = follower.counters.get("refused", 0) + 1
            if follower.counters["refused"] == 1:
                log.warning("follow part: the engine refused a call (%s); counted from now on", exc)
    return send


def follow_file_events(engine, path, settings: FollowSettings | None = None, block: int = 1024):
    """(time_s, deliver) pairs, as the offline renderer takes them, for an audio file played into
    the follow part, and the file's length in seconds. ValueError naming the file if it cannot be
    read."""
    import soundfile as sf
    import soxr

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read audio ({exc})") from None
    if audio.shape[0] == 0:
        raise ValueError(f"{path}: no audio in it")
    mono = audio.mean(axis=1)
    if sr != engine.sample_rate:
        mono = soxr.resample(mono, sr, engine.sample_rate).astype(np.float32)
    events = []
    follower = Follower(engine, lambda t, fn: events.append((t, fn)), settings)
    for k in range(0, mono.size, block):
        follower.feed(mono[k:k + block], k / engine.sample_rate)
    length = mono.size / engine.sample_rate
    follower.finish(length)
    return events, length, follower
