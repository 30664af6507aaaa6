"""Training the drum (one-shot) generator and exporting its model folder (vqsynth/model/drums.py).

G(z, class soft labels, features, velocity) -> the log-magnitude STFT of a whole 1-s hit. Every
hit of the corpus (one sample of one kit at one velocity) owns a Gaussian in z (the tonal model's
InstrumentTable, one entry per kit and key), so z is the sample's identity and the kit presets
are those means; for a share of the hits (`z_dropout`) G gets z = 0 and must make the hit from
the class labels, features and velocity alone: that is what lets the class morph and the
feature controls steer, and what plays a held-out kit's key.

The loss is an L1 distance between log magnitudes (floor -60 dB under a full-scale sine's bin)
plus a spectral-convergence term on linear magnitudes (the loud parts: the attack and body):
a regression, not DrumGAN's WGAN-GP. Why: on these 2 cores a step of 32 hits costs ~0.4 s
with it and would cost several times that with critics; adversarial fine-tuning is left open.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vqsynth.data.timbre import ATTRIBUTES

N_FFT, HOP = 512, 128
LEVEL = 0.5                 # hits are learned at their peak-normalised level x LEVEL (tonal notes' headroom)
LOG_FLOOR = float(np.log(1e-3))
TRAIN_SPLIT_FOR_KITS = ("train",)


class DrumHits:
    """The drum notes of a corpus (whole hits in memory, int16) with their labels."""

    def __init__(self, corpus_dir, splits=("train",)):
        from vqsynth.cli import UserError
        from vqsynth.data import gm
        from vqsynth.data.corpus import Corpus

        self.corpus = Corpus(corpus_dir)
        self.index = np.concatenate([self.corpus.split(s, subset="drums") for s in splits])
        if len(self.index) == 0:
            raise UserError(f"{corpus_dir}: no drum notes in {', '.join(splits)} (vqsynth data build --subset drums)")
        lab = self.corpus.labels[self.index]
        self.labels = lab
        self.sample_rate = self.corpus.sample_rate
        self.length = int(round(self.corpus.note_length_s("drums") * self.sample_rate))
        self.classes = list(gm.DRUM_CLASSES)
        self.cls = lab["drum_class"].astype(np.int64)
        self.key = lab["pitch"].astype(np.int64)
        self.velocity = (lab["velocity"].astype(np.float32) / 127.0)
        self.attrs = np.stack([lab[n] for n in ATTRIBUTES], 1).astype(np.float32)
        sounds = sorted(set(zip(lab["soundfont"], lab["kit"].tolist(), lab["pitch"].tolist())))
        where = {s: i for i, s in enumerate(sounds)}
        self.sounds = sounds  # (soundfont, kit, key): one Gaussian in z each
        self.sound = np.array([where[s] for s in zip(lab["soundfont"], lab["kit"].tolist(), lab["pitch"].tolist())])
        audio, _ = self.corpus.batch(self.index, self.length)
        self.audio = (audio * (LEVEL * 32767.0)).astype(np.int16)  # peak-normalised corpus notes, at LEVEL

    def __len__(self):
        return len(self.index)

    def waves(self, rows) -> np.ndarray:
        return self.audio[rows].astype(np.float32) / 32767.0

    def soft_labels(self, rows, smoothing=0.1) -> np.ndarray:
        out = np.full((len(rows), len(self.classes)), smoothing / len(self.classes), np.float32)
        out[np.arange(len(rows)), self.cls[rows]] += 1.0 - smoothing
        return out


class DrumGenerator(nn.Module):
    """Conditions -> [B, n_fft/2+1, frames] log magnitudes: a linear map to 12 coarse frames, five
    x2 upsampling stages of residual 1-D convolutions over time (frequency as channels), FiLM
    from the conditions in each stage, and a linear output over 257 bins."""

    def __init__(self, z_size=32, n_classes=10, n_attrs=7, frames=345, widths=(192, 160, 128, 96, 64)):
        super().__init__()
        self.cfg = {"z_size": z_size, "n_classes": n_classes, "n_attrs": n_attrs, "frames": frames,
                    "widths": list(widths)}
        self.frames = frames
        c_in = z_size + n_classes + n_attrs + 1
        self.coarse = -(-frames // 2 ** len(widths))
        self.cond = nn.Sequential(nn.Linear(c_in, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256), nn.LeakyReLU(0.2))
        self.start = nn.Linear(256, widths[0] * self.coarse)
        self.convs = nn.ModuleList()
        self.films = nn.ModuleList()
        prev = widths[0]
        for w in widths:
            self.convs.append(nn.ModuleList([nn.Conv1d(prev, w, 5, padding=2), nn.Conv1d(w, w, 3, padding=1),
                                             nn.Conv1d(prev, w, 1)]))
            self.films.append(nn.Linear(256, 2 * w))
            prev = w
        self.out = nn.Conv1d(prev, N_FFT // 2 + 1, 1)
        nn.init.constant_(self.out.bias, LOG_FLOOR)

    def forward(self, z, labels, attrs, velocity):
        c = self.cond(torch.cat([z, labels, attrs, velocity[:, None]], 1))
        h = self.start(c).view(z.shape[0], -1, self.coarse)
        act = nn.functional.leaky_relu
        for (c1, c2, skip), film in zip(self.convs, self.films):
            h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
            g, b = film(c).chunk(2, 1)
            y = act(c1(h), 0.2) * (1 + g[:, :, None]) + b[:, :, None]
            h = skip(h) + c2(act(y, 0.2))
        return self.out(act(h, 0.2))[:, :, :self.frames]


def log_magnitude(waves: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(waves, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, pad_mode="reflect",
                      return_complex=True)
    return torch.log(spec.abs().clamp_min(1e-3))


def drum_loss(pred, target):
    """(L1 of log magnitudes above the floor, spectral convergence of linear magnitudes)."""
    l1 = (pred.clamp_min(LOG_FLOOR) - target).abs().mean()
    a, b = pred.exp(), target.exp()
    sc = torch.linalg.norm((a - b).flatten(1), dim=1) / torch.linalg.norm(b.flatten(1), dim=1).clamp_min(1e-6)
    return l1, sc.mean()


def class_weights(cls: np.ndarray, n: int) -> np.ndarray:
    """Sampling probability per hit: each class drawn in proportion to the square root of its size
    (the 'other percussion' keys are 28 of 47, kicks 2: without it kicks are rare in a batch)."""
    counts = np.bincount(cls, minlength=n).astype(np.float64)
    w = 1.0 / np.sqrt(np.maximum(counts[cls], 1))
    return w / w.sum()


def train_drums(hits: DrumHits, run_dir, steps=100000, batch=32, max_minutes=None, lr=1e-3, kl_weight=0.01,
                z_dropout=0.3, log_every=20, seed=0):
    """Train G and the per-sound z table; resumable from run_dir (checkpoint.pt)."""
    from vqsynth.train.gan import InstrumentTable
    from vqsynth.train.run import Run

    frames = 1 + hits.length // HOP
    torch.manual_seed(seed)
    G = DrumGenerator(frames=frames, n_classes=len(hits.classes), n_attrs=len(ATTRIBUTES))
    table = InstrumentTable(len(hits.sounds), G.cfg["z_size"])
    opt = torch.optim.Adam(list(G.parameters()) + list(table.parameters()), lr=lr)
    run = Run(run_dir, {"G": G, "sounds": table, "opt": opt}, every=200)
    for group in opt.param_groups:
        group["lr"] = lr
    (Path(run_dir) / "config.json").write_text(json.dumps({
        "generator": G.cfg, "sample_rate": hits.sample_rate, "length": hits.length, "n_fft": N_FFT, "hop": HOP,
        "sounds": [list(map(str, s)) for s in hits.sounds]}, indent=1) + "\n")
    run.log_line({"event": "started", "step": run.step, "lr": lr, "batch": batch, "z_dropout": z_dropout,
                  "hits": len(hits), "sounds": len(hits.sounds)})
    rng = np.random.default_rng(seed + run.step)
    p = class_weights(hits.cls, len(hits.classes))
    acc, t_start = {}, time.time()
    while run.step < steps:
        if max_minutes is not None and time.time() - t_start > 60 * max_minutes:
            run.log_line({"event": "time budget reached", "step": run.step})
            break
        rows = rng.choice(len(hits), batch, p=p)
        target = log_magnitude(torch.from_numpy(hits.waves(rows)))
        z, kl = table(torch.from_numpy(hits.sound[rows]))
        keep = torch.from_numpy((rng.random(batch) >= z_dropout).astype(np.float32))[:, None]
        pred = G(z * keep, torch.from_numpy(hits.soft_labels(rows)), torch.from_numpy(hits.attrs[rows]),
                 torch.from_numpy(hits.velocity[rows]))
        l1, sc = drum_loss(pred, target)
        loss = l1 + sc + kl_weight * kl
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(G.parameters(), 5.0)
        opt.step()
        run.step += 1
        for k, v in (("log_l1", l1), ("spectral_convergence", sc), ("kl", kl)):
            acc.setdefault(k, []).append(float(v.detach()))
        if run.step % log_every == 0:
            run.log(**{k: float(np.mean(v)) for k, v in acc.items()})
            acc = {}
        run.maybe_save()
    run.save()
    return G, table


def load_run(run_dir):
    """(G, z means [S, Z], z spreads [S, Z], config) of a drum run's checkpoint."""
    cfg = json.loads((Path(run_dir) / "config.json").read_text())
    state = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    G = DrumGenerator(**cfg["generator"])
    G.load_state_dict(state["G"])
    G.eval()
    mu = state["sounds"]["mu"].numpy()
    sigma = np.exp(0.5 * state["sounds"]["logvar"].numpy())
    return G, mu, sigma, cfg, state


def kit_presets(hits: DrumHits, mu: np.ndarray) -> list:
    """One preset per kit of the training split with its own hits for at least 4 keys: per GM key
    the kit's own sound (z mean, median features over its velocities), else that of the first kit
    of the same SoundFont that has the key (FluidSynth falls back to the Standard kit the same way)."""
    from vqsynth.data.build import kit_name

    lab = hits.labels
    per_kit = {}
    for i, (sf, kit, key) in enumerate(hits.sounds):
        rows = np.flatnonzero(hits.sound == i)
        name = str(lab["preset"][rows[0]]).strip()
        per_kit.setdefault((sf, kit), {"name": name, "keys": {}})["keys"][int(key)] = {
            "z": mu[i].round(4).tolist(), "attrs": np.median(hits.attrs[rows], 0).round(4).tolist()}
    presets, seen = [], set()
    for (sf, kit), entry in sorted(per_kit.items(), key=lambda kv: (kv[0][0] != "FluidR3_GM", kv[0])):
        if len(entry["keys"]) < 4:
            continue
        keys = dict(entry["keys"])
        for (sf2, kit2), other in sorted(per_kit.items()):
            if sf2 == sf:
                for k, v in other["keys"].items():
                    keys.setdefault(k, v)
        name = f"{entry['name']} ({sf.split('_')[0]})"
        if kit_name(name) in seen:
            continue
        seen.add(kit_name(name))
        presets.append({"name": name, "program": int(kit), "soundfont": sf,
                        "keys": {str(k): keys[k] for k in sorted(keys)}})
    return presets


def export_drums(hits: DrumHits, run_dir, out, name, version, training_data: dict):
    """A one-shot model folder from a drum run: generator.onnx, model.json, kits.json."""
    G, mu, sigma, cfg, state = load_run(run_dir)
    trained = [tuple(s) for s in cfg["sounds"]]  # the run's own table order, whatever the corpus holds now
    if [tuple(map(str, s)) for s in hits.sounds] != trained:
        raise ValueError(f"{run_dir}: trained on another set of sounds than {len(hits.sounds)} in the corpus now")
    info = dict(training_data, steps=int(state["step"]), wall_time_s=round(state["elapsed"]))
    return write_drum_folder(G, kit_presets(hits, mu), out, name, version, hits.sample_rate, hits.length,
                             float(np.median(sigma)), list(hits.classes), info)


def write_drum_folder(G: DrumGenerator, kits: list, out, name, version, sample_rate, length, z_noise, classes,
                      training_data: dict):
    """Write the folder of the one-shot contract (vqsynth/model/drums.py) and load it back."""
    from vqsynth.data import gm
    from vqsynth.model.drums import load_drum_model

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    G.eval()
    B = 2
    args = (torch.zeros(B, G.cfg["z_size"]), torch.full((B, G.cfg["n_classes"]), 0.1), torch.rand(B, G.cfg["n_attrs"]),
            torch.rand(B))
    torch.onnx.export(G, args, str(out / "generator.onnx"), dynamo=False, opset_version=17,
                      input_names=["z", "labels", "attrs", "velocity"], output_names=["logmag"],
                      dynamic_axes={"z": {0: "B"}, "labels": {0: "B"}, "attrs": {0: "B"}, "velocity": {0: "B"},
                                    "logmag": {0: "B"}})
    (out / "kits.json").write_text(json.dumps(kits) + "\n")
    keys = {str(k): {"name": n, "class": gm.DRUM_CLASSES[gm.drum_class(k)], "choke": CHOKE_GROUPS.get(k, 0)}
            for k, (n, _) in sorted(gm.DRUM_KEYS.items())}
    meta = {"format": 1, "kind": "one-shot", "name": name, "version": version, "sample_rate": int(sample_rate),
            "length": int(length), "stft": {"n_fft": N_FFT, "hop": HOP, "window": "hann", "center": True},
            "level": LEVEL, "z_size": G.cfg["z_size"], "z_noise": round(float(z_noise), 4), "classes": classes,
            "attributes": [{"name": n, "range": [0.0, 1.0], "default": 0.5} for n in ATTRIBUTES],
            "keys": keys, "kits": "kits.json", "generator": {"file": "generator.onnx", "config": G.cfg},
            "training_data": json.dumps(training_data)}
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    load_drum_model(out)
    return out


def make_test_drum_model(out, seed=0, sample_rate=44100, seconds=0.25, keys=(36, 38, 42, 44, 46, 49)):
    """The small test drum model: a randomly initialised generator (output bias at full level, so
    its hits are loud noise bursts) and two kits of random z, exported by the project's own code.
    Never shipped; tests of the engine's drum part use it."""
    from vqsynth.data import gm

    torch.manual_seed(seed)
    length = int(seconds * sample_rate)
    G = DrumGenerator(frames=1 + length // HOP, n_classes=len(gm.DRUM_CLASSES), n_attrs=len(ATTRIBUTES),
                      widths=(32, 32, 32, 32, 32))
    with torch.no_grad():
        G.out.bias.fill_(0.0)
    rng = np.random.default_rng(seed)
    kits = [{"name": name, "program": prog, "soundfont": "test",
             "keys": {str(k): {"z": rng.standard_normal(G.cfg["z_size"]).round(4).tolist(),
                               "attrs": rng.random(len(ATTRIBUTES)).round(4).tolist()} for k in sorted(keys)}}
            for name, prog in (("Test Standard", 0), ("Test Electronic", 24))]
    return write_drum_folder(G, kits, out, "test-drums", "0.0", sample_rate, length, 0.3, list(gm.DRUM_CLASSES),
                             {"what": "random weights, for tests"})


# GM exclusive classes (the GM 2 / GS drum-map convention FluidSynth's kits follow): a hit cuts the
# sounding hits of its group. 1: closed, pedal and open hi-hat; 2: whistles; 3: guiros; 4: cuicas;
# 5: triangles.
CHOKE_GROUPS = {42: 1, 44: 1, 46: 1, 71: 2, 72: 2, 73: 3, 74: 3, 78: 4, 79: 4, 80: 5, 81: 5}
