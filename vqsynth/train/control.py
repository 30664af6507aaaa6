"""Training the generator in the control domain: against the corpus's analysis targets.

Every tonal note of the corpus carries its own DSP-head frames (vqsynth/data/targets.py: the
harmonic amplitudes and noise floor read off the audio at its known f0). So G can be taught to
write those frames directly: a step is the generator's forward and backward pass and an L1
distance between log magnitudes, with no synthesis and no STFT. On these 2 cores that is what
lets G see the whole corpus many times instead of a few thousand notes once (the issue's
"supervise in the control domain"); the spectral loss and the critics can refine it afterwards
(`vqsynth train generator --init-from`).

z is the instrument: each GM program owns a Gaussian in z (InstrumentTable, KL towards N(0, I)),
and the presets are those programs' means. For a share of the notes (`z_dropout`) G gets z = 0,
the centre of N(0, I), instead: it must then tell the instrument from the attributes and family
labels alone, so those controls keep steering even though z could say everything (the same idea
as classifier-free guidance's condition dropout). Tokens come from the VQCPC encoder of the model
folder named by --encoder-from, run at its own rate on the notes resampled to it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from vqsynth.model.constants import FAMILIES, TIMBRE_ATTRIBUTES

TIMBRE_NAMES = [n for n, _ in TIMBRE_ATTRIBUTES]
LOG_FLOOR = 1e-4   # magnitudes below this (-80 dB re full scale) count as silence in the loss
LEVEL = 0.5        # notes are played at half of full scale (headroom for chords): targets too


class ControlNotes:
    """All tonal notes of a corpus as arrays, with their targets (scaled to half scale) and tokens."""

    def __init__(self, corpus_dir, splits=("train", "valid", "test")):
        from vqsynth.data.corpus import Corpus

        from vqsynth.cli import UserError

        self.corpus = Corpus(corpus_dir)
        lacking = [s["stem"] for s in self.corpus.manifest["shards"] if s["subset"] == "tonal" and "targets" not in s]
        if not self.corpus.target_config or lacking:
            raise UserError(f"{corpus_dir}: no analysis targets ({', '.join(lacking[:3]) or 'a corpus built before them'}"
                            "): rebuild it into a new --out (vqsynth data build writes them)")
        self.cfg = self.corpus.target_config
        self.sample_rate = self.corpus.sample_rate
        self.index = np.concatenate([self.corpus.split(s, subset="tonal") for s in splits])
        if len(self.index) == 0:
            raise UserError(f"{corpus_dir}: no tonal notes to train on")
        lab = self.corpus.labels[self.index]
        self.pitch = lab["pitch"].astype(np.float32)
        self.velocity = lab["velocity"].astype(np.int64)
        self.program = lab["program"].astype(np.int64)
        self.family = lab["family"].astype(np.int64)
        self.timbre = np.stack([lab[n] for n in TIMBRE_NAMES], 1).astype(np.float32)
        self.note_off_s = self.corpus.note_off_s("tonal")

    def __len__(self):
        return len(self.index)

    def targets(self, rows) -> np.ndarray:
        return LEVEL * np.stack([self.corpus.targets(int(self.index[r])) for r in rows])

    def audio(self, rows) -> np.ndarray:
        return LEVEL * np.stack([self.corpus.audio(int(self.index[r])) for r in rows]).astype(np.float32)


def family_labels(notes: ControlNotes, smoothing=0.2) -> np.ndarray:
    """Family soft labels per note: the note's GM family with label smoothing (no teacher yet)."""
    out = np.full((len(notes), len(FAMILIES)), smoothing / len(FAMILIES), np.float32)
    out[np.arange(len(notes)), notes.family] += 1.0 - smoothing
    return out


def encode_tokens(notes: ControlNotes, encoder_onnx, encoder_rate: int, out: Path, batch=16):
    """Tokens [N, T] and frame levels of every note, through a model folder's encoder.onnx."""
    out = Path(out)
    if out.exists():
        return dict(np.load(out))
    import onnxruntime as ort
    import soxr

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(encoder_onnx), opts, providers=["CPUExecutionProvider"])
    hop = notes.cfg["hop"]
    tokens, levels = [], []
    t0 = time.time()
    for i in range(0, len(notes), batch):
        rows = range(i, min(i + batch, len(notes)))
        audio = notes.audio(rows)
        low = np.stack([soxr.resample(a, notes.sample_rate, encoder_rate) for a in audio]).astype(np.float32)
        tok = sess.run(None, {"audio": low})[0].astype(np.int8)
        T = audio.shape[1] // hop
        tok = np.pad(tok, ((0, 0), (0, max(0, T - tok.shape[1]))), mode="edge")[:, :T]
        frames = audio[:, :T * hop].reshape(len(audio), T, hop)
        tokens.append(tok)
        levels.append((10 * np.log10((frames ** 2).mean(-1) + 1e-10)).astype(np.float16))
        if i % (batch * 50) == 0:
            print(f"encoded {i + len(rows)}/{len(notes)} notes ({time.time() - t0:.0f} s)", flush=True)
    result = {"tokens": np.concatenate(tokens), "level_db": np.concatenate(levels)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **result)
    return result


def control_loss(frames, target, f0, n_harmonics, band_limit_hz, onset_weight=1.0, onset_frames=16):
    """L1 between log magnitudes (natural log, floored at LOG_FLOOR): harmonics (zero above the
    band limit) and noise bands, each averaged over its bins. frames [B,T,1+H+Nb], target
    [B,T,H+Nb], f0 [B] Hz -> (harmonic term, noise term).

    The first `onset_frames` frames weigh `onset_weight` times the rest: the attack is under 5 %
    of a 4-s note's frames, so an unweighted mean lets it blur (2.0's trumpet reached half its
    peak 2 frames after the real one) while the ear hears it first."""
    H = n_harmonics
    k = torch.arange(1, H + 1, dtype=frames.dtype)
    audible = (f0[:, None] * k[None, :] < band_limit_hz).to(frames.dtype)[:, None, :]  # [B,1,H]
    harm = frames[..., :1] * frames[..., 1:1 + H]
    want_h = target[..., :H] * audible
    log = lambda v: torch.log(v + LOG_FLOOR)  # noqa: E731
    T = frames.shape[1]
    w = torch.ones(T, dtype=frames.dtype)
    w[:onset_frames] = onset_weight
    w = (w / w.mean())[None, :, None]  # the overall scale stays that of the unweighted mean
    lh = ((log(harm) - log(want_h)).abs() * w).mean()
    ln = ((log(frames[..., 1 + H:]) - log(target[..., H:])).abs() * w).mean()
    return lh, ln


def train_control(notes: ControlNotes, encoded: dict, soft: np.ndarray, run_dir, steps=100000, batch=16,
                  max_minutes=None, lr=1e-3, kl_weight=0.01, channels=128, n_layers=6, log_every=20, seed=0,
                  init_from=None, z_dropout=0.3, onset_weight=1.0, init_logvar=None):
    """Train G (with an instrument table) on the analysis targets; resumable from run_dir.
    `init_logvar`: with `init_from`, every program's z log-variance set to it. 2.0's KL term
    (weight 0.01, summed over 32 dims) had spread each program's z to sigma 0.68 against 0.28
    between programs' means, so G learned to ignore z (a note with z = 0 sounded the same)."""
    from vqsynth.train.gan import InstrumentTable
    from vqsynth.train.generator import Generator, GeneratorConfig
    from vqsynth.train.run import Run

    cfg = GeneratorConfig(n_attrs=len(TIMBRE_NAMES) + len(FAMILIES), channels=channels, n_layers=n_layers,
                          n_harmonics=notes.cfg["n_harmonics"], n_noise=notes.cfg["n_noise"])
    torch.manual_seed(seed)
    G = Generator(cfg)
    table = InstrumentTable(128, cfg.z_size)
    opt = torch.optim.Adam(list(G.parameters()) + list(table.parameters()), lr=lr)
    fresh = not (Path(run_dir) / "checkpoint.pt").exists()
    run = Run(run_dir, {"G": G, "instruments": table, "opt": opt}, every=200)
    for group in opt.param_groups:  # a resumed run takes the learning rate asked for now
        group["lr"] = lr
    if fresh and init_from:
        state = torch.load(Path(init_from) / "checkpoint.pt", map_location="cpu", weights_only=False)
        G.load_state_dict(state["G"])
        table.load_state_dict(state["instruments"])
        if init_logvar is not None:
            with torch.no_grad():
                table.logvar.fill_(float(init_logvar))
        run.log_line({"event": "initialised", "from": str(init_from), "init_logvar": init_logvar})
    (Path(run_dir) / "config.json").write_text(json.dumps({"generator": cfg.to_dict(), "targets": notes.cfg,
                                                           "sample_rate": notes.sample_rate}, indent=1) + "\n")
    run.log_line({"event": "started", "step": run.step, "lr": lr, "batch": batch, "onset_weight": onset_weight,
                  "z_dropout": z_dropout, "kl_weight": kl_weight})
    tokens = encoded["tokens"].astype(np.int64)
    T = tokens.shape[1]
    rng = np.random.default_rng(seed + run.step)
    band_limit = float(notes.cfg["band_limit_hz"])
    acc, t_start = {}, time.time()
    while run.step < steps:
        if max_minutes is not None and time.time() - t_start > 60 * max_minutes:
            run.log_line({"event": "time budget reached", "step": run.step})
            break
        rows = rng.integers(0, len(notes), batch)
        target = torch.from_numpy(notes.targets(rows)[:, :T])
        pitch = torch.from_numpy(notes.pitch[rows])
        attrs = torch.from_numpy(np.concatenate([notes.timbre[rows], soft[rows]], 1))
        z, kl = table(torch.from_numpy(notes.program[rows]))
        keep = torch.from_numpy((rng.random(batch) >= z_dropout).astype(np.float32))[:, None]
        z = z * keep
        frames, _ = G(z, pitch, attrs, torch.from_numpy(tokens[rows]), G.initial_state(batch))
        f0 = 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
        lh, ln = control_loss(frames, target, f0, cfg.n_harmonics, band_limit, onset_weight=onset_weight)
        loss = lh + ln + kl_weight * kl
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(G.parameters(), 5.0)
        opt.step()
        run.step += 1
        for k, v in (("harmonics", lh), ("noise", ln), ("kl", kl)):
            acc.setdefault(k, []).append(float(v.detach()))
        if run.step % log_every == 0:
            run.log(**{k: float(np.mean(v)) for k, v in acc.items()})
            acc = {}
        run.maybe_save()
    run.save()
    return G, table


def fit_control_prior(notes: ControlNotes, encoded: dict) -> dict:
    """The token prior from the tokens of every note, all velocities (each bucket its own counts)."""
    from vqsynth.train.prior_fit import fit_prior

    hop = notes.cfg["hop"]
    note_off = np.full(len(notes), int(round(notes.note_off_s * notes.sample_rate / hop)))
    return fit_prior(encoded["tokens"].astype(np.int64), note_off, notes.velocity,
                     encoded["level_db"].astype(np.float32))


def program_presets(notes: ControlNotes, mu: np.ndarray, soft: np.ndarray) -> list:
    """One preset per GM program the corpus has, numbered by program (preset p is GM program p
    wherever the corpus has every program): its z mean, median attributes and mean soft labels.
    One per GM family is `featured`: the program whose z lies nearest its family's mean z."""
    from vqsynth.data.gm import PROGRAMS

    names = TIMBRE_NAMES + list(FAMILIES)
    programs = sorted(set(notes.program.tolist()))
    featured = set()
    for fam in range(len(FAMILIES)):
        members = [p for p in programs if p // 8 == fam]
        if members:
            centre = mu[members].mean(0)
            featured.add(min(members, key=lambda p: float(np.linalg.norm(mu[p] - centre))))
    presets = []
    for prog in programs:
        rows = np.flatnonzero(notes.program == prog)
        attrs = np.concatenate([np.median(notes.timbre[rows], 0), soft[rows].mean(0)])
        preset = {"name": PROGRAMS[prog].lower().replace(" ", "-").replace("(", "").replace(")", ""),
                  "program": int(prog), "family": FAMILIES[prog // 8], "featured": prog in featured,
                  "z": mu[prog].round(4).tolist(),
                  "attrs": {n: round(float(v), 4) for n, v in zip(names, attrs)}}
        slopes = velocity_slopes(notes.pitch[rows], notes.velocity[rows], notes.timbre[rows])
        if slopes is not None:
            preset["velocity"] = {"reference": float(np.median(notes.velocity[rows])),
                                  "per_127": {n: round(float(b), 4) for n, b in zip(TIMBRE_NAMES, slopes)}}
        presets.append(preset)
    return presets


def velocity_slopes(pitch, velocity, timbre):
    """How each timbre attribute moves per 127 of velocity at a fixed pitch (least squares on the
    deviations from each pitch's mean, so the pitch's own trend does not leak in), or None where
    no pitch has two velocities. The median attributes of a preset are those of its median
    velocity; the engine adds slope * (velocity - median) / 127 to a note's (Model.velocity_offset)."""
    dv, da = [], []
    for q in np.unique(pitch):
        k = pitch == q
        if len(np.unique(velocity[k])) < 2:
            continue
        dv.append(velocity[k] - velocity[k].mean())
        da.append(timbre[k] - timbre[k].mean(0))
    if not dv:
        return None
    dv, da = np.concatenate(dv).astype(np.float64), np.concatenate(da).astype(np.float64)
    return 127.0 * (dv @ da) / (dv @ dv)


def export_control(notes: ControlNotes, run_dir, encoded: dict, soft: np.ndarray, encoder_folder, out, name,
                   version, training_data: dict):
    """A model folder from a control-domain run: generator, the encoder it was trained with (at
    its own rate), the prior of all velocities and one preset per program."""
    import shutil

    from vqsynth.model.folder import load_model
    from vqsynth.train.export import export_generator, write_model_json
    from vqsynth.train.generator import Generator, GeneratorConfig

    state = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    cfg = GeneratorConfig(**json.loads((Path(run_dir) / "config.json").read_text())["generator"])
    gen = Generator(cfg)
    gen.load_state_dict(state["G"])
    mu = state["instruments"]["mu"].numpy()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    export_generator(gen, out / "generator.onnx")
    enc_meta = json.loads((Path(encoder_folder) / "model.json").read_text())
    shutil.copyfile(Path(encoder_folder) / enc_meta["encoder"].get("file", "encoder.onnx"), out / "encoder.onnx")
    (out / "prior.json").write_text(json.dumps(fit_control_prior(notes, encoded)) + "\n")
    info = dict(training_data, generator_steps=int(state["step"]), generator_wall_time_s=round(state["elapsed"]))
    meta = write_model_json(out, name, cfg, notes.sample_rate, notes.cfg["hop"], version=version,
                            presets=program_presets(notes, mu, soft), training_data=json.dumps(info), metrics={})
    meta["encoder"] = {"file": "encoder.onnx", "sample_rate": int(enc_meta["sample_rate"]),
                       "from": f"{enc_meta['name']} {enc_meta.get('version', '')}".strip()}
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    load_model(out)
    return out
