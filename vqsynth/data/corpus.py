"""The corpus on disk and the reader trainers use.

Layout of a corpus folder (default `corpus/`):

    manifest.json                 format, render settings, shard list with sha256 checksums,
                                  splits, per-program drop counts, attribute statistics, build time
    labels.npy                    one structured row per note (LABEL_DTYPE), in shard order
    tonal/<soundfont>/p000.npy    int16 [N, L] audio of one GM program (L = 4 s at the sample rate)
    tonal/<soundfont>/p000.labels.npy   that shard's rows, as rendered (no split/row yet)
    tonal/<soundfont>/p000.targets.npy  float16 [N, T, H+Nb] analysis targets of those notes: per
                                  10-ms frame, harmonic amplitudes and noise-band magnitudes in the
                                  DSP head's conventions (vqsynth/data/targets.py; layout in
                                  manifest config "targets"), for the peak-normalised audio
    drums/<soundfont>/k000.npy    int16 [N, L] audio of one drum kit (bank 128 preset, or a kit-only SoundFont's one preset; L = 1 s)

Audio is mono, peak-normalised per note to full scale (int16 / 32768 gives float32 in [-1, 1));
`gain` in the labels brings a note back to its rendered level (FluidSynth gain 1.0), so velocity
loudness is not lost: raw = audio * gain. Each shard is a plain .npy, memory-mapped on read, so a
trainer on 2 cores reads only the rows (and samples) it batches. A shard or label file whose size,
shape or checksum disagrees with the manifest is reported with its name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vqsynth.cli import UserError
from vqsynth.data.timbre import ATTRIBUTES

FORMAT = 1
SPLITS = ["train", "valid", "test"]

LABEL_DTYPE = np.dtype([
    ("subset", "U5"),          # "tonal" or "drums"
    ("soundfont", "U32"),      # SoundFont file stem
    ("preset", "U24"),         # the SoundFont's preset name (program or kit)
    ("program", "i2"),         # GM program 0..127; -1 for drums
    ("family", "i1"),          # index into vqsynth.model.constants.FAMILIES; -1 for drums
    ("kit", "i2"),             # drum kit: bank-128 preset number (0 for a kit-only SoundFont); -1 for tonal
    ("drum_class", "i1"),      # index into vqsynth.data.gm.DRUM_CLASSES; -1 for tonal
    ("pitch", "i2"),           # MIDI note (the percussion key for drums)
    ("velocity", "i2"),
    ("instrument", "i4"),      # index into manifest["instruments"]: the unit splits are drawn by
    ("split", "i1"),           # index into SPLITS
    ("shard", "i4"),           # index into manifest["shards"]
    ("row", "i4"),             # row in that shard
    ("gain", "f4"),            # raw rendered level = audio * gain
    ("loudness_lufs", "f4"),   # ITU-R BS.1770 integrated loudness of the raw render
    ("tuning_cents", "f4"),    # measured (YIN) f0 minus the label pitch; NaN if unpitched / drums
    *[(name, "f4") for name in ATTRIBUTES],              # timbral attributes in [0, 1]
    *[("raw_" + name, "f4") for name in ATTRIBUTES],     # on the Audio Commons raw scale
    ("digest", "U16"),         # blake2b of (pitch, velocity, int16 audio): duplicates are dropped
])


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise UserError(f"no corpus at {folder} (no manifest.json): run `vqsynth data build --out {folder}`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is corrupted ({exc})") from None
    if manifest.get("config", {}).get("format") != FORMAT:
        raise UserError(f"{path}: not a corpus of format {FORMAT}: rebuild it with `vqsynth data build --out {folder}` "
                        "into an empty folder")
    return manifest


def check_file(folder: Path, entry: dict, full: bool = False):
    """Raise a UserError naming the file if it is missing, the wrong size or (full) the wrong hash."""
    path = folder / entry["file"]
    if not path.exists():
        raise UserError(f"missing corpus file {path}")
    if path.stat().st_size != entry["bytes"]:
        raise UserError(f"corrupted corpus file {path}: {path.stat().st_size} bytes, manifest says {entry['bytes']}")
    if full and sha256_of(path) != entry["sha256"]:
        raise UserError(f"corrupted corpus file {path}: sha256 differs from the manifest")


def verify(folder) -> int:
    """Check every checksum of a corpus; returns the number of files checked."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if "labels" not in manifest:
        raise UserError(f"{folder}: the build has not finished (no labels yet): rerun `vqsynth data build`")
    entries = [manifest["labels"]] + [s[k] for s in manifest["shards"] for k in ("audio", "labels", "targets")
                                      if k in s]
    for entry in entries:
        check_file(folder, entry, full=True)
    return len(entries)


class Corpus:
    """Read a built corpus: `labels` (structured array, LABEL_DTYPE), `split(name)`, `audio(i)`,
    and `batch(indices, length, rng)` for training."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        if "labels" not in self.manifest:
            raise UserError(f"{folder}: the build has not finished: rerun `vqsynth data build`")
        check_file(self.folder, self.manifest["labels"])
        self.labels = np.load(self.folder / self.manifest["labels"]["file"])
        self.sample_rate = int(self.manifest["config"]["sample_rate"])
        self._shards = [None] * len(self.manifest["shards"])
        self._targets = [None] * len(self.manifest["shards"])
        self.target_config = self.manifest["config"].get("targets")

    def __len__(self):
        return len(self.labels)

    def note_off_s(self, subset: str) -> float:
        """When the note-off was sent in the notes of `subset` (their length: note_length_s)."""
        return float(self.manifest["config"]["subsets"][subset]["note_off_s"])

    def note_length_s(self, subset: str) -> float:
        return float(self.manifest["config"]["subsets"][subset]["seconds"])

    def shard(self, k) -> np.ndarray:
        """The int16 [N, L] memmap of shard k (size and shape checked against the manifest)."""
        if self._shards[k] is None:
            entry = self.manifest["shards"][k]
            check_file(self.folder, entry["audio"])
            path = self.folder / entry["audio"]["file"]
            try:
                arr = np.load(path, mmap_mode="r")
            except ValueError as exc:
                raise UserError(f"corrupted corpus file {path}: {exc}") from None
            if arr.dtype != np.int16 or arr.shape != (entry["rows"], entry["length"]):
                raise UserError(f"corrupted corpus file {path}: {arr.dtype} {arr.shape}, "
                                f"manifest says int16 ({entry['rows']}, {entry['length']})")
            self._shards[k] = arr
        return self._shards[k]

    def targets(self, i: int) -> np.ndarray:
        """Analysis targets of note i, float32 [T, H+Nb], for its peak-normalised audio."""
        lab = self.labels[i]
        k = int(lab["shard"])
        if self._targets[k] is None:
            entry = self.manifest["shards"][k]
            if "targets" not in entry:
                raise UserError(f"{self.folder}: {entry['stem']} has no analysis targets (a corpus built before "
                                "them, or drums): rebuild into a new --out")
            check_file(self.folder, entry["targets"])
            self._targets[k] = np.load(self.folder / entry["targets"]["file"], mmap_mode="r")
        return self._targets[k][int(lab["row"])].astype(np.float32)

    def split(self, name: str, subset: str | None = None) -> np.ndarray:
        """Indices of the notes in split `name` ("train", "valid", "test"), optionally of one subset."""
        keep = self.labels["split"] == SPLITS.index(name)
        if subset is not None:
            keep &= self.labels["subset"] == subset
        return np.flatnonzero(keep)

    def audio(self, i: int, raw_level: bool = False) -> np.ndarray:
        """Note i as float32 [L]: peak-normalised, or at its rendered level with raw_level."""
        lab = self.labels[i]
        x = self.shard(int(lab["shard"]))[int(lab["row"])].astype(np.float32) / 32768.0
        return x * lab["gain"] if raw_level else x

    def attributes(self, indices) -> np.ndarray:
        """float32 [B, 7] timbral attributes in [0, 1], in ATTRIBUTES order."""
        lab = self.labels[np.asarray(indices)]
        return np.stack([lab[name] for name in ATTRIBUTES], axis=1).astype(np.float32)

    def batch(self, indices, length: int | None = None, rng: np.random.Generator | None = None,
              raw_level: bool = False):
        """(audio float32 [B, length], labels [B]) for the notes `indices`. Each note is cut to
        `length` samples from its onset, or from a random offset when `rng` is given; shorter
        notes are zero-padded. length=None keeps the longest note's length."""
        indices = np.asarray(indices)
        lab = self.labels[indices]
        lengths = [self.manifest["shards"][int(k)]["length"] for k in lab["shard"]]
        length = length or max(lengths)
        out = np.zeros((len(indices), length), np.float32)
        for b, (k, row, n) in enumerate(zip(lab["shard"], lab["row"], lengths)):
            start = int(rng.integers(0, n - length + 1)) if rng is not None and n > length else 0
            seg = self.shard(int(k))[int(row), start:start + length]
            out[b, :len(seg)] = seg
        out *= np.float32(1 / 32768)
        if raw_level:
            out *= lab["gain"][:, None]
        return out, lab
