"""Loading and validating a model folder (DESIGN.md "Model folder contract").

Everything that can be wrong with a folder is found here, at load time, and reported as a
ModelError naming the file: the audio thread only ever sees a model that passed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqsynth.model.prior import TokenPrior

REQUIRED_KEYS = ["name", "sample_rate", "hop", "pitch_range", "n_tokens", "z_size", "attributes",
                 "generator", "encoder", "prior"]


class ModelError(Exception):
    """A model folder that cannot be used; the message names the file and what is wrong."""


def _session(path: Path, threads: int = 1):
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"{path}: file missing")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several types for a broken file
        raise ModelError(f"{path}: not a valid ONNX model ({str(exc).splitlines()[0][:200]})") from None


def _expect_inputs(sess, path, expected: dict):
    got = {i.name: i for i in sess.get_inputs()}
    for name, rank in expected.items():
        if name not in got:
            raise ModelError(f"{path}: input '{name}' missing (has {sorted(got)})")
        if len(got[name].shape) != rank:
            raise ModelError(f"{path}: input '{name}' has rank {len(got[name].shape)}, expected {rank}")


@dataclass
class Model:
    folder: Path
    meta: dict
    generator: object
    encoder: object
    prior: TokenPrior
    name: str = field(init=False)

    def __post_init__(self):
        m = self.meta
        self.name = m["name"]
        self.sample_rate = int(m["sample_rate"])
        self.hop = int(m["hop"])
        self.pitch_range = tuple(int(p) for p in m["pitch_range"])
        self.n_tokens = int(m["n_tokens"])
        self.z_size = int(m["z_size"])
        self.attributes = m["attributes"]
        self.attr_names = [a["name"] for a in self.attributes]
        self.attr_ranges = {a["name"]: tuple(a["range"]) for a in self.attributes}
        self.attr_defaults = np.array([a["default"] for a in self.attributes], dtype=np.float32)
        self.attr_lo, self.attr_hi = (np.array([self.attr_ranges[n][k] for n in self.attr_names], np.float32)
                                      for k in (0, 1))  # the ranges as arrays, for clipping a vector
        self.family_names = [a["name"] for a in self.attributes if a.get("kind") == "family"]
        g = m["generator"]
        self.state_shape = tuple(g["state_shape"])
        self.n_harmonics, self.n_noise = int(g["n_harmonics"]), int(g["n_noise"])
        self.band_limit_hz = float(g["band_limit_hz"])
        self.encoder_rate = int(m["encoder"].get("sample_rate", self.sample_rate))  # 2.x: the 1.x encoder at 16 kHz
        self.frame_size = 1 + self.n_harmonics + self.n_noise
        self.preset_table = m.get("presets", [])
        self.presets = [p["name"] for p in self.preset_table]

    def preset_for_program(self, program: int) -> int | None:
        """The preset a MIDI program change selects: the preset made from that GM program, else
        the one of its GM family (programs 8k..8k+7), else preset number `program` if there is
        one (models whose presets name no program), else None."""
        programs = [p.get("program") for p in self.preset_table]
        if program in programs:
            return programs.index(program)
        for i, q in enumerate(programs):
            if q is not None and q // 8 == program // 8:
                return i
        return program if program < len(self.preset_table) and all(q is None for q in programs) else None

    def find_preset(self, text) -> int:
        """A preset's index from what a person types: its number, or its name in any case with
        spaces or dashes ('Vibraphone', 'acoustic grand piano'), or a prefix that only one name
        has ('vib'). Raises ValueError naming the candidates when it is ambiguous or unknown."""
        names = self.presets
        if isinstance(text, (int, np.integer)) or str(text).strip().isdigit():
            index = int(text)
            if not 0 <= index < len(names):
                raise ValueError(f"preset {index} out of range 0..{len(names) - 1}")
            return index
        norm = lambda s: " ".join(str(s).lower().replace("-", " ").replace("_", " ").split())  # noqa: E731
        want = norm(text)
        exact = [i for i, n in enumerate(names) if norm(n) == want]
        if exact:
            return exact[0]
        starts = [i for i, n in enumerate(names) if norm(n).startswith(want)] if want else []
        words = [i for i, n in enumerate(names) if want and want in norm(n).split()]
        found = starts or words
        if len(found) == 1:
            return found[0]
        if found:
            raise ValueError(f"preset '{text}' is ambiguous: " + ", ".join(f"{i} {names[i]}" for i in found[:12])
                             + (" ..." if len(found) > 12 else ""))
        raise ValueError(f"unknown preset '{text}' (`vqsynth presets` lists them)")

    def preset_attrs(self, index: int) -> dict:
        """The attribute values a preset recalls with its z ({} when it recalls none)."""
        return dict(self.preset_table[index].get("attrs", {}))

    def velocity_offset(self, preset: int | None, velocity: float) -> np.ndarray | None:
        """What a note's velocity adds to its attributes under `preset` [A], or None when the
        preset says nothing (custom z, older models). A 2.x preset carries, per timbre attribute,
        how its program's measured value moves with velocity at a fixed pitch in the corpus
        (`velocity`: {"reference": v0, "per_127": {name: slope}}): the generator has no velocity
        input, so this is how a harder note gets brighter, as the real instrument does."""
        spec = self.preset_table[preset].get("velocity") if preset is not None else None
        if not spec:
            return None
        slope = np.array([spec["per_127"].get(n, 0.0) for n in self.attr_names], dtype=np.float32)
        return slope * np.float32((float(velocity) - float(spec["reference"])) / 127.0)

    def preset_z(self, index: int) -> np.ndarray:
        p = self.preset_table[index]
        if "z" in p:
            return np.asarray(p["z"], dtype=np.float32)
        return seed_z(int(p["seed"]), self.z_size)

    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((batch,) + self.state_shape, dtype=np.float32)

    def generate(self, z, pitch, attrs, tokens, state):
        """One generator call: z [B,Z], pitch [B], attrs [B,A], tokens [B,T] -> (frames [B,T,F], state)."""
        frames, nxt = self.generator.run(None, {
            "z": z.astype(np.float32, copy=False), "pitch": pitch.astype(np.float32, copy=False),
            "attrs": attrs.astype(np.float32, copy=False), "tokens": tokens.astype(np.int64, copy=False),
            "state": state})
        return frames, nxt

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Tokens [N // hop] of mono float audio at the model's sample rate (resampled to the
        encoder's own rate when that differs; the frames are 10 ms at both)."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        frames = audio.size // self.hop
        if self.encoder_rate != self.sample_rate:
            import soxr

            audio = soxr.resample(audio, self.sample_rate, self.encoder_rate).astype(np.float32)
        tokens = self.encoder.run(None, {"audio": audio.reshape(1, -1)})[0][0]
        if self.encoder_rate != self.sample_rate and tokens.size:
            tokens = np.pad(tokens, (0, max(0, frames - tokens.size)), mode="edge")[:frames]
        return tokens

    def encode_file(self, path, max_seconds: float = 120.0) -> np.ndarray:
        """Tokens of an audio file (any rate soundfile reads, mixed to mono, resampled with soxr).
        Raises ValueError naming the file when it cannot be read, is empty or is too long."""
        import soundfile as sf
        import soxr

        try:
            info = sf.info(str(path))
            if info.duration > max_seconds:
                raise ValueError(f"{path}: {info.duration:.1f} s long, more than {max_seconds:g} s")
            audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except ValueError:
            raise
        except Exception as exc:  # missing, unreadable, not audio: soundfile's own words
            raise ValueError(f"{path}: cannot read audio ({exc})") from None
        mono = audio.mean(axis=1)
        if sr != self.sample_rate:
            mono = soxr.resample(mono, sr, self.sample_rate)
        if mono.size < self.hop:
            raise ValueError(f"{path}: shorter than one frame ({self.hop} samples at {self.sample_rate} Hz)")
        return self.encode(np.ascontiguousarray(mono, dtype=np.float32))


def seed_z(seed: int, z_size: int) -> np.ndarray:
    """The z vector an integer seed names (the same on every machine)."""
    return np.random.default_rng(seed).standard_normal(z_size).astype(np.float32)


def _check_fields(meta: dict, z_size: int):
    """The fields Model and the engine read, beyond the ones load_model converts itself: raises
    TypeError/ValueError/KeyError, which load_model reports naming model.json."""
    g = meta["generator"]
    if int(g["n_harmonics"]) < 1 or int(g["n_noise"]) < 0 or not 0 < float(g["band_limit_hz"]) < math.inf:
        raise ValueError("generator n_harmonics/n_noise/band_limit_hz out of range")
    for part in (g, meta["encoder"], meta["prior"]):
        if not isinstance(part.get("file", ""), str) or not isinstance(part.get("mode", ""), (str, type(None))):
            raise TypeError("file names and the prior mode must be strings")
    names = [a["name"] for a in meta["attributes"]]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError("attribute names must be distinct, non-empty strings")
    for a in meta["attributes"]:
        lo, hi = (float(r) for r in a["range"])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= float(a["default"]) <= hi):
            raise ValueError(f"attribute {a['name']}: range {a['range']} / default {a['default']} (finite, lo <= default <= hi)")
    for p in meta.get("presets", []):
        if not isinstance(p["name"], str):
            raise TypeError(f"preset name {p['name']!r} is not a string")
        if "z" in p:
            z = np.asarray(p["z"], dtype=np.float64)
            if z.ndim != 1 or not np.isfinite(z).all():
                raise ValueError(f"preset {p['name']}: z must be a list of finite numbers")
        else:
            int(p["seed"])
        if "program" in p and not (isinstance(p["program"], int) and 0 <= p["program"] <= 127):
            raise ValueError(f"preset {p['name']}: program must be a GM program 0..127")
        ranges = {a["name"]: (float(a["range"][0]), float(a["range"][1])) for a in meta["attributes"]}
        for name, value in p.get("attrs", {}).items():
            if name not in ranges:
                raise ValueError(f"preset {p['name']}: unknown attribute {name!r}")
            if not ranges[name][0] <= float(value) <= ranges[name][1]:
                raise ValueError(f"preset {p['name']}: {name} = {value} is outside {ranges[name]}")
        if "velocity" in p:
            v = p["velocity"]
            slopes = v["per_127"] if isinstance(v, dict) else None
            if (not isinstance(slopes, dict) or not 0 <= float(v["reference"]) <= 127
                    or any(n not in ranges or not math.isfinite(float(b)) for n, b in slopes.items())):
                raise ValueError(f"preset {p['name']}: velocity must be {{\"reference\": 0..127, \"per_127\": "
                                 "{attribute: finite number}}")


def load_model(folder, threads: int = 1) -> Model:
    folder = Path(folder)
    meta_path = folder / "model.json"
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder")
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{meta_path}: file missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelError(f"{meta_path}: missing keys {missing}")
    try:
        sr, hop = int(meta["sample_rate"]), int(meta["hop"])
        lo, hi = (int(p) for p in meta["pitch_range"])
        z_size, n_tokens = int(meta["z_size"]), int(meta["n_tokens"])
        n_attrs = len(meta["attributes"])
        state_shape = [int(s) for s in meta["generator"]["state_shape"]]
        for a in meta["attributes"]:
            a["name"], float(a["default"]), [float(r) for r in a["range"]]
        _check_fields(meta, z_size)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise ModelError(f"{meta_path}: malformed field ({exc!r})") from None
    if not (8000 <= sr <= 192000) or not (16 <= hop <= sr // 10):
        raise ModelError(f"{meta_path}: sample_rate {sr} / hop {hop} out of range")
    if not (0 <= lo <= hi <= 127):
        raise ModelError(f"{meta_path}: pitch_range {lo}..{hi} is not within 0..127")
    gen_path = folder / meta["generator"].get("file", "generator.onnx")
    gen = _session(gen_path, threads)
    _expect_inputs(gen, gen_path, {"z": 2, "pitch": 1, "attrs": 2, "tokens": 2, "state": 3})
    enc_path = folder / meta["encoder"].get("file", "encoder.onnx")
    enc = _session(enc_path, 1)
    _expect_inputs(enc, enc_path, {"audio": 2})
    prior_path = folder / meta["prior"].get("file", "prior.json")
    try:
        prior = TokenPrior(json.loads(prior_path.read_text()), meta["prior"].get("mode"))
    except FileNotFoundError:
        raise ModelError(f"{prior_path}: file missing") from None
    except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise ModelError(f"{prior_path}: malformed prior ({exc!r})") from None
    if prior.n_tokens != n_tokens:
        raise ModelError(f"{prior_path}: {prior.n_tokens} tokens, model.json says {n_tokens}")
    model = Model(folder, meta, gen, enc, prior)
    # one real call proves the shapes agree with model.json before anything plays
    try:
        frames, state = model.generate(np.zeros((1, z_size)), np.array([float(lo)]), np.zeros((1, n_attrs)),
                                       np.zeros((1, 2), dtype=np.int64), model.initial_state(1))
    except Exception as exc:
        raise ModelError(f"{gen_path}: does not accept the shapes model.json declares "
                         f"(z {z_size}, attrs {n_attrs}, state {state_shape}): {str(exc).splitlines()[0][:200]}") from None
    if frames.shape != (1, 2, model.frame_size) or state.shape[1:] != tuple(state_shape):
        raise ModelError(f"{gen_path}: output shapes {frames.shape}/{state.shape} do not match model.json "
                         f"(frame size {model.frame_size}, state {state_shape})")
    for p in model.preset_table:
        if "z" in p and len(p["z"]) != z_size:
            raise ModelError(f"{meta_path}: preset {p['name']}: z has {len(p['z'])} values, z_size is {z_size}")
    return model


def models_dir() -> Path:
    """Where shipped model folders live: $VQSYNTH_MODELS, else models/ beside the package."""
    import os

    return Path(os.environ.get("VQSYNTH_MODELS", Path(__file__).resolve().parents[2] / "models"))


def resolve_model(name: str | None) -> Path:
    """A model folder from a path, a name under models/, or None for the default (models/DEFAULT)."""
    if name and Path(name).is_dir():
        return Path(name)
    root = models_dir()
    if not name:
        default = root / "DEFAULT"
        if not default.is_file():
            raise ModelError(f"{default}: no default model named; pass --model PATH")
        name = default.read_text().strip()
    folder = root / name
    if not folder.is_dir():
        have = sorted(p.name for p in root.iterdir() if (p / "model.json").is_file()) if root.is_dir() else []
        raise ModelError(f"no model '{name}' (not a folder, and not in {root}; have: {', '.join(have) or 'none'})")
    return folder
