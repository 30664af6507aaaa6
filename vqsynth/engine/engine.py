"""The engine: voices, the render thread that runs the model ahead, and the audio callback.

Threads and what each may do (DESIGN.md real-time rules):
- control threads (MIDI, OSC) call the public methods: they stamp, schedule and book-keep
  under a short lock, and may copy a cached attack into a free voice ring so a note sounds
  at once; they never call the model;
- the render thread keeps every playing voice `lead` samples ahead of the audio callback:
  it runs the generator (batched over voices, carried state; one frame a call live, up to 16
  offline) and the DSP head, and rebuilds the attack cache when the settings change;
- the audio callback (`process`) only mixes voice rings into the output, meters and counts;
- the follower thread (an audio input playing the follow part, engine/audio_input.py: the input
  callback only copies into a ring) tracks pitch and runs the encoder, then calls the public
  methods as a control thread does (DESIGN.md's thread list predates it; shared/ is read-only here).

Every change has a sample position, and a voice's frame reads the controls at its own position
(engine/controls.py); level, pan and volume ramps start at theirs; a stolen note ends at the new
note's first sample. So the same events give the same samples at any block size and however
many frames a generator call makes, as long as each event is known before the frames it changes
are rendered. Offline that always holds (events are sent ahead). Live, a note-on always starts
on its sample, and a release or control change lands on its own when it comes at least `lead`
ahead (an OSC bundle stamped for later), else on the first frame not yet rendered (voices are
kept ~20 ms ahead): re-rendering those frames is not built.
"""

from __future__ import annotations

import heapq
import threading
import time

import numpy as np

from vqsynth.engine.attack_cache import AttackCache
from vqsynth.engine.clock import SampleClock
from vqsynth.engine.controls import AttrGlide, BendTrack
from vqsynth.engine.drums import DrumPart
from vqsynth.engine.errors import InputError
from vqsynth.engine.parts import N_PARTS, Part, pan_gains
from vqsynth.engine.voices import Note, VoiceSlots, glide_into
from vqsynth.model.dsp import VoiceSynth, midi_to_hz
from vqsynth.model.folder import Model, seed_z

MAX_SCHEDULED = 65536  # events waiting for their time (~350 bytes each: ~23 MB at most); more are refused
DRUM_BUILD_REST = 3.0  # a kit builds at a quarter of a core: at half, JACK MIDI notes played in the
# seconds after start were missed 2 runs in 5 (tests/test_server_rig.py), against 1 in 8 without drums


def realtime_priority(level: int = 1) -> bool:
    """Best effort: SCHED_FIFO `level` (below JACK's audio thread) for the calling thread.

    The audio callback is Python and needs the GIL; if the kernel preempts the render thread
    while it holds the GIL, the callback misses its period (priority inversion). A real-time
    render thread is preempted far less (soak under load: 15 -> 1.4 underruns/s, perf/README.md).
    Refused without the rights (a normal user without rtprio): then nothing changes."""
    import os

    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(level))
        return True
    except (AttributeError, PermissionError, OSError):
        return False


def velocity_gain(velocity: int) -> float:
    """Velocity to level: a square law, ~-6 dB at velocity 90, -40 dB near 1."""
    return (max(min(velocity, 127), 1) / 127.0) ** 2


class Engine:
    def __init__(self, model: Model, sample_rate: int = 48000, block_size: int = 128, polyphony: int = 16,
                 lead_frames: int = 2, attack_frames: int = 4, prior_mode: str | None = None,
                 seed: int = 0, attack_cache: bool = True, volume: float = 0.5, drums=None):
        if polyphony < 1 or polyphony > 256:
            raise InputError(f"polyphony {polyphony} out of range 1..256")
        self.model = model
        self.sample_rate = sample_rate
        self.block_size = block_size
        self.hop = int(round(model.hop * sample_rate / model.sample_rate))  # output samples per frame
        self.lead = max(lead_frames * self.hop, 2 * block_size)
        self.max_chunk = 1  # frames per voice per generator call (offline.render raises it)
        self.clock = SampleClock(sample_rate, latency_samples=block_size + 32)
        if prior_mode and prior_mode != model.prior.mode:
            model.prior.mode = prior_mode
        self.seed = seed
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.polyphony = polyphony  # notes sounding at once; twice as many slots, so a stolen note
        # plays on until the new one starts (VoiceSlots.choose_slot)
        self.slots = VoiceSlots(2 * polyphony, ring_size=max(8 * self.hop, 4 * self.lead), block_size=block_size)
        self.synth = VoiceSynth(2 * polyphony, model.n_harmonics, model.n_noise, sample_rate, self.hop,
                                model.band_limit_hz, seed)
        self.gen_state = model.initial_state(2 * polyphony)
        self.slot_z = np.zeros((2 * polyphony, model.z_size), dtype=np.float32)
        self.steal_fade = max(1, int(0.003 * sample_rate))  # a stolen note fades out over 3 ms
        self.pending: dict[int, tuple] = {}  # slot -> ("reset", f0) | ("restore", snapshot) | ("bent", (f0, state))
        self.scheduled: list = []  # heap of (sample, seq, method, args) for events far ahead
        self.output_due: list = []  # heap of (sample, seq, apply) for the callback's changes sent early
        self.seq = 0
        self.serial = 0
        self.channel_notes = [0] * 16  # notes started per channel: with the channel, a note's seed
        # settings
        self.attr_target = model.attr_defaults.copy()  # the latest asked; frames read `glide`
        self.glide = AttrGlide(model.attr_defaults, np.full(len(model.attr_names), self.smoothing_per_frame(60.0)),
                               self.hop)
        self.instrument_serial = 0  # numbers custom z instruments, so each is its own cache key
        if model.presets:
            self.parts = [Part(0, model.preset_z(0), ("preset", 0)) for _ in range(N_PARTS)]
        else:
            self.parts = [Part(None, seed_z(0, model.z_size), ("z", 0)) for _ in range(N_PARTS)]
        self.route = list(range(16))  # channel -> the part its notes play through (MPE members: their manager)
        self.bend = np.zeros(16)  # semitones, per MIDI channel: the latest asked; frames read `bends`
        self.bends = BendTrack(16)
        # per-channel expression (MPE member channels: one note each): a level multiplier and
        # attribute values that override the global ones for that channel's voices (NaN: follow)
        self.channel_level = np.ones(16, dtype=np.float32)
        self.channel_attr_target = np.full((16, len(model.attr_names)), np.nan, dtype=np.float32)
        self.sustain_on = np.zeros(16, dtype=bool)
        self.volume = volume  # what the last block used
        self.volume_target = volume
        self.volume_step = 1.0 / (0.02 * sample_rate)  # per sample: 20 ms for a full-scale move
        self.volume_at = 0  # output sample where a move of the volume starts
        self.fixed_tokens: list[int] = []
        # the attack cache's policy clock (seconds): wall time live; offline.render sets it to the
        # render's own time, so the one policy (attack_cache.py) decides there too
        self.now = time.monotonic
        # attack cache: one per instrument that a part plays (at most N_PARTS), keyed by Part.instrument
        self.attacks = AttackCache(model, sample_rate, self.hop, attack_frames, seed, enabled=attack_cache,
                                   clock=lambda: self.now())
        self.max_tail_frames = 30  # frames a voice may ring on after its tokens went silent
        self.z_changed_at = 0.0
        self.settings_changed_at = 0.0
        # counters and meters
        self.counters = dict(underruns=0, late_callbacks=0, late_callbacks_entered_late=0, starved=0, late_blocks=0,
                             uncached_notes=0, notes=0, steals=0, steals_short=0, cache_hits=0, scheduled_refused=0,
                             out_of_range=0, callback_errors=0, nonfinite=0, render_errors=0,
                             midi_lost=0)
        self.level_db = -120.0
        self.callback_load = 0.0
        self.render_load = 0.0
        self.samples_out = 0
        self.listeners = []
        self.thread = None
        self.running = False
        self.realtime = False  # whether the render thread got SCHED_FIFO
        # the GM drum part: hits from a cache of one-shots (engine/drums.py), None without a drum model
        self.drums = DrumPart(drums, sample_rate, block_size, seed) if drums is not None else None
        self.drum_channel = 9
        self._drum_builder = None  # the drum cache build start() began, for the render thread to finish

    # ------------------------------------------------------------ control API (any thread)
    def _pos(self, t, at_sample):
        return int(at_sample) if at_sample is not None else self.clock.position(t)

    def _ramp_pos(self, t, at_sample) -> int:
        """Where a level or volume move starts: its event's sample, or (sent with no time) the
        next block the callback makes."""
        return self.samples_out if t is None and at_sample is None else self._pos(t, at_sample)

    def _defer(self, pos, method, *args):
        """Events far in the future (OSC bundles) wait in a heap so they take no voice early."""
        if pos - self.clock.now_sample() > self.lead + 4 * self.block_size and self.running:
            with self.lock:
                if len(self.scheduled) >= MAX_SCHEDULED:
                    self.counters["scheduled_refused"] += 1
                    raise InputError(f"the scheduler is full ({MAX_SCHEDULED} events waiting for their time): "
                                     "event refused")
                self.seq += 1
                heapq.heappush(self.scheduled, (pos, self.seq, method, args))
            self.wake.set()
            return True
        return False

    def _later(self, t, at_sample, apply) -> bool:
        """A control change stamped for later than the render lead (an OSC bundle's timetag)
        waits in the heap until then; `apply(pos)` makes it when due, at its own sample position
        (a sustain-off then releases on its sample, not at "now + latency"). False: apply it now."""
        if t is None and at_sample is None:
            return False
        return self._defer(self._pos(t, at_sample), apply)

    def _at_output(self, t, at_sample, apply) -> bool:
        """A change the audio callback makes (a part's level or pan, the volume, sound off) that
        comes earlier than a live event would (offline renders send events ahead, for the frames
        they render ahead) waits for the block a live one would have reached, so it lands where
        it would have live. False: make it now."""
        if (t is None and at_sample is None) or (self.running and at_sample is None):
            return False  # live, an event that arrived now is never early: no wait (a CC120 that
            # waited was made after the next note-on and silenced it, 1 run in 3 of test_server_rig)
        pos = self._pos(t, at_sample)
        # live (an OSC bundle's change, due now), "now" is the clock's: the callback may be a period
        # behind it under load; offline it is the block about to be made
        now = max(self.samples_out, self.clock.now_sample()) if self.running else self.samples_out
        if pos - now < self.clock.latency + self.block_size:
            return False
        with self.lock:
            self.seq += 1
            heapq.heappush(self.output_due, (pos, self.seq, apply))
        return True

    def _run_output_events(self):
        due = []
        with self.lock:
            while self.output_due and self.output_due[0][0] - self.samples_out < self.clock.latency + self.block_size:
                due.append(heapq.heappop(self.output_due))
        for pos, _, apply in due:
            apply(pos)

    def render_ahead(self, frames: int):
        """Keep voices `frames` frames ahead and render up to that many per generator call
        (offline.render: the generator runs 16 frames in a fifth of the time of 16 calls, and the
        controls read by sample position make any chunking sound the same). Before any note."""
        frames = max(1, int(frames))
        self.max_chunk = frames
        self.lead = max(self.lead, frames * self.hop + 2 * self.block_size)
        size = max(8 * self.hop, 4 * self.lead)
        if size > self.slots.size:
            self.slots = VoiceSlots(self.slots.n, ring_size=size, block_size=self.block_size)

    def note_on(self, pitch, velocity, channel=0, note_id=None, t=None, at_sample=None, tokens=None):
        """`tokens`: the note's envelope, a list the caller may go on appending to while it sounds
        (control/follow.py: an audio input's tokens, frame by frame); the voice reads its frame's
        token, or the last one there is. None: the prior's (or a drawn one, set_tokens)."""
        pitch, velocity, channel = float(pitch), int(velocity), int(channel)
        if not np.isfinite(pitch) or not 0 <= pitch <= 127:
            raise InputError(f"pitch {pitch} out of range 0..127")
        if not 0 <= channel < 16:
            raise InputError(f"channel {channel} out of range 0..15")
        if velocity <= 0:
            self.note_off(pitch, channel, note_id, t, at_sample)
            return None
        velocity = min(velocity, 127)
        lo, hi = self.model.pitch_range
        if not lo <= pitch <= hi:
            raise InputError(f"pitch {pitch:g} outside the model's range {lo}..{hi}")
        pos = self._pos(t, at_sample)
        if self._defer(pos, self._start_note, pitch, velocity, channel, note_id, tokens):
            return note_id
        return self._start_note(pos, pitch, velocity, channel, note_id, tokens)

    def _start_note(self, pos, pitch, velocity, channel, note_id, tokens=None):
        s = self.slots
        with self.lock:
            for i in self._find(pitch, channel, None):  # same-note retrigger: release the old one
                self._release_slot(i, pos)
            slot, victim = s.choose_slot(self.polyphony)
            if victim is not None:  # it gives way at this note's first sample
                if self._give_way(victim, pos):
                    self.counters["steals_short"] += 1
                self.counters["steals"] += 1
            elif s.active[slot]:  # no slot free: this one gives way now
                self.counters["steals"] += 1
            s.cut_at[slot] = -1
            self.serial += 1
            note_id = self.serial if note_id is None else int(note_id)
            self.channel_notes[channel] += 1
            key = (channel, self.channel_notes[channel])
            if tokens is None:
                tokens, self.fixed_tokens = list(self.fixed_tokens), []
            note = Note(pitch, channel, velocity, note_id, self.serial, None, fixed_tokens=tokens, key=key)
            s.active[slot] = False
            s.generation[slot] += 1
            s.notes[slot] = note
            s.written[slot] = s.read[slot] = 0
            s.end[slot] = -1
            s.start[slot] = pos
            part = self.parts[self.route[channel]]
            note.attr_offset = self.model.velocity_offset(part.preset, velocity)
            s.gain[slot] = velocity_gain(velocity)
            s.level[slot] = s.level_target[slot] = self.channel_level[channel] * part.gain
            s.pan[slot] = s.pan_target[slot] = pan_gains(part.pan)
            self.slot_z[slot] = part.z
            # a note with its own tokens (the follow part's) never takes the prior's cached attack;
            # a bent one starts at the render thread's next step (~1 ms), from the cached frames
            cached = None if note.fixed_tokens else self.attacks.lookup(
                part.instrument, self.part_attrs(self.route[channel]), pitch, velocity)
            if cached is not None:
                audio, frames, snap = cached
                note.tokens = snap[2].fork((self.seed, *key))  # the cached attack's writer, reseeded
                f0 = pitch + self.bends.at(channel, pos)
                if f0 == int(round(pitch)):
                    s.write(slot, audio)
                    self.pending[slot] = ("restore", snap)
                else:  # the render thread plays the cached frames at the true pitch, frame by frame
                    self.pending[slot] = ("bent", (float(midi_to_hz(f0)), snap[0]))
                    note.cached_frames = list(frames)
                self.counters["cache_hits"] += 1
            else:  # nothing to play until the render thread has run the model: this note starts late
                note.tokens = self.model.prior.note(velocity, seed=(self.seed, *key))
                self.pending[slot] = ("reset", float(midi_to_hz(pitch + self.bends.at(channel, pos))))
                self.counters["uncached_notes"] += 1
            self.counters["notes"] += 1
            s.active[slot] = True
        self.wake.set()
        return note_id

    def _find(self, pitch, channel, note_id):
        s = self.slots
        out = []
        for i in np.flatnonzero(s.active):
            n = s.notes[i]
            if n is None or n.release_at is not None:
                continue
            if note_id is not None and n.note_id == note_id:
                out.append(i)
            elif note_id is None and n.channel == channel and n.pitch == pitch and not n.sustained:
                out.append(i)
        return out

    def _lag(self, i) -> int:
        """Samples a voice plays behind its place on the output: 0 for one that kept up, the gaps'
        worth for one that ran dry (it resumes where it stopped, engine/voices.py)."""
        s = self.slots
        return max(0, self.samples_out - int(s.start[i]) - int(s.read[i]))

    def _release_slot(self, i, pos):
        """Release at `pos` of the output, earlier in the voice's own time by its lag: a voice that
        ran dry in a storm releases when the player let go, not after rendering the gaps' worth of
        sustain first (seconds of it, and the render thread further behind)."""
        note = self.slots.notes[i]
        if note is not None and note.release_at is None:
            note.release_at = pos - self._lag(i)

    def note_off(self, pitch, channel=0, note_id=None, t=None, at_sample=None):
        pos = self._pos(t, at_sample)
        if self._defer(pos, self._stop_note, float(pitch), int(channel), note_id):
            return
        self._stop_note(pos, float(pitch), int(channel), note_id)

    def _stop_note(self, pos, pitch, channel, note_id):
        with self.lock:
            for i in self._find(pitch, channel, note_id):
                if self.sustain_on[self.slots.notes[i].channel]:
                    self.slots.notes[i].sustained = True
                else:
                    self._release_slot(i, pos)
        self.wake.set()

    def cut_note(self, note_id, t=None, at_sample=None):
        """End the note with that id, held or releasing, at its sample with a 3-ms fade, as a
        stolen voice ends: a monophonic part's last note when the next starts (control/follow.py:
        its release would otherwise sound on under the next note, bent to the next note's pitch,
        since a bend is the channel's)."""
        pos = self._pos(t, at_sample)
        if self._defer(pos, self._cut_note, int(note_id)):
            return
        self._cut_note(pos, int(note_id))

    def _cut_note(self, pos, note_id):
        s = self.slots
        with self.lock:
            for i in np.flatnonzero(s.active):
                n = s.notes[i]
                if n is not None and n.note_id == note_id and s.end[i] < 0 and s.cut_at[i] < 0:
                    self._give_way(i, pos)

    def _give_way(self, i, pos) -> bool:
        """End voice i with a 3-ms fade from output sample `pos` in what it plays (a stolen note,
        a cut one), under the lock. True: it was short of audio and faded over what it has."""
        s = self.slots
        at = pos - int(s.start[i]) - self._lag(i)  # in what it plays
        if at < self.hop and s.read[i] == 0:  # it would sound for less than a frame: not at all
            s.end[i] = 0  # (in a storm of notes, rendering those starved the rest)
            return False
        if s.start[i] <= self.samples_out and s.written[i] < at + self.steal_fade and \
                s.written[i] - s.read[i] < self.lead - self.max_chunk * self.hop - self.block_size:
            # it is sounding and ran short of audio (the render thread is behind: a storm): it
            # fades over what it has instead of being rendered on to the new note (those
            # victims doubled the voices to render and starved the rest). A voice rendered
            # on time never has this little ahead, so offline renders never take this branch.
            s.fade_out(i, self.steal_fade)
            return True
        s.cut(i, at, self.steal_fade)
        return False

    def sustain(self, channel, on, t=None, at_sample=None):
        if not 0 <= int(channel) < 16:
            raise InputError(f"channel {channel} out of range 0..15")
        if self._later(t, at_sample, lambda p: self.sustain(channel, on, at_sample=p)):
            return
        pos = self._pos(t, at_sample)
        with self.lock:
            self.sustain_on[channel] = bool(on)
            if not on:
                for i in np.flatnonzero(self.slots.active):
                    n = self.slots.notes[i]
                    if n is not None and n.channel == channel and n.sustained:
                        n.sustained = False
                        self._release_slot(i, pos)

    def all_notes_off(self, channel=None, t=None, at_sample=None):
        """CC123: release every held note (notes under the sustain pedal keep sounding)."""
        pos = self._pos(t, at_sample)
        with self.lock:
            for i in np.flatnonzero(self.slots.active):
                n = self.slots.notes[i]
                if n is None or (channel is not None and n.channel != channel):
                    continue
                if self.sustain_on[n.channel]:
                    n.sustained = True
                else:
                    self._release_slot(i, pos)
            # one pass, linear in what is queued (removing one by one was quadratic: 45 s under
            # the lock for 40,000 queued notes, and the render thread and the sound waited)
            self.scheduled[:] = [ev for ev in self.scheduled
                                 if not (ev[2] == self._start_note and (channel is None or ev[3][2] == channel))]
            heapq.heapify(self.scheduled)

    def all_sound_off(self, channel=None, t=None, at_sample=None):
        """CC120: silence at once (the voice ends where the callback is now)."""
        if self._at_output(t, at_sample, lambda p: self.all_sound_off(channel, at_sample=p)):
            return
        with self.lock:
            s = self.slots
            for i in np.flatnonzero(s.active):
                n = s.notes[i]
                if channel is None or (n is not None and n.channel == channel):
                    s.fade_out(i, int(0.003 * self.sample_rate))
                    s.notes[i] = None
            if channel is None:
                self.scheduled.clear()
        if self.drums is not None and (channel is None or channel == self.drum_channel):
            self.drums.silence()

    def reset_controllers(self, channel, t=None, at_sample=None):
        """CC121: bend, pedal and expression back; an MPE member's own attributes go, but a part
        keeps the ones its program recalled (a DAW sends CC121 at every start of playback)."""
        self.pitch_bend(channel, 0.0, t, at_sample)
        self.sustain(channel, False, t, at_sample)
        self.channel_expression(channel, 1.0)
        pos = self._pos(t, at_sample)
        with self.lock:
            if self.route[int(channel)] != int(channel):
                self.channel_attr_target[int(channel)] = np.nan
                self.glide.follow(pos, int(channel) + 1)

    def channel_expression(self, channel, level, t=None, at_sample=None):
        """Level multiplier 0..1 for the voices of one channel (MPE pressure, CC11), ramped in the
        audio callback so a pressure stream makes no zipper noise; new notes there start at it."""
        level, channel = float(level), int(channel)
        if not np.isfinite(level) or not 0.0 <= level <= 1.0:
            raise InputError(f"expression {level} out of range 0..1")
        if not 0 <= channel < 16:
            raise InputError(f"channel {channel} out of range 0..15")
        if self._later(t, at_sample, lambda p: self.channel_expression(channel, level, at_sample=p)) or \
                self._at_output(t, at_sample, lambda p: self.channel_expression(channel, level, at_sample=p)):
            return
        with self.lock:
            self.channel_level[channel] = level
            self._retarget_levels(self._ramp_pos(t, at_sample))

    def _retarget_levels(self, pos):
        """Each sounding voice's level target from its channel's expression and its part's level
        and pan (the audio callback ramps there from output sample `pos`); under the lock."""
        s = self.slots
        for i in np.flatnonzero(s.active):
            n = s.notes[i]
            if n is not None:
                part = self.parts[self.route[n.channel]]
                s.retarget(i, self.channel_level[n.channel] * part.gain, pan_gains(part.pan), pos, self.samples_out)

    # ------------------------------------------------------------ parts (one per MIDI channel)
    def _channels(self, channel) -> list[int]:
        """The parts a change reaches: all of them (None), or one (0..15)."""
        if channel is None:
            return list(range(N_PARTS))
        channel = int(channel)
        if not 0 <= channel < N_PARTS:
            raise InputError(f"part {channel + 1} out of range 1..{N_PARTS}")
        return [channel]

    def part_level(self, channel, volume=None, expression=None, pan=None, t=None, at_sample=None):
        """A part's CC7 volume and CC11 expression (0..127, as MIDI sends them) and pan (-1..1);
        sounding voices of the part follow, ramped in the audio callback (no zipper noise)."""
        parts = self._channels(channel)
        for name, v, lo, hi in (("volume", volume, 0, 127), ("expression", expression, 0, 127), ("pan", pan, -1, 1)):
            if v is not None and (not np.isfinite(float(v)) or not lo <= float(v) <= hi):
                raise InputError(f"part {name} {v} out of range {lo}..{hi}")
        if self._later(t, at_sample, lambda p: self.part_level(channel, volume, expression, pan, at_sample=p)) or \
                self._at_output(t, at_sample, lambda p: self.part_level(channel, volume, expression, pan, at_sample=p)):
            return
        with self.lock:
            for c in parts:
                part = self.parts[c]
                part.volume = part.volume if volume is None else float(volume)
                part.expression = part.expression if expression is None else float(expression)
                part.pan = part.pan if pan is None else float(pan)
            self._retarget_levels(self._ramp_pos(t, at_sample))
        for c in parts:
            part = self.parts[c]
            self._settings_changed("part", {"part": c, "volume": part.volume, "expression": part.expression,
                                            "pan": part.pan}, invalidates_cache=False)

    def route_part(self, channel, part):
        """Notes on `channel` play through `part` from now on (an MPE member channel through its
        zone's manager, so the whole zone is one instrument); part == channel undoes it."""
        self._channels(channel), self._channels(part)
        self.route[int(channel)] = int(part)

    @property
    def preset(self):
        """Part 1's preset (the instrument of a one-part performance; see `parts` for the rest)."""
        return self.parts[0].preset

    @property
    def z(self):
        return self.parts[0].z

    @z.setter
    def z(self, vec):
        self._set_instrument(range(N_PARTS), None, np.asarray(vec, dtype=np.float32))

    def channel_attr(self, channel, name, value, t=None, at_sample=None):
        """An attribute for the voices of one channel only (MPE timbre, CC74), smoothed like the
        global ones; value None hands the channel back to the global attribute."""
        channel = int(channel)
        if not 0 <= channel < 16:
            raise InputError(f"channel {channel} out of range 0..15")
        k = self._attr_index(name, value)
        if self._later(t, at_sample, lambda p: self.channel_attr(channel, name, value, at_sample=p)):
            return
        pos = self._pos(t, at_sample)
        with self.lock:
            if value is None:
                self.channel_attr_target[channel, k] = np.nan
                self.glide.follow(pos, channel + 1, k)
                return
            self._part_attr(channel, k, float(value), pos)

    def pitch_bend(self, channel, semitones, t=None, at_sample=None):
        semitones = float(semitones)
        if not np.isfinite(semitones) or abs(semitones) > 48:
            raise InputError(f"pitch bend {semitones} semitones out of range ±48")
        if self._later(t, at_sample, lambda p: self.pitch_bend(channel, semitones, at_sample=p)):
            return
        self.bend[int(channel)] = semitones
        self.bends.set(self._pos(t, at_sample), int(channel), semitones)

    def smoothing_per_frame(self, smooth_ms: float) -> float:
        """One-pole coefficient per generator frame that settles (to ~5 %) in about smooth_ms."""
        frames = max(smooth_ms / 1000.0 * self.model.sample_rate / self.model.hop, 1e-3)
        return float(min(1.0, 3.0 / frames))

    def set_volume(self, value, t=None, at_sample=None, smooth_ms=20.0):
        """Master gain 0..1, ramped per sample in the audio callback (no zipper noise)."""
        value = float(value)
        if not np.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(f"volume {value} out of range 0..1")
        if self._later(t, at_sample, lambda p: self.set_volume(value, smooth_ms=smooth_ms, at_sample=p)) or \
                self._at_output(t, at_sample, lambda p: self.set_volume(value, smooth_ms=smooth_ms, at_sample=p)):
            return
        self.volume_step = 1.0 / (max(smooth_ms, 0.1) / 1000.0 * self.sample_rate)
        self.volume_at = self._ramp_pos(t, at_sample)
        self.volume_target = value
        self._settings_changed("volume", {"value": value}, invalidates_cache=False)

    def _attr_index(self, name, value) -> int:
        """The index of attribute `name`, after checking it exists and `value` (None: not given) fits."""
        try:
            i = self.model.attr_names.index(name)
        except ValueError:
            raise InputError(f"unknown attribute '{name}' (known: {', '.join(self.model.attr_names)})") from None
        if value is not None:
            value = float(value)
            lo, hi = self.model.attr_ranges[name]
            if not np.isfinite(value):
                raise InputError(f"attribute {name}: value {value} is not a number")
            if not lo <= value <= hi:
                raise InputError(f"attribute {name}: {value:g} is outside {lo:g}..{hi:g}")
        return i

    def set_attr(self, name, value, t=None, at_sample=None, smooth_ms=None):
        i = self._attr_index(name, value)
        value = float(value)
        if self._later(t, at_sample, lambda p: self.set_attr(name, value, smooth_ms=smooth_ms, at_sample=p)):
            return
        pos = self._pos(t, at_sample)
        if smooth_ms is not None:
            self.glide.speed(pos, i, self.smoothing_per_frame(float(smooth_ms)))
        self.attr_target[i] = value
        self.glide.set(pos, 0, i, value)
        self._settings_changed("attr", {"name": name, "value": value})

    def set_preset(self, preset, t=None, at_sample=None, channel=None):
        """The instrument of one part (channel 0..15) or of all (None): a preset's z, and the
        attributes it recalls, which glide there (globally, or as that part's own attributes)."""
        names = self.model.presets
        parts = self._channels(channel)
        try:
            index = self.model.find_preset(preset if isinstance(preset, str) else int(preset))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InputError(str(exc)) from None
        if self._later(t, at_sample, lambda p: self.set_preset(index, at_sample=p, channel=channel)):
            return
        recalled = {self.model.attr_names.index(n): float(v) for n, v in self.model.preset_attrs(index).items()}
        pos = self._pos(t, at_sample)
        with self.lock:
            self._set_instrument(parts, index, self.model.preset_z(index))
            for k, value in recalled.items():
                if channel is None:  # every part: the global attributes, no part keeps its own
                    self.attr_target[k] = value
                    self.channel_attr_target[:, k] = np.nan
                    self.glide.recall(pos, k, value)
                else:
                    self._part_attr(channel, k, value, pos)
        if channel is None:
            self._settings_changed("preset", {"index": index, "name": names[index]})
            for k, value in recalled.items():  # subscribers' faders follow the recall
                self._settings_changed("attr", {"name": self.model.attr_names[k], "value": value},
                                       invalidates_cache=False)
        else:
            self._settings_changed("part", {"part": channel, "preset": index, "name": names[index]})

    def program_change(self, program, t=None, at_sample=None, channel=None):
        """MIDI program change on a part (None: all): the preset of that GM program or of its
        family (Model.preset_for_program)."""
        program = int(program)
        index = self.model.preset_for_program(program) if 0 <= program <= 127 else None
        if index is None:
            raise InputError(f"program {program}: no preset for it (presets: {', '.join(self.model.presets) or 'none'})")
        self.set_preset(index, t=t, at_sample=at_sample, channel=channel)

    def set_z(self, z, t=None, at_sample=None, channel=None):
        if isinstance(z, (int, np.integer)):
            vec = seed_z(int(z), self.model.z_size)
        else:
            vec = np.asarray(z, dtype=np.float32).reshape(-1)
            if vec.size != self.model.z_size or not np.all(np.isfinite(vec)):
                raise InputError(f"z needs {self.model.z_size} finite numbers or one integer seed, got {vec.size}")
        parts = self._channels(channel)
        if self._later(t, at_sample, lambda p: self.set_z(vec, at_sample=p, channel=channel)):
            return
        with self.lock:
            self._set_instrument(parts, None, vec)
        if channel is None:
            self._settings_changed("z", {"values": [float(x) for x in vec]})
            self._settings_changed("preset", {"index": -1, "name": "(custom z)"}, invalidates_cache=False)
        else:
            self._settings_changed("part", {"part": channel, "preset": -1, "name": "(custom z)"})

    def _set_instrument(self, parts, preset, z):
        """Give `parts` a new instrument. A preset's is keyed by its index (parts on one preset share
        an attack cache); a custom z gets a new key, so no cache built for another z is ever used."""
        if preset is None:
            self.instrument_serial += 1
            key = ("z", self.instrument_serial)
        else:
            key = ("preset", preset)
        for c in parts:
            part = self.parts[c]
            part.preset, part.z, part.instrument = preset, z.copy(), key
        self.z_changed_at = self.now()
        self.wake.set()

    def _part_attr(self, channel, k, value, pos):
        """Part `channel`'s own value of attribute k from `pos`, glided to from where the part is."""
        self.channel_attr_target[channel, k] = value
        self.glide.set(pos, channel + 1, k, value)

    @property
    def attr_now(self) -> np.ndarray:
        """The global attributes where the output is now (a copy: change them with set_attr)."""
        return self.glide.at(self.samples_out)[0][0].astype(np.float32)

    def jump_attrs(self):
        """Every attribute at its target now, no glide (a recalled state, a preset at start-up)."""
        self.glide.jump(self._pos(None, None) if self.running else self.samples_out)

    def part_attrs(self, channel) -> np.ndarray:
        """The attribute targets a part plays with: its own where it has them, else the global ones."""
        own = self.channel_attr_target[channel]
        return np.where(np.isnan(own), self.attr_target, own)

    def set_tokens(self, tokens, note_id=None):
        toks = [int(x) for x in tokens]
        if not toks or any(not 0 <= x < self.model.n_tokens for x in toks):
            raise InputError(f"tokens must be 1 or more integers in 0..{self.model.n_tokens - 1}")
        with self.lock:
            if note_id is None:
                self.fixed_tokens = toks
                return
            for i in np.flatnonzero(self.slots.active):
                n = self.slots.notes[i]
                if n is not None and n.note_id == int(note_id):
                    n.fixed_tokens = toks
                    return
        raise InputError(f"no sounding note with id {note_id}")

    # ------------------------------------------------------------ the drum part
    def drum_hit(self, key, velocity, channel=9, t=None, at_sample=None) -> bool:
        """A hit of GM key `key` on the drum part, at the part's (channel's) level and pan; False
        (counted) when there is no drum model or the key has no hit cached yet."""
        key, velocity, channel = int(key), int(velocity), int(channel)
        if not 0 <= key <= 127 or not 0 <= channel < 16:
            raise InputError(f"drum key {key} / channel {channel} out of range 0..127 / 0..15")
        if velocity <= 0:
            return False  # a hit has no note-off: GM drums ignore it
        if self.drums is None:
            raise InputError("no drum model loaded (serve --drums NAME)")
        pos = self._pos(t, at_sample)
        if self._defer(pos, self._start_hit, key, min(velocity, 127), channel):
            return True
        return self._start_hit(pos, key, min(velocity, 127), channel)

    def _start_hit(self, pos, key, velocity, channel):
        part = self.parts[self.route[channel]]
        played = self.drums.hit(key, velocity, pos, self.channel_level[channel] * part.gain, pan_gains(part.pan))
        self.wake.set()  # a key hit for the first time moves up the rebuild order
        return played

    def set_drums(self, kit=None, variation=None, morph=None, offsets=None):
        """The drum part's kit (index, name or prefix), variation 0..1 (0: every hit the same),
        class morph {class: 0..1} and feature offsets {feature: -1..1}; the cache follows."""
        d = self.drums
        if d is None:
            raise InputError("no drum model loaded (serve --drums NAME)")
        try:
            kit = None if kit is None else d.model.find_kit(kit if not str(kit).isdigit() else int(kit))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if variation is not None and not (np.isfinite(float(variation)) and 0.0 <= float(variation) <= 1.0):
            raise InputError(f"drum variation {variation} out of range 0..1")

        def indices(values, names, lo, what):
            out = {}
            for name, v in (values or {}).items():
                if name not in names:
                    raise InputError(f"unknown drum {what} '{name}' (known: {', '.join(names)})")
                if not (np.isfinite(float(v)) and lo <= float(v) <= 1.0):
                    raise InputError(f"drum {what} {name}: {v} out of range {lo:g}..1")
                out[names.index(name)] = float(v)
            return out

        morph = indices(morph, d.model.classes, 0.0, "class")
        offsets = indices(offsets, d.model.attr_names, -1.0, "feature")
        d.set_controls(kit=kit, variation=variation, morph=morph or None, offsets=offsets or None)
        self.wake.set()
        self._settings_changed("drums", {"kit": d.kit, "name": d.model.kits[d.kit].name, "variation": d.variation},
                               invalidates_cache=False)

    def panic(self):
        """All sound off; every channel's controllers and every part's level and pan reset (the
        parts keep their instruments)."""
        self.all_sound_off()
        for ch in range(16):
            self.reset_controllers(ch)
        self.part_level(None, volume=100, expression=127, pan=0.0)

    def add_listener(self, callback):
        self.listeners.append(callback)

    def remove_listener(self, callback):
        if callback in self.listeners:
            self.listeners.remove(callback)

    def _settings_changed(self, kind, payload, invalidates_cache=True):
        if invalidates_cache:
            self.settings_changed_at = self.now()
            self.wake.set()
        for cb in list(self.listeners):
            try:
                cb(kind, payload)
            except Exception:
                pass

    def status(self) -> dict:
        return {
            "voices": int(self.slots.active.sum()), "polyphony": self.polyphony,
            "cpu_load": round(max(self.callback_load, 0.0) + self.render_load, 3),
            "render_load": round(self.render_load, 3), "realtime": self.realtime, "callback_load": round(self.callback_load, 3),
            "underruns": self.counters["underruns"], "late_callbacks": self.counters["late_callbacks"],
            "starved": self.counters["starved"], "uncached_notes": self.counters["uncached_notes"],
            "late_blocks": self.counters["late_blocks"],
            "gc_slow": self.counters.get("gc_slow", 0), "gc_longest_us": self.counters.get("gc_longest_us", 0),
            "sample_rate": self.sample_rate, "block_size": self.block_size,
            "latency_ms": round(1000 * (self.clock.latency + self.block_size) / self.sample_rate, 2),
            "preset": self.preset, "model": self.model.name,
            "parts": [{"part": c + 1, "preset": -1 if p.preset is None else p.preset, "volume": p.volume,
                       "expression": p.expression, "pan": p.pan} for c, p in enumerate(self.parts)],
            "cached_instruments": len(self.attacks.built),
            **({"drums": {"kit": self.drums.kit, "name": self.drums.model.kits[self.drums.kit].name,
                          "variation": self.drums.variation, "sounding": self.drums.sounding(),
                          "cached": len(self.drums.cache), **self.drums.counters}} if self.drums else {}),
            "attrs": {n: round(float(v), 4) for n, v in zip(self.model.attr_names, self.attr_target)},
            "notes": self.counters["notes"], "steals": self.counters["steals"],
            "cache_hits": self.counters["cache_hits"], "out_of_range": self.counters["out_of_range"],
            "level_db": round(float(self.level_db), 1), "volume": round(float(self.volume_target), 4),
        }

    # ------------------------------------------------------------ audio callback
    def process(self, out: np.ndarray, now: float | None = None):
        """Audio thread: fill out [n] (mono) or [n, 2] (stereo, parts panned) float32 for the block
        starting at `samples_out`."""
        t0 = time.perf_counter()
        first = self.samples_out
        n = out.shape[0]
        self.clock.tick(first, time.monotonic() if now is None else now)
        out[:] = 0.0
        try:
            starved, late = self.slots.mix_into(out, first)
            self.counters["starved"] += starved
            self.counters["late_blocks"] += late
            if self.drums is not None:
                self.drums.mix_into(out, first)
            if self.volume == self.volume_target:
                out *= self.volume
            else:  # ramp towards the target from its sample (the slots' ramp buffer, no allocation)
                ramp = self.slots.ramp[:n]
                self.volume = glide_into(ramp, self.slots.steps, self.volume, self.volume_target, self.volume_step,
                                         self.volume_at - first)
                if out.ndim == 1:
                    out *= ramp
                else:  # per column: `out *= ramp[:, None]` makes a block-sized temporary
                    for c in range(out.shape[1]):
                        out[:, c] *= ramp
            np.clip(out, -1.0, 1.0, out=out)
            peak = max(float(out.max()), -float(out.min())) if n else 0.0
            self.level_db = max(20.0 * np.log10(peak + 1e-6), self.level_db - 0.3 * n / 128)
        except Exception:  # never let the callback die (sounddevice would stop calling it)
            out[:] = 0.0
            self.counters["callback_errors"] += 1
        self.samples_out = first + n
        used = (time.perf_counter() - t0) * self.sample_rate / max(n, 1)
        self.callback_load = 0.95 * self.callback_load + 0.05 * used
        return out

    def step(self, out: np.ndarray, now: float | None = None):
        """One block, synchronously: the render thread's work for the block starting at
        `samples_out` (every voice rendered up to its lead), then the audio callback's. Offline
        render, eval, perf and tests drive the engine through this; live, the two halves run on
        their own threads."""
        while self.render_step(self.samples_out):
            pass
        return self.process(out, now)

    # ------------------------------------------------------------ render thread
    def start(self):
        """Warm up (model, attack cache) before returning, then keep voices rendered ahead."""
        if self.running:
            return
        self.build_attack_cache(drums=False)
        # the drum kit: its middle velocity layer now, the rest on the render thread (a whole kit
        # costs several seconds of a core: perf/README.md "Drums")
        self._drum_builder = self.drums.started_builder() if self.drums is not None else None
        self.running = True
        self.thread = threading.Thread(target=self._render_loop, name="vqsynth-render", daemon=True)
        self.thread.start()

    def stop(self):
        self.running = False
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=2.0)
            self.thread = None

    def _render_loop(self):
        self.realtime = realtime_priority(1)
        busy, window_start = 0.0, time.perf_counter()
        builder, build_resume = self._drum_builder, 0.0
        rest = DRUM_BUILD_REST  # pause after a build step, in units of the step's own time
        while self.running:
            t0 = time.perf_counter()
            try:
                did = self.render_step(self.clock.now_sample())
            except Exception:  # a bug must not end the render thread: every voice would starve for good
                self.counters["render_errors"] += 1
                if self.counters["render_errors"] == 1:
                    import logging
                    logging.getLogger("vqsynth.engine").exception("render step failed (counted; logged once)")
                did = False
            if not did:
                if builder is None and (key := self._cache_wanted(self.now())) is not None:
                    builder, rest = self.attacks.builder(key, self._instruments), 1.0
                if builder is None and self.drums is not None and self.drums.wanted():
                    builder, rest = self.drums.builder(), DRUM_BUILD_REST
                if builder is not None and time.perf_counter() >= build_resume:
                    # one chunk, then as long again for the other threads (OSC, MIDI); the voices
                    # are served in that pause (waiting it out here starved 16 held voices after
                    # every preset change: 3,600 blocks in 3 s)
                    t_chunk = time.perf_counter()
                    builder = builder if next(builder, StopIteration) is not StopIteration else None
                    build_resume = time.perf_counter() + rest * (time.perf_counter() - t_chunk)
                else:
                    self.wake.wait(0.002)
                    self.wake.clear()
            busy += time.perf_counter() - t0 if did else 0.0
            elapsed = time.perf_counter() - window_start
            if elapsed > 0.5:
                self.render_load, busy, window_start = busy / elapsed, 0.0, time.perf_counter()

    def _run_due_events(self, now_sample):
        due = []
        with self.lock:
            while self.scheduled and self.scheduled[0][0] - now_sample <= self.lead + 2 * self.block_size:
                due.append(heapq.heappop(self.scheduled))
        for pos, _, method, args in due:
            method(pos, *args)

    def render_step(self, now_sample) -> bool:
        """Render the next frames of every voice less than `lead` ahead: one frame each live, up to
        `max_chunk` in one generator call (offline) while the voice's attributes hold still (the
        generator takes one attribute vector a call). Each frame reads the controls at its own
        position (engine/controls.py), so any chunking gives the same audio. False: none needed."""
        self._run_due_events(now_sample)
        self._run_output_events()
        s, hop = self.slots, self.hop
        with self.lock:
            active = [i for i in np.flatnonzero(s.active) if s.notes[i] is not None]
            until = self.samples_out + self.lead  # every voice rendered up to here (not a future note
            # `lead` past its start: an event sent before the frames it changes must stay before them),
            # once it has fallen `max_chunk` - 1 frames short of it (so offline it runs 16 at a time)
            low = until - (self.max_chunk - 1) * hop
            # and never more than `lead` ahead of what it has played: a voice that ran dry plays on
            # later (a gap) and reads behind its position; topping it up to the position overran
            # its ring (tests/test_engine.py)
            need = [i for i in active if s.end[i] < 0 and s.start[i] + s.written[i] < low
                    and s.written[i] - s.read[i] < self.lead]
            if not need:
                return False
            for i in need:
                self._apply_pending(i)
            # no frame reads the controls before this any more: the voices still rendering are
            # past it, and a new note starts at least a latency after the callback's position. A
            # voice behind the callback (starving) does not hold the history back: in a storm that
            # made every read walk more of it, and the render thread fell further behind.
            horizon = min([int(s.start[i] + s.written[i]) for i in active if s.end[i] < 0] +
                          [self.samples_out + self.clock.latency - self.block_size])
            horizon = max(horizon, self.samples_out)
            self.glide.fold(horizon)
            self.bends.fold(horizon)
            groups: dict = {}  # frames per call -> slots
            # earliest first: each voice's read of the glides then starts from the last one's
            # (engine/controls.py keeps the state after the changes it has walked)
            for i in sorted(need, key=lambda i: int(s.start[i] + s.written[i])):
                note, at = s.notes[i], int(s.start[i] + s.written[i]) + hop  # where its next frame ends
                if note.cached_frames:  # a bent note started from the cache: its cached frames first
                    groups.setdefault("cached", []).append((i, None))
                    continue
                part = self.route[note.channel]
                base = self.glide.voice(at, part, note.channel).astype(np.float32)
                want = min(self.max_chunk, max(1, -(-(until - int(s.start[i] + s.written[i])) // hop)))
                T = want if want > 1 and self.glide.still_after(at) else 1
                while T < want and np.array_equal(self.glide.voice(at + T * hop, part, note.channel).astype(np.float32), base):
                    T += 1
                attrs = base if note.attr_offset is None else np.clip(base + note.attr_offset, self.model.attr_lo, self.model.attr_hi)
                groups.setdefault(T, []).append((i, attrs))
            jobs = []
            for T, items in groups.items():
                run = [i for i, _ in items]
                sel = np.array(run)
                n = 1 if T == "cached" else T
                starts = [int(s.start[i] + s.written[i]) for i in run]
                f0 = midi_to_hz(np.array([[s.notes[i].pitch + self.bends.at(s.notes[i].channel, a + (j + 1) * hop)
                                           for j in range(n)] for i, a in zip(run, starts)]))
                job = {"sel": sel, "gens": s.generation[sel].copy(), "f0": f0, "state": self.gen_state[sel]}
                if T == "cached":
                    job["frames"] = np.stack([s.notes[i].cached_frames.pop(0) for i in run])[:, None]
                    job["done"] = np.zeros((len(run), 1), bool)
                else:
                    done = np.zeros((len(run), T), bool)
                    tokens = np.empty((len(run), T), np.int64)
                    for k, i in enumerate(run):
                        for j in range(T):
                            tokens[k, j] = self._next_token(i, j)
                            done[k, j] = s.notes[i].tokens.done
                    job.update(tokens=tokens, done=done, z=self.slot_z[sel],
                               pitch=np.array([s.notes[i].pitch for i in run], dtype=np.float32),
                               attrs=np.stack([a for _, a in items]))
                jobs.append(job)
        for job in jobs:
            if "tokens" in job:
                job["frames"], job["state"] = self.model.generate(job["z"], job["pitch"], job["attrs"], job["tokens"],
                                                                  job["state"])
            job["audio"] = self.synth.render(job["sel"], job["frames"], job["f0"])
        with self.lock:
            for job in jobs:
                audio, done = job["audio"], job["done"]
                for k, i in enumerate(job["sel"]):
                    if s.generation[i] != job["gens"][k] or i in self.pending:
                        continue  # the slot got a new note while we rendered: drop these frames
                    self.gen_state[i] = job["state"][k]
                    note = s.notes[i]
                    for j in range(done.shape[1]):
                        out = audio[k, j * hop:(j + 1) * hop]
                        finished = False
                        if not np.isfinite(out).all():  # a model that blew up must not reach the output
                            out = np.zeros_like(out)
                            self.gen_state[i] = 0.0
                            self.counters["nonfinite"] += 1
                            finished = True
                        elif note is not None and done[k, j]:
                            note.done_frames += 1
                            finished = np.abs(out).max() < 1e-4 or note.done_frames >= self.max_tail_frames
                            if finished:  # the model left a tail: fade it rather than click
                                out = out * np.linspace(1.0, 0.0, out.shape[0], dtype=np.float32)
                        s.write(i, out)
                        if finished:
                            s.end[i] = s.written[i]
                            break
                        if s.cut_at[i] >= 0 and s.cut(i, int(s.cut_at[i]), self.steal_fade):
                            break  # stolen: it ends where the note that took its place starts
        return True

    def _apply_pending(self, i):
        kind, arg = self.pending.pop(i, (None, None))
        if kind is not None:
            self.synth.seed_notes([i], [self.slots.notes[i].key])
        if kind == "bent":  # cached frames follow; the model resumes from the state after them
            self.synth.reset(np.array([i]), np.array([arg[0]]))
            self.gen_state[i] = arg[1]
        elif kind == "reset":
            self.synth.reset(np.array([i]), np.array([arg]))
            self.gen_state[i] = 0.0
        elif kind == "restore":
            gen_state, synth_snap, _ = arg
            self.gen_state[i] = gen_state
            self.synth.restore(np.array([i]), synth_snap)

    def _next_token(self, i, ahead: int = 0):
        """The token of slot i's frame `ahead` after its next; starts the release when that frame
        reaches the note-off."""
        s, note = self.slots, self.slots.notes[i]
        frame_start = int(s.start[i]) + int(s.written[i]) + ahead * self.hop
        if note.release_at is not None and frame_start + self.hop > note.release_at and not note.sustained:
            note.tokens.release()
        if note.fixed_tokens and not note.tokens.done and note.tokens.phase != "release":
            k = int(s.written[i]) // self.hop + ahead
            note.tokens.next()  # keep the prior's phase bookkeeping moving
            return note.fixed_tokens[min(k, len(note.fixed_tokens) - 1)]
        return note.tokens.next()

    # ------------------------------------------------------------ attack cache (engine/attack_cache.py)
    def _instruments(self) -> dict:
        """Instrument key -> (z, attribute targets) of each instrument a part plays: at most one per
        part, so 16 caches at most (a GM file uses a few)."""
        out = {}
        for p in sorted(set(self.route)):
            part = self.parts[p]
            out.setdefault(part.instrument, (part.z, self.part_attrs(p)))
        return out

    def _cache_wanted(self, now: float | None = None):
        return self.attacks.wanted(self._instruments(), now, self.z_changed_at, self.settings_changed_at)

    def build_attack_cache(self, drums: bool = True, now: float | None = None):
        """Build every instrument's cache the policy wants at time `now` (None: every missing or
        stale one, without waiting: start-up, tests), and (drums=True) the drum kit's."""
        self.attacks.build_all(self._instruments, now, self.z_changed_at, self.settings_changed_at)
        if drums and self.drums is not None and self.drums.wanted():
            for _ in self.drums.builder():
                pass
