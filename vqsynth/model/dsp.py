"""The generator's DSP output head in numpy: harmonic oscillators plus filtered noise.

The generator (generator.onnx) writes one frame of controls per hop: a total amplitude, a
distribution over H harmonics and the magnitudes of Nb noise bands. Turning those frames into
sound is done here, at whatever sample rate the audio device runs, so pitch bend is exact and no
resampler sits in the live path. vqsynth/train/synth.py is the torch twin used in training; a
test holds the two to the same output.

Conventions shared with training:
- frame t's controls are reached at the last sample of its hop; values ramp linearly from
  frame t-1 (smooth, no zipper noise); a note's first frame starts at its own values, so the
  model, not a fixed 10 ms fade-in, decides how sharp the attack is;
- harmonics at or above `band_limit_hz` (the model's Nyquist) are silent: the model was never
  trained to say anything there;
- noise bands split 0..band_limit_hz evenly; the noise is shaped in the STFT domain and
  overlap-added with a Hann window (two hops long, hop-sized steps).
"""

from __future__ import annotations

import numpy as np

TWO_PI = 2.0 * np.pi


def midi_to_hz(pitch):
    """MIDI note number (fractional allowed) to frequency in Hz."""
    return 440.0 * np.power(2.0, (np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def split_frame(frames: np.ndarray, n_harmonics: int):
    """Split generator frames [..., 1+H+Nb] into (amplitude [...], harmonics [...,H], noise [...,Nb])."""
    return frames[..., 0], frames[..., 1 : 1 + n_harmonics], frames[..., 1 + n_harmonics :]


TABLE_SIZE = 4096  # one period of a voice's waveform; linear interpolation errs by < 1.2e-3 of harmonic 64
_SINES: dict = {}


def _sines(n_harmonics: int) -> np.ndarray:
    """sin(k * 2 pi i / TABLE_SIZE) for k = 1..H, i < TABLE_SIZE: [H, TABLE_SIZE] float32, made once."""
    if n_harmonics not in _SINES:
        k = np.arange(1, n_harmonics + 1, dtype=np.float64)[:, None]
        i = np.arange(TABLE_SIZE, dtype=np.float64)[None, :]
        _SINES[n_harmonics] = np.sin(TWO_PI / TABLE_SIZE * k * i).astype(np.float32)
    return _SINES[n_harmonics]


def harmonic_tables(amps, f0, sample_rate, band_limit_hz):
    """One period of the harmonic sum for each amplitude vector: amps [..., H] at fundamentals f0 [...]
    -> [..., TABLE_SIZE + 1] float32 (the first sample repeated at the end, for interpolation).
    Harmonics at or above the band limit (or Nyquist) are left out."""
    H = amps.shape[-1]
    limit = min(band_limit_hz, 0.5 * sample_rate)
    a = (amps * (np.asarray(f0)[..., None] * np.arange(1, H + 1) < limit)).astype(np.float32)
    tables = np.empty(a.shape[:-1] + (TABLE_SIZE + 1,), dtype=np.float32)
    flat = tables.reshape(-1, TABLE_SIZE + 1)
    np.matmul(a.reshape(-1, H), _sines(H), out=flat[:, :TABLE_SIZE])
    flat[:, TABLE_SIZE] = flat[:, 0]
    return tables


def harmonic_frames(phase, f0, amps, n, sample_rate, band_limit_hz):
    """Render T frames of n samples of a bank of harmonics for V voices at once.

    phase [V] (radians, fundamental); f0 [V, T+1] Hz and amps [V, T+1, H] linear amplitude per
    harmonic at the frame boundaries (index 0: where the previous frame ended). Within a frame the
    fundamental and every harmonic's amplitude ramp linearly from one boundary to the next.
    Returns (audio [V, T*n] float32, phase at the end [V]).
    Each boundary's spectrum becomes one period of its waveform (a table, one matrix product for
    all), read at the running phase: a sample costs two table reads, not one sine per harmonic,
    and the sum equals the bank of sines to within the table's interpolation error.
    """
    V, T1, _ = amps.shape
    T = T1 - 1
    ramp = np.arange(1, n + 1, dtype=np.float64) / n
    f = f0[:, :-1, None] + (f0[:, 1:] - f0[:, :-1])[:, :, None] * ramp  # [V,T,n]
    phi = phase[:, None] + np.cumsum(f.reshape(V, T * n) * (TWO_PI / sample_rate), axis=1)
    end_phase = np.mod(phi[:, -1], TWO_PI)
    pos = np.mod(phi, TWO_PI) * (TABLE_SIZE / TWO_PI)
    i0 = np.minimum(pos.astype(np.int64), TABLE_SIZE - 1)
    frac = (pos - i0).astype(np.float32).reshape(V, T, n)
    tables = harmonic_tables(amps, f0, sample_rate, band_limit_hz).reshape(-1)
    row = TABLE_SIZE + 1
    idx = ((np.arange(V)[:, None] * T1 + np.arange(T)[None, :]) * row)[:, :, None] + i0.reshape(V, T, n)
    lo = tables[idx]
    before = lo + frac * (tables[idx + 1] - lo)  # the frame's start spectrum at this phase
    lo = tables[idx + row]
    after = lo + frac * (tables[idx + row + 1] - lo)  # and its end spectrum
    out = before + (after - before) * ramp.astype(np.float32)
    return out.reshape(V, T * n), end_phase


_GAINS: dict = {}
_WINDOWS: dict = {}


def noise_gains(bands, n_fft, sample_rate, band_limit_hz):
    """Per-bin gains [..., n_fft//2+1] from band magnitudes [..., Nb] (nearest band, zero above the limit)."""
    Nb = bands.shape[-1]
    key = (Nb, n_fft, sample_rate, band_limit_hz)
    if key not in _GAINS:
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        idx = np.floor(freqs / band_limit_hz * Nb).astype(np.int64)
        _GAINS[key] = (idx < Nb, idx[idx < Nb])
    inside, idx = _GAINS[key]
    gains = np.zeros(bands.shape[:-1] + (inside.size,), dtype=np.float32)
    gains[..., inside] = bands[..., idx]
    return gains


def noise_frames(bands, tail, n, sample_rate, band_limit_hz, rngs):
    """Render T frames of n samples of band-shaped noise for V voices: bands [V, T, Nb], each voice
    from its own generator in `rngs` (so a voice's noise does not depend on which other voices
    sound, nor on how many frames a call renders); `tail` [V,n] is the overlap-add state.

    Returns (audio [V, T*n], new tail [V,n]). All bands at 1 give unit-RMS noise over 0..band_limit_hz
    at any sample rate (same power per Hz as at the model's own rate).
    """
    V, T, _ = bands.shape
    n_fft = 2 * n
    if n_fft not in _WINDOWS:  # periodic Hann sums to 1 at hop n
        _WINDOWS[n_fft] = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    window = _WINDOWS[n_fft]
    white = np.empty((V, T * n_fft), dtype=np.float32)
    for v, rng in enumerate(rngs):
        white[v] = rng.standard_normal(T * n_fft, dtype=np.float32)
    spectrum = np.fft.rfft(white.reshape(V, T, n_fft) * window, axis=2)
    spectrum *= noise_gains(bands, n_fft, sample_rate, band_limit_hz)
    grain = np.fft.irfft(spectrum, n=n_fft, axis=2).astype(np.float32)
    grain *= np.float32(np.sqrt(4.0 / 3.0 * sample_rate / (2.0 * band_limit_hz)))
    out = grain[:, :, :n].copy()
    out[:, 0] += tail
    out[:, 1:] += grain[:, :-1, n:]
    return out.reshape(V, T * n), grain[:, -1, n:].copy()


class VoiceSynth:
    """Streaming DSP head for a fixed number of voice slots; state is real here (phases, ramps, OLA)."""

    def __init__(self, slots, n_harmonics, n_noise, sample_rate, hop, band_limit_hz, seed=0):
        self.H, self.Nb = n_harmonics, n_noise
        self.sample_rate, self.hop, self.band_limit_hz = sample_rate, hop, band_limit_hz
        self.seed = seed
        self.rngs = [np.random.default_rng((seed, i)) for i in range(slots)]  # a note's own noise
        self.phase = np.zeros(slots)
        self.f0 = np.full(slots, 440.0)
        self.amps = np.zeros((slots, n_harmonics), dtype=np.float32)
        self.noise = np.zeros((slots, n_noise), dtype=np.float32)
        self.tail = np.zeros((slots, hop), dtype=np.float32)
        self.fresh = np.zeros(slots, dtype=bool)  # next frame is a note's first: no ramp into it

    def seed_notes(self, slots, keys):
        """Each note's noise from its own key (a tuple of ints), so what a voice sounds like does
        not depend on which other voices sound or which slot it got."""
        for i, key in zip(slots, keys):
            self.rngs[i] = np.random.default_rng((self.seed, *key))

    def reset(self, slots, f0):
        """Start fresh notes in `slots` (index array) at fundamental f0 [len(slots)] Hz."""
        self.phase[slots] = 0.0
        self.f0[slots] = f0
        self.amps[slots] = 0.0
        self.noise[slots] = 0.0
        self.tail[slots] = 0.0
        self.fresh[slots] = True

    def render(self, slots, frames, f0):
        """Render frames [V,T,F] for voice `slots` with per-frame fundamentals f0 [V,T] -> audio [V,T*hop].
        Any split of the frames into calls gives the same audio."""
        V, T, _ = frames.shape
        amp, harm, noise = split_frame(frames, self.H)
        a_next = (amp[..., None] * harm).astype(np.float32)  # [V,T,H]
        fresh = self.fresh[slots]
        a_prev = np.where(fresh[:, None], a_next[:, 0], self.amps[slots])  # a note's first frame: no ramp into it
        amps = np.concatenate([a_prev[:, None], a_next], axis=1)
        f0_all = np.concatenate([self.f0[slots][:, None], np.asarray(f0, dtype=np.float64)], axis=1)
        h, phase = harmonic_frames(self.phase[slots], f0_all, amps, self.hop, self.sample_rate, self.band_limit_hz)
        z, tail = noise_frames(noise, self.tail[slots], self.hop, self.sample_rate, self.band_limit_hz,
                               [self.rngs[i] for i in slots])
        self.phase[slots], self.f0[slots] = phase, f0_all[:, -1]
        self.amps[slots], self.noise[slots], self.tail[slots] = a_next[:, -1], noise[:, -1], tail
        self.fresh[slots] = False
        h += z
        return h

    def snapshot(self, slots):
        """Copy of the state of `slots`, to continue a cached attack later."""
        return tuple(a[slots].copy() for a in (self.phase, self.f0, self.amps, self.noise, self.tail, self.fresh))

    def restore(self, slots, snap):
        for a, v in zip((self.phase, self.f0, self.amps, self.noise, self.tail, self.fresh), snap):
            a[slots] = v
