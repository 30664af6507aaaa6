"""The one-shot (drum) model folder: a generator from (z, class soft labels, features, velocity)
to the log-magnitude spectrogram of a whole hit, and the phase that makes it audio.

Contract of a one-shot model folder (models/NAME/, beside the tonal contract of DESIGN.md):
- `model.json`: "kind": "one-shot", name, version, sample_rate, "length" (samples of a hit),
  "stft" {n_fft, hop} (Hann window, centred frames), "z_size", "z_noise" (the spread of z the
  generator was trained with around each hit: the unit of the variation control), "classes"
  (soft-label names, in input order), "attributes" (the seven Audio Commons features, ranges
  and defaults), "keys" (GM key -> class, choke group), "kits" (file of the kit presets).
- `generator.onnx`: inputs `z [B,Z]`, `labels [B,C]`, `attrs [B,A]`, `velocity [B]` (0..1);
  output `logmag [B, n_fft/2+1, frames]`, natural log of the STFT magnitude of the hit at its
  peak-normalised level (half of full scale), frames = 1 + length // hop.
- `kits.json`: the kit presets, each a name, the GM kit program it answers to, and per GM key
  the z and features of that kit's hit.

Why magnitudes and Griffin-Lim (not a waveform generator or the tonal DSP head): a hit is one
short, mostly noisy event whose character is in its spectral envelope over time (kick sweep,
snare rattle, cymbal wash); a magnitude generator learns it from a plain regression loss in
minutes on these CPUs, and the phase is found offline, when the hit cache is built, never in
the audio thread. The fast Griffin-Lim of Perraudin et al. (2013) with momentum 0.5, 16 iterations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqsynth.model.folder import ModelError, _expect_inputs, _session

GL_ITERATIONS = 16  # with momentum 0.5, measured on the drum model's hits (spectral convergence, mean of 6
GL_MOMENTUM = 0.5   # keys): 0.186 at 16 iterations, 0.168 at 32; momentum 0.99 gave 0.316 / 0.263


def _window(n_fft: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Complex STFT [B, n_fft/2+1, frames] of x [B, L], as torch.stft(center=True, reflect pad)."""
    if n_fft % hop:
        raise ValueError(f"n_fft {n_fft} must be a multiple of hop {hop}")
    x = np.asarray(x, np.float32)
    pad = n_fft // 2
    xp = np.pad(x, ((0, 0), (pad, pad)), mode="reflect")
    frames = 1 + (xp.shape[1] - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    return np.fft.rfft(xp[:, idx] * _window(n_fft), axis=-1).transpose(0, 2, 1)


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Inverse of `stft` (least-squares overlap-add), [B, length]; n_fft a multiple of hop."""
    w = _window(n_fft)
    frames = np.fft.irfft(spec.transpose(0, 2, 1), n=n_fft, axis=-1).astype(np.float32) * w
    B, T = spec.shape[0], spec.shape[2]
    k = n_fft // hop
    out = np.zeros((B, T + k - 1, hop), np.float32)
    parts = frames.reshape(B, T, k, hop)
    for j in range(k):  # overlap-add as k shifted block sums (no loop over frames)
        out[:, j:j + T] += parts[:, :, j]
    norm = np.zeros((T + k - 1, hop), np.float32)
    wp = (w * w).reshape(k, hop)
    for j in range(k):
        norm[j:j + T] += wp[j]
    pad = n_fft // 2
    out = (out / np.maximum(norm, 1e-8)).reshape(B, -1)
    return out[:, pad:pad + length]


def griffin_lim_steps(mag: np.ndarray, n_fft: int, hop: int, length: int, iterations: int = GL_ITERATIONS,
                      seed: int = 0):
    """Audio [B, length] whose STFT magnitude approaches `mag` [B, F, T] (fast Griffin-Lim), as a
    generator: None after each iteration (a few ms for a hit), then the audio, so the render
    thread can serve its voices in between."""
    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(mag.shape)).astype(np.complex64)
    prev = np.zeros_like(angles)
    for _ in range(iterations):
        rebuilt = stft(istft(mag * angles, n_fft, hop, length), n_fft, hop)
        accel = rebuilt - GL_MOMENTUM * prev
        prev = rebuilt
        angles = accel / np.maximum(np.abs(accel), 1e-12)
        yield None
    yield istft(mag * angles, n_fft, hop, length)


@dataclass
class Kit:
    name: str
    program: int                 # the GM drum-kit program (bank 128 preset) it answers to
    keys: dict                   # GM key -> (z float32 [Z], attrs float32 [A])


@dataclass
class DrumModel:
    folder: Path
    meta: dict
    session: object
    kits: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def sample_rate(self) -> int:
        return int(self.meta["sample_rate"])

    @property
    def length(self) -> int:
        return int(self.meta["length"])

    @property
    def classes(self) -> list:
        return list(self.meta["classes"])

    @property
    def attr_names(self) -> list:
        return [a["name"] for a in self.meta["attributes"]]

    @property
    def z_size(self) -> int:
        return int(self.meta["z_size"])

    @property
    def z_noise(self) -> float:
        return float(self.meta["z_noise"])

    def key_class(self, key: int) -> int | None:
        """Class index of a GM key, None for a key the model does not play."""
        entry = self.meta["keys"].get(str(int(key)))
        return None if entry is None else self.classes.index(entry["class"])

    def choke_group(self, key: int) -> int:
        """GM exclusive class of a key (0: none): a hit cuts the sounding hits of its group."""
        entry = self.meta["keys"].get(str(int(key)))
        return 0 if entry is None else int(entry.get("choke", 0))

    def find_kit(self, text) -> int:
        """A kit by index or by name (case-insensitive; a unique prefix will do)."""
        if isinstance(text, (int, np.integer)):
            if 0 <= int(text) < len(self.kits):
                return int(text)
            raise ValueError(f"kit {text} out of range 0..{len(self.kits) - 1}")
        names = [k.name.lower() for k in self.kits]
        t = str(text).strip().lower()
        if t in names:
            return names.index(t)
        hits = [i for i, n in enumerate(names) if n.startswith(t)]
        if len(hits) == 1:
            return hits[0]
        raise ValueError(f"no kit '{text}' (kits: {', '.join(k.name for k in self.kits)})")

    def kit_for_program(self, program: int) -> int:
        """The kit a GM drum program change selects: the first kit of that program, else Standard (0)."""
        for i, k in enumerate(self.kits):
            if k.program == int(program):
                return i
        return 0

    def hits(self, z, labels, attrs, velocity, seed: int = 0, iterations: int = GL_ITERATIONS,
             trim_db: float | None = None) -> list:
        """Audio at the model's rate, one float32 array per hit: the generator's magnitudes made
        audio. trim_db: each hit ends (with a 10-ms fade) at the last frame within trim_db of its
        loudest, so a closed hi-hat costs a fraction of a crash to make, to hold and to mix."""
        for out in self.hits_steps(z, labels, attrs, velocity, seed, iterations, trim_db):
            pass
        return out

    def hits_steps(self, z, labels, attrs, velocity, seed: int = 0, iterations: int = GL_ITERATIONS,
                   trim_db: float | None = None):
        """`hits` as a generator: None after the generator and after each Griffin-Lim iteration
        of each hit (a few ms each), then the list of hits."""
        logmag = self.session.run(None, {
            "z": np.asarray(z, np.float32), "labels": np.asarray(labels, np.float32),
            "attrs": np.asarray(attrs, np.float32), "velocity": np.asarray(velocity, np.float32)})[0]
        yield None
        mag = np.exp(np.minimum(logmag, 20.0)).astype(np.float32)
        n_fft, hop = int(self.meta["stft"]["n_fft"]), int(self.meta["stft"]["hop"])
        out = []
        for m in mag:
            frames = m.shape[1]
            if trim_db is not None:
                level = 20 * np.log10(m.max(axis=0) + 1e-9)
                loud = np.flatnonzero(level > level.max() - trim_db)
                frames = min(frames, int(loud[-1]) + 1 + n_fft // hop) if len(loud) else 1
            length = self.length if frames >= m.shape[1] else (frames - 1) * hop  # stft(length) has `frames`
            for x in griffin_lim_steps(m[None, :, :frames], n_fft, hop, length, iterations, seed):
                if x is None:
                    yield None
            x = x[0]
            fade = min(len(x), int(0.01 * self.sample_rate))
            if trim_db is not None and length < self.length and fade:
                x[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
            out.append(x)
        yield out


def load_drum_model(folder, threads: int = 1) -> DrumModel:
    """A one-shot model folder, validated: a missing file or a wrong field is a ModelError naming it."""
    folder = Path(folder)
    path = folder / "model.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (not a model folder)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    if meta.get("kind") != "one-shot":
        raise ModelError(f"{path}: not a one-shot (drum) model (kind {meta.get('kind')!r})")
    for key in ("name", "sample_rate", "length", "stft", "z_size", "z_noise", "classes", "attributes", "keys", "kits"):
        if key not in meta:
            raise ModelError(f"{path}: field '{key}' missing")
    gen = folder / meta.get("generator", {}).get("file", "generator.onnx")
    sess = _session(gen, threads)
    _expect_inputs(sess, gen, {"z": 2, "labels": 2, "attrs": 2, "velocity": 1})
    kits_path = folder / meta["kits"]
    try:
        raw = json.loads(kits_path.read_text())
        kits = [Kit(k["name"], int(k["program"]),
                    {int(key): (np.asarray(v["z"], np.float32), np.asarray(v["attrs"], np.float32))
                     for key, v in k["keys"].items()}) for k in raw]
    except FileNotFoundError:
        raise ModelError(f"{kits_path}: missing") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{kits_path}: unreadable ({exc})") from None
    z, a = int(meta["z_size"]), len(meta["attributes"])
    for k in kits:
        for key, (zv, av) in k.keys.items():
            if zv.shape != (z,) or av.shape != (a,) or not (np.isfinite(zv).all() and np.isfinite(av).all()):
                raise ModelError(f"{kits_path}: kit '{k.name}' key {key}: z needs {z} and attrs {a} finite numbers")
    if not kits:
        raise ModelError(f"{kits_path}: no kits")
    return DrumModel(folder, meta, sess, kits)
