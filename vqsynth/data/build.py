"""`vqsynth data build`: render, label and store the corpus, resumably, on worker processes.

The work is a fixed list of shards (one GM program or one drum kit of one SoundFont), cut into
units of one pitch (all its velocities) for the workers. A shard is written (audio, then labels,
each to a temporary name and renamed) and only then entered in the manifest, so a killed build
loses at most the shards in flight and continues where it stopped; when every shard is there and
the labels are final, a rerun writes nothing. Splits and statistics are computed once all shards
exist, over all of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqsynth.cli import UserError
from vqsynth.data import gm
from vqsynth.data.corpus import FORMAT, LABEL_DTYPE, SPLITS, check_file, read_manifest, sha256_of
from vqsynth.data.timbre import ATTRIBUTES, RAW_RANGES

SUBSETS = {"tonal": {"seconds": 4.0, "note_off_s": 3.0},   # NSynth: 4 s, note-off at 3 s
           "drums": {"seconds": 1.0, "note_off_s": 1.0}}   # one hit, left to ring for 1 s
PITCH_RANGE = (21, 108)
SYNTH_GAIN = 1.0
SILENT_PEAK = 1e-4  # -80 dBFS: no sample zone answered (a key or velocity the preset lacks)
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
ATTRIBUTE_RATE = 16000  # timbral attributes and tuning are measured at 16 kHz at any corpus rate, so
                        # RAW_RANGES (fixed on 16-kHz notes) and the attribute scale stay the same
TARGET_HARMONICS, TARGET_NOISE = 64, 64  # analysis targets (vqsynth/data/targets.py) of tonal notes


@dataclass
class Shard:
    subset: str
    soundfont: str  # path
    sf_name: str
    bank: int
    program: int
    preset: str
    notes: list = field(default_factory=list)  # [(pitch, velocity)]

    @property
    def stem(self):
        return f"{self.subset}/{self.sf_name}/{'p' if self.subset == 'tonal' else 'k'}{self.program:03d}"

    @property
    def spec(self):
        """Fingerprint of the requested notes: a shard on disk must have been built for the same."""
        return hashlib.sha1(json.dumps(self.notes).encode()).hexdigest()[:16]


def plan(soundfonts, subsets, programs, pitches, velocities, kits=None, limit=None) -> list[Shard]:
    """The shards of a build in a fixed order; each program or kit gets the pitches it sounds."""
    from vqsynth.data.soundfont import read_presets

    names = [Path(sf).stem for sf in soundfonts]
    if len(set(names)) != len(names):
        raise UserError(f"two SoundFonts share a file name: {names}")
    shards = []
    for sf, name in zip(soundfonts, names):
        try:
            presets = {(p.bank, p.program): p for p in read_presets(sf)}
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(f"{sf}: cannot read this SoundFont ({exc})") from None
        want = set(range(PITCH_RANGE[0], PITCH_RANGE[1] + 1)) & set(pitches)
        if "tonal" in subsets:
            for prog in programs:
                p = presets.get((0, prog))
                if p:
                    shards.append(Shard("tonal", str(sf), name, 0, prog, p.name,
                                        [(k, v) for k in sorted(p.keys & want) for v in velocities]))
        if "drums" in subsets:
            for (bank, prog), p in presets.items():
                if (bank == 128 or _drum_kit_only(presets)) and (kits is None or prog in kits):
                    keys = sorted(p.keys & set(gm.DRUM_KEYS) & set(pitches))
                    shards.append(Shard("drums", str(sf), name, bank, prog, p.name,
                                        [(k, v) for k in keys for v in velocities]))
    if limit:  # keep `limit` notes per subset, evenly spread over programs, pitches and velocities
        for subset in SUBSETS:
            pairs = [(s, n) for s in shards if s.subset == subset for n in s.notes]
            chosen = set(np.linspace(0, len(pairs) - 1, min(limit, len(pairs))).round().astype(int).tolist())
            for s in shards:
                if s.subset == subset:
                    s.notes = []
            for i, (s, n) in enumerate(pairs):
                if i in chosen:
                    s.notes.append(n)
    return [s for s in shards if s.notes]


def _drum_kit_only(presets: dict) -> bool:
    """A SoundFont that is one drum kit on bank 0 (the AVL drum kits): no bank-128 kit, a single
    preset, and that preset sounds at least 20 GM percussion keys. Its notes render on channel 1."""
    return (len(presets) == 1 and not any(b == 128 for b, _ in presets)
            and len(next(iter(presets.values())).keys & set(gm.DRUM_KEYS)) >= 20)


# ---------------------------------------------------------------------------------------- worker

def target_config(sample_rate: int) -> dict:
    """The DSP-head layout the analysis targets are written in: 10-ms frames, up to the Nyquist."""
    return {"hop": sample_rate // 100, "n_harmonics": TARGET_HARMONICS, "n_noise": TARGET_NOISE,
            "band_limit_hz": sample_rate / 2.0}


def render_unit(shard: Shard, pitch: int, sample_rate: int):
    """Worker: every velocity of one pitch of a shard -> (int16 [n, L], label rows, drop reasons,
    analysis targets float16 [n, T, H+Nb] or None for drums)."""
    import soxr

    from vqsynth.data import timbre
    from vqsynth.data.pitch import tuning_cents
    from vqsynth.data.render import Renderer
    from vqsynth.data.targets import analyse
    from vqsynth.model.dsp import midi_to_hz

    spec = SUBSETS[shard.subset]
    drum = shard.subset == "drums"
    with Renderer(shard.soundfont, sample_rate, SYNTH_GAIN) as synth:  # fresh: see Renderer
        renders = [(vel, synth.note(shard.bank, shard.program, pitch, vel, spec["seconds"], spec["note_off_s"]))
                   for p, vel in shard.notes if p == pitch]
    audio, rows, dropped, targets = [], [], [], []
    tcfg = target_config(sample_rate)
    for vel, x in renders:
        peak = float(np.abs(x).max())
        if not np.isfinite(peak):
            dropped.append("broken")
            continue
        if peak < SILENT_PEAK:
            dropped.append("silent")
            continue
        q = np.round(x * (32767.0 / peak)).astype(np.int16)
        y = q.astype(np.float32) / 32768.0  # what a trainer reads back: attributes are measured on it
        y16 = y if sample_rate == ATTRIBUTE_RATE else soxr.resample(y, sample_rate, ATTRIBUTE_RATE, quality="HQ")
        try:
            raw = timbre.raw_attributes(y16, ATTRIBUTE_RATE)
        except ValueError:
            dropped.append("broken")
            continue
        norm = timbre.normalise(raw)
        tuning = float("nan") if drum else tuning_cents(y16, ATTRIBUTE_RATE, pitch)
        if not drum:
            f0 = float(midi_to_hz(pitch + (tuning / 100.0 if np.isfinite(tuning) and abs(tuning) < 50 else 0.0)))
            h, n = analyse(y, sample_rate, f0, tcfg["hop"], tcfg["n_harmonics"], tcfg["n_noise"], tcfg["band_limit_hz"])
            targets.append(np.concatenate([h, n], axis=1).astype(np.float16))
        digest = hashlib.blake2b(np.array([pitch, vel], np.int16).tobytes() + q.tobytes(), digest_size=8)
        rows.append((shard.subset, shard.sf_name, shard.preset[:24], -1 if drum else shard.program,
                     -1 if drum else gm.family(shard.program), shard.program if drum else -1,
                     gm.drum_class(pitch, shard.preset) if drum else -1, pitch, vel, -1, -1, -1, -1,
                     peak * 32768.0 / 32767.0, timbre.loudness_lufs(x, sample_rate),
                     tuning,
                     *[norm[a] for a in ATTRIBUTES], *[raw[a] for a in ATTRIBUTES], digest.hexdigest()))
        audio.append(q)
    length = int(round(spec["seconds"] * sample_rate))
    width = tcfg["n_harmonics"] + tcfg["n_noise"]
    return (np.stack(audio) if audio else np.zeros((0, length), np.int16),
            np.array(rows, dtype=LABEL_DTYPE), dropped,
            None if drum else (np.stack(targets) if targets else np.zeros((0, length // tcfg["hop"], width), np.float16)))


def _unit(job):
    return render_unit(*job)


# ------------------------------------------------------------------------------------------ build

def _write_manifest(folder: Path, manifest: dict):
    tmp = folder / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, folder / "manifest.json")


def _config(sample_rate):
    return {"format": FORMAT, "sample_rate": sample_rate, "render_rate": max(44100, sample_rate),
            "synth_gain": SYNTH_GAIN, "subsets": SUBSETS, "pitch_range": list(PITCH_RANGE),
            "silent_peak": SILENT_PEAK, "attribute_ranges": RAW_RANGES, "attribute_rate": ATTRIBUTE_RATE,
            "targets": target_config(sample_rate)}


def build(out, soundfonts, sample_rate=16000, subsets=("tonal", "drums"), programs=range(128),
          pitches=range(21, 109), velocities=(25, 50, 75, 100, 127), kits=None, limit=None, workers=2,
          seed=0, progress=None) -> dict:
    """Build, or finish, the corpus in `out`. Returns {"rendered", "kept", "dropped", "seconds"}."""
    folder = Path(out)
    config = _config(sample_rate)
    if (folder / "manifest.json").exists():
        manifest = read_manifest(folder)
        if manifest.get("config") != json.loads(json.dumps(config)) or manifest.get("seed") != seed:
            raise UserError(f"{folder} holds a corpus built with other settings "
                            f"(sample rate {manifest.get('config', {}).get('sample_rate')}, seed "
                            f"{manifest.get('seed')}): use another --out")
    else:
        manifest = {"config": config, "seed": seed, "shards": []}
    done = {s["stem"]: s for s in manifest["shards"]}
    todo = []
    for shard in plan(soundfonts, subsets, programs, pitches, velocities, kits, limit):
        entry = done.get(shard.stem)
        if entry is None or not (folder / entry["audio"]["file"]).exists():
            todo.append(shard)
            continue
        if entry["spec"] != shard.spec:
            raise UserError(f"{folder / entry['audio']['file']} was built for other pitches or velocities "
                            "than asked now: use another --out")
        for key in ("audio", "labels", "targets"):
            if key in entry:
                check_file(folder, entry[key])
    if not todo and "labels" in manifest:
        return {"rendered": 0, "kept": 0, "dropped": 0, "seconds": 0.0}
    folder.mkdir(parents=True, exist_ok=True)
    for sf in {t.soundfont for t in todo}:  # provenance: which file each SoundFont name was
        manifest.setdefault("soundfonts", {})[Path(sf).stem] = {
            "path": str(Path(sf).resolve()), "bytes": Path(sf).stat().st_size, "sha256": sha256_of(Path(sf))}
    manifest["shards"] = [s for s in manifest["shards"] if s["stem"] not in {t.stem for t in todo}]
    manifest.pop("labels", None)
    _write_manifest(folder, manifest)
    seen = set()  # digests of notes already stored: an identical render is a duplicate
    for entry in manifest["shards"]:
        seen.update(np.load(folder / entry["labels"]["file"])["digest"])
    stats = _render_all(folder, manifest, todo, sample_rate, workers, seen, progress)
    _finalize(folder, manifest, seed)
    return stats


def _render_all(folder, manifest, todo, sample_rate, workers, seen, progress):
    import multiprocessing as mp

    jobs = [(s, p, sample_rate) for s in todo for p in sorted({n[0] for n in s.notes})]
    stats = {"rendered": 0, "kept": 0, "dropped": 0, "seconds": 0.0}
    if not jobs:
        return stats
    per_job = [sum(1 for n in s.notes if n[0] == p) for s, p, _ in jobs]
    left = Counter(id(s) for s, _, _ in jobs)
    parts = {id(s): [] for s in todo}
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        for (shard, _, _), n, result in zip(jobs, per_job, pool.imap(_unit, jobs)):
            parts[id(shard)].append(result)
            left[id(shard)] -= 1
            stats["rendered"] += n
            if left[id(shard)] == 0:
                kept, dropped = _write_shard(folder, manifest, shard, parts.pop(id(shard)), seen)
                stats["kept"] += kept
                stats["dropped"] += dropped
            if progress:
                progress(stats["rendered"], sum(per_job), time.perf_counter() - t0)
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    manifest["build_seconds"] = round(manifest.get("build_seconds", 0.0) + stats["seconds"], 1)
    return stats


def _write_shard(folder, manifest, shard, parts, seen):
    """Drop duplicates of notes already stored, write the shard, enter it in the manifest."""
    audio = np.concatenate([a for a, _, _, _ in parts])
    labels = np.concatenate([lab for _, lab, _, _ in parts])
    targets = None if parts[0][3] is None else np.concatenate([t for _, _, _, t in parts])
    reasons = Counter(r for _, _, d, _ in parts for r in d)
    keep = []
    for d in labels["digest"]:
        keep.append(d not in seen)
        seen.add(d)
    if not all(keep):
        reasons["duplicate"] += len(keep) - sum(keep)
    audio, labels = audio[np.array(keep, bool)], labels[np.array(keep, bool)]
    if targets is not None:
        targets = targets[np.array(keep, bool)]
    entry = {"stem": shard.stem, "subset": shard.subset, "soundfont": shard.sf_name, "bank": shard.bank,
             "program": shard.program, "preset": shard.preset, "spec": shard.spec, "requested": len(shard.notes),
             "rows": len(audio), "length": audio.shape[1], "dropped": dict(reasons),
             "audio": _save(folder, shard.stem + ".npy", audio),
             "labels": _save(folder, shard.stem + ".labels.npy", labels)}
    if targets is not None:
        entry["targets"] = _save(folder, shard.stem + ".targets.npy", targets)
    manifest["shards"].append(entry)
    _write_manifest(folder, manifest)
    return len(audio), sum(reasons.values())


def _save(folder: Path, name: str, array: np.ndarray) -> dict:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return {"file": name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def assign_splits(units: list, strata: list, seed: int) -> np.ndarray:
    """80/10/10 split of instrument units, seeded and deterministic: each stratum (GM family,
    drum class) is shuffled and spread evenly along one list, which is then cut at 80 % and 90 %,
    so every stratum lands in the splits in about those proportions."""
    rng = np.random.default_rng(seed)
    keys = np.empty(len(units))
    for s in sorted(set(strata)):
        members = [i for i in sorted(range(len(units)), key=lambda i: units[i]) if strata[i] == s]
        order = rng.permutation(len(members))
        for rank, i in zip(order, members):
            keys[i] = (rank + 0.5) / len(members)
    position = np.empty(len(units), int)
    position[np.lexsort((np.array([str(u) for u in units]), keys))] = np.arange(len(units))
    cuts = np.round(np.cumsum(SPLIT_FRACTIONS)[:2] * len(units))
    return np.searchsorted(cuts, position, side="right")


def kit_name(preset: str) -> str:
    """A kit's name as SoundFonts share it ("TR 808" and "TR-808" are one): its split key."""
    return "".join(ch for ch in preset.lower() if ch.isalnum())


def _finalize(folder: Path, manifest: dict, seed: int):
    """Labels of all shards in one table with instrument ids, splits, shard rows; statistics."""
    manifest["shards"].sort(key=lambda s: (s["subset"] != "tonal", s["soundfont"], s["program"]))
    tables = []
    for k, entry in enumerate(manifest["shards"]):
        lab = np.load(folder / entry["labels"]["file"])
        lab["shard"], lab["row"] = k, np.arange(len(lab))
        tables.append(lab)
    labels = np.concatenate(tables) if tables else np.zeros(0, LABEL_DTYPE)
    drum = labels["subset"] == "drums"
    unit = [(s, sf, int(p), int(k) if d else -1) for s, sf, p, k, d in
            zip(labels["subset"], labels["soundfont"], np.where(drum, labels["kit"], labels["program"]),
                labels["pitch"], drum)]
    units = sorted(set(unit))
    index = {u: i for i, u in enumerate(units)}
    labels["instrument"] = [index[u] for u in unit]
    split = np.zeros(len(units), int)
    tonal = [i for i, u in enumerate(units) if u[0] == "tonal"]
    if tonal:  # by program, stratified by GM family
        family = {int(i): int(f) for i, f in zip(labels["instrument"], labels["family"])}
        split[tonal] = assign_splits([units[i] for i in tonal], [family[i] for i in tonal], seed)
    drums = labels["subset"] == "drums"
    if drums.any():  # by kit name: every SoundFont's "Jazz" kit in one split (they share samples)
        name = {(sf, int(k)): kit_name(p) for sf, k, p in zip(labels["soundfont"][drums], labels["kit"][drums],
                                                               labels["preset"][drums])}
        names = sorted(set(name.values()))
        of_name = dict(zip(names, assign_splits(names, [0] * len(names), seed)))
        for i, u in enumerate(units):
            if u[0] == "drums":
                split[i] = of_name[name[u[1:3]]]
    labels["split"] = split[labels["instrument"]]
    manifest["instruments"] = [{"subset": u[0], "soundfont": u[1], "program" if u[0] == "tonal" else "kit": u[2],
                                **({"key": u[3]} if u[0] == "drums" else {}), "split": SPLITS[split[i]]}
                               for i, u in enumerate(units)]
    manifest["labels"] = _save(folder, "labels.npy", labels)
    manifest["stats"] = statistics(labels, manifest)
    _write_manifest(folder, manifest)


def statistics(labels, manifest) -> dict:
    """Counts, size and the distribution of each attribute, per subset."""
    pct = [0, 1, 5, 25, 50, 75, 95, 99, 100]
    out = {"notes": {}, "splits": {}, "attributes": {}, "bytes": sum(s[k]["bytes"] for s in manifest["shards"]
                                                                     for k in ("audio", "labels", "targets") if k in s)}
    for subset in SUBSETS:
        lab = labels[labels["subset"] == subset]
        shards = [s for s in manifest["shards"] if s["subset"] == subset]
        if not len(lab) and not shards:
            continue
        tuning = np.abs(lab["tuning_cents"][np.isfinite(lab["tuning_cents"])])
        out["notes"][subset] = {"kept": int(len(lab)), "requested": sum(s["requested"] for s in shards),
                                "dropped": dict(sum((Counter(s["dropped"]) for s in shards), Counter())),
                                "pitched": int(len(tuning)), "within_50_cents": int((tuning < 50).sum())}
        out["splits"][subset] = {name: int((lab["split"] == i).sum()) for i, name in enumerate(SPLITS)}
        out["attributes"][subset] = {
            name: {"percentiles": pct, "values": np.percentile(lab[name], pct).round(4).tolist() if len(lab) else [],
                   "mean": round(float(lab[name].mean()), 4) if len(lab) else None}
            for name in ATTRIBUTES + ["raw_" + a for a in ATTRIBUTES] + ["loudness_lufs"]}
    return out
