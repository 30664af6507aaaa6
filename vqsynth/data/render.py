"""Single notes from a SoundFont, rendered in process with pyfluidsynth.

Why in process (measured on this 2-core machine, 4 s notes): pyfluidsynth renders ~600 notes/s at
16 kHz and ~220 notes/s at 44.1 kHz, against 4.6 notes/s for one `fluidsynth -F` call per note
(216 ms each: it reloads the 148 MB SoundFont and renders a 2 s tail) and 220-380 notes/s for one
CLI call over a MIDI file of all the notes, which then has to be cut apart and cannot give float
output. In process we also get float samples (no 16-bit clipping or dither) and exact note timing.

Why render at 44.1 kHz and resample (soxr): FluidSynth's interpolation has no anti-aliasing
filter, so a 44.1 kHz sample played at 16 kHz folds its top octaves back; a sawtooth lead at C6 had
inharmonic energy at -11 dB rendered directly at 16 kHz, -23 dB through 44.1 kHz + soxr.
"""

from __future__ import annotations

import ctypes

import numpy as np

from vqsynth.cli import UserError

FADE_S = 0.01  # raised-cosine fade over the last 10 ms: a note still sounding is not cut off with a click
DRUM_CHANNEL = 9
FLUSH = 64 * 8  # samples rendered and dropped after all-sounds-off (see Renderer.note)


def load_fluidsynth():
    """The pyfluidsynth module, or a UserError saying what to install."""
    try:
        import fluidsynth
    except ModuleNotFoundError:
        raise UserError("pyfluidsynth is not installed: pip install pyfluidsynth") from None
    except (ImportError, OSError):
        raise UserError("libfluidsynth not found: apt-get install libfluidsynth3") from None
    return fluidsynth


class Renderer:
    """One FluidSynth instance: reverb and chorus off, 7th-order interpolation, float output,
    all sound off between notes. note(...) -> mono float32 at `sample_rate`.

    Voices that all-sounds-off kills leave only at the next rendered block: without a flush, a note
    right after one cut at full level began with that note's last samples (the evaluation's real
    violin C4 measured a 1 ms attack instead of 130 ms), so note() renders FLUSH samples and drops
    them. A repeated note still differs from the first by up to 0.2 % of full scale (FluidSynth's
    per-key state), so a build opens a fresh Renderer for each unit of work and renders it in a
    fixed order: the same notes give the same samples on any worker, in any run. Samples load on
    demand (synth.dynamic-sample-loading), so opening one costs ~20 ms."""

    def __init__(self, soundfont: str, sample_rate: int, gain: float = 1.0):
        fluidsynth = load_fluidsynth()
        self.sample_rate = sample_rate
        self.render_rate = max(44100, sample_rate)
        self.synth = fluidsynth.Synth(gain=gain, samplerate=self.render_rate, **{
            "synth.reverb.active": 0, "synth.chorus.active": 0, "synth.polyphony": 256, "synth.cpu-cores": 1,
            "synth.dynamic-sample-loading": 1})
        lib = fluidsynth._fl
        self._write = lib.fluid_synth_write_float
        self._write.argtypes = [ctypes.c_void_p, ctypes.c_int] + [ctypes.c_void_p, ctypes.c_int, ctypes.c_int] * 2
        lib.fluid_synth_set_interp_method(ctypes.c_void_p(self.synth.synth), -1, 7)
        self.sfid = self.synth.sfload(str(soundfont))
        if self.sfid < 0:
            raise UserError(f"{soundfont}: FluidSynth could not load this SoundFont")

    def close(self):
        self.synth.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _render(self, n):
        buf = np.zeros((n, 2), np.float32)
        p = buf.ctypes.data
        self._write(self.synth.synth, n, p, 0, 2, p, 1, 2)
        return buf.mean(axis=1)

    def phrase(self, program: int, notes, seconds: float, velocity: int = 90, vibrato=(5.5, 30.0),
               glide_s: float = 0.08):
        """A melody, for playing into the follow part (tests, perf): `notes` [(pitch, start_s,
        end_s)], each sliding up into its pitch from a semitone below over `glide_s`, with a
        vibrato of (rate Hz, depth cents) on every note; mono float32 at `sample_rate`, `seconds`
        long. The bend moves at FluidSynth's 64-sample blocks (pitch wheel range 2 semitones)."""
        chan, block = 0, 64
        self.synth.program_select(chan, self.sfid, 0, program)
        rate, depth = vibrato
        total = -(-int(round(seconds * self.render_rate)) // block)
        on = None  # (pitch, start_s) of the note sounding
        parts = []
        for b in range(total):
            t = b * block / self.render_rate
            for pitch, start, end in notes:
                if on == (pitch, start) and t >= end:
                    self.synth.noteoff(chan, pitch)
                    on = None
                if on is None and start <= t < min(end, start + block / self.render_rate):
                    self.synth.pitch_bend(chan, -4096)
                    self.synth.noteon(chan, pitch, velocity)
                    on = (pitch, start)
            if on is not None:
                age = t - on[1]
                semitones = -max(0.0, 1.0 - age / glide_s) + depth / 100.0 * np.sin(2 * np.pi * rate * age)
                self.synth.pitch_bend(chan, int(round(semitones * 4096)))
            parts.append(self._render(block))
        if on is not None:
            self.synth.noteoff(chan, on[0])
        self.synth.all_sounds_off(chan)
        self.synth.pitch_bend(chan, 0)
        self._render(FLUSH)
        x = np.concatenate(parts)
        if self.render_rate != self.sample_rate:
            import soxr

            x = soxr.resample(x, self.render_rate, self.sample_rate, quality="VHQ")
        return x[:int(round(seconds * self.sample_rate))].astype(np.float32)

    def note(self, bank: int, program: int, pitch: int, velocity: int, seconds: float, note_off_s: float):
        """Note-on at 0, note-off at `note_off_s` (none if it is >= seconds), `seconds` long.
        FluidSynth applies events at its 64-sample block boundaries: every render here is whole
        blocks, so a note starts at sample 0 whatever was rendered before."""
        chan = DRUM_CHANNEL if bank == 128 else 0
        self.synth.program_select(chan, self.sfid, bank, program)
        blocks = lambda s: -(-int(round(s * self.render_rate)) // 64) * 64  # noqa: E731
        total, on = blocks(seconds), min(blocks(seconds), blocks(note_off_s))
        self.synth.noteon(chan, pitch, velocity)
        parts = [self._render(on)]
        self.synth.noteoff(chan, pitch)
        if total > on:
            parts.append(self._render(total - on))
        self.synth.all_sounds_off(chan)
        self._render(FLUSH)  # the killed voices leave now, not in the next note's first block
        x = np.concatenate(parts)
        if self.render_rate != self.sample_rate:
            import soxr

            x = soxr.resample(x, self.render_rate, self.sample_rate, quality="VHQ")
        x = x[:int(round(seconds * self.sample_rate))]
        n = int(FADE_S * self.sample_rate)
        x[-n:] *= (0.5 + 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
        return x.astype(np.float32)
