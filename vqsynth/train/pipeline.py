"""The training pipeline, stage by stage, each resumable and each skipped once its output exists.

    corpus --> [encoder]  VQCPC encoder (runs/vqcpc)
           --> [encode]   tokens of every tonal note (runs/vqcpc/tokens.npz)
           --> [prior]    token prior fitted on those tokens (runs/prior.json)
           --> [teacher]  mel classifier: family soft labels (runs/teacher), also the eval judge
           --> [attributes] mel regressor of the seven timbral attributes (runs/attributes)
           --> [generator] WGAN-GP + spectral loss + attribute consistency (runs/gan)
           --> [export]   models/NAME (generator.onnx, encoder.onnx, prior.json, model.json),
                          presets chosen by the judge from the programs' z (choose_presets)

Everything reads the corpus through `Notes`, a thin view on vqsynth.data's Corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vqsynth.model.constants import FAMILIES, TIMBRE_ATTRIBUTES

TIMBRE_NAMES = [n for n, _ in TIMBRE_ATTRIBUTES]


class Notes:
    """The tonal notes of a corpus split as arrays a trainer samples from (memory-mapped audio)."""

    def __init__(self, corpus_dir, split="train", subset="tonal"):
        from vqsynth.data.corpus import Corpus

        self.corpus = Corpus(corpus_dir)
        self.split_name = split
        self.sample_rate = self.corpus.sample_rate
        self.index = np.asarray(self.corpus.split(split, subset=subset))
        if len(self.index) == 0:
            raise ValueError(f"{corpus_dir}: no {subset} notes in the '{split}' split")
        labels = self.corpus.labels
        self.pitch = np.asarray(labels["pitch"])[self.index]
        self.velocity = np.asarray(labels["velocity"])[self.index]
        self.family = np.asarray(labels["family"])[self.index]
        self.program = np.asarray(labels["program"])[self.index]
        self.timbre = np.stack([np.asarray(labels[n], dtype=np.float32)[self.index] for n in TIMBRE_NAMES], 1)
        self.note_off_s = float(self.corpus.note_off_s(subset))

    def __len__(self):
        return len(self.index)

    def audio(self, rows):
        """Peak-normalised notes at half scale: headroom for the model and for chords."""
        return 0.5 * np.stack([self.corpus.audio(int(self.index[r])) for r in rows]).astype(np.float32)


def _run(runs, name):
    return Path(runs) / name


def stage_encoder(notes: Notes, runs, hop, steps):
    from vqsynth.train.vqcpc import train_vqcpc

    length = notes.sample_rate  # 1-s excerpts, anywhere in the note (attack, hold, release)

    def sample(batch, rng):
        rows = rng.integers(0, len(notes), batch)
        audio = notes.audio(rows)
        starts = rng.integers(0, audio.shape[1] - length, batch)
        return np.stack([a[s:s + length] for a, s in zip(audio, starts)])

    return train_vqcpc(sample, _run(runs, "vqcpc"), notes.sample_rate, hop, steps=steps)


def load_encoder(runs, sample_rate, hop):
    from vqsynth.train.vqcpc import VQCPC

    model = VQCPC(sample_rate, hop)
    state = torch.load(_run(runs, "vqcpc") / "checkpoint.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    return model.eval()


def stage_encode(notes: Notes, runs, hop, batch=16):
    """Tokens and per-frame levels of every note of the split (for the prior and the GAN)."""
    out = _run(runs, "vqcpc") / f"tokens-{notes.split_name}.npz"
    if out.exists():
        return dict(np.load(out))
    enc = load_encoder(runs, notes.sample_rate, hop).encoder
    tokens, levels = [], []
    with torch.no_grad():
        for i in range(0, len(notes), batch):
            audio = notes.audio(range(i, min(i + batch, len(notes))))
            tokens.append(enc(torch.from_numpy(audio)).numpy().astype(np.int8))
            frames = audio[:, : audio.shape[1] // hop * hop].reshape(audio.shape[0], -1, hop)
            levels.append((10 * np.log10((frames ** 2).mean(-1) + 1e-10)).astype(np.float16))
    result = {"tokens": np.concatenate(tokens), "level_db": np.concatenate(levels)}
    np.savez(out, **result)
    return result


def stage_prior(notes: Notes, runs, hop, encoded):
    from vqsynth.train.prior_fit import fit_prior

    out = Path(runs) / "prior.json"
    if out.exists():
        return json.loads(out.read_text())
    note_off = np.full(len(notes), int(round(notes.note_off_s * notes.sample_rate / hop)))
    table = fit_prior(encoded["tokens"].astype(np.int64), note_off, notes.velocity,
                      encoded["level_db"].astype(np.float32))
    out.write_text(json.dumps(table))
    return table


def stage_teacher(notes: Notes, runs, steps, lo=21):
    from vqsynth.train.classifier import train_classifier

    length = notes.sample_rate

    def sample(batch, rng):
        rows = rng.integers(0, len(notes), batch)
        audio = notes.audio(rows)[:, :length * 2]
        starts = rng.integers(0, length, batch)
        clips = np.stack([a[s:s + length] for a, s in zip(audio, starts)])
        return clips, notes.pitch[rows] - lo, notes.family[rows]

    return train_classifier(sample, _run(runs, "teacher"), notes.sample_rate, steps=steps)


def load_teacher(runs, sample_rate):
    from vqsynth.train.classifier import MelClassifier

    model = MelClassifier(sample_rate)
    state = torch.load(_run(runs, "teacher") / "checkpoint.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    return model.eval()


def stage_attributes(notes: Notes, runs, steps):
    """The frozen attribute regressor G's attribute-consistency term uses; scored on the valid split."""
    from vqsynth.train.classifier import train_regressor

    length = notes.sample_rate

    def sample(batch, rng):
        rows = rng.integers(0, len(notes), batch)
        return notes.audio(rows)[:, :length], notes.timbre[rows]

    model = train_regressor(sample, _run(runs, "attributes"), notes.sample_rate, steps=steps)
    valid = Notes(notes.corpus.folder, "valid")
    rows = np.random.default_rng(0).choice(len(valid), size=min(256, len(valid)), replace=False)
    with torch.no_grad():
        pred = np.concatenate([model(torch.from_numpy(valid.audio(rows[i:i + 32])[:, :length])).numpy()
                               for i in range(0, len(rows), 32)])
    truth = valid.timbre[rows]
    r2 = 1 - ((pred - truth) ** 2).mean(0) / truth.var(0)
    report = {n: round(float(v), 3) for n, v in zip(TIMBRE_NAMES, r2)}
    (_run(runs, "attributes") / "valid_r2.json").write_text(json.dumps(report, indent=1) + "\n")
    print("attribute regressor, R^2 on valid notes:", report, flush=True)
    return model


def load_regressor(runs, sample_rate):
    from vqsynth.train.classifier import AttributeRegressor

    model = AttributeRegressor(sample_rate)
    state = torch.load(_run(runs, "attributes") / "checkpoint.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    return model.eval()


def soft_labels(notes: Notes, runs, temperature=2.0, batch=32):
    """DarkGAN's distillation targets: the teacher's family probabilities at temperature T."""
    out = _run(runs, "teacher") / f"soft-{notes.split_name}-T{temperature:g}.npy"
    if out.exists():
        return np.load(out)
    teacher = load_teacher(runs, notes.sample_rate)
    probs = []
    with torch.no_grad():
        for i in range(0, len(notes), batch):
            audio = notes.audio(range(i, min(i + batch, len(notes))))[:, :notes.sample_rate]
            _, logits = teacher(torch.from_numpy(audio))
            probs.append(torch.softmax(logits / temperature, -1).numpy())
    probs = np.concatenate(probs).astype(np.float32)
    np.save(out, probs)
    return probs


def stage_generator(notes: Notes, runs, hop, encoded, soft, steps, batch=8, seconds=4.0, max_minutes=None,
                    warmup=400, run_name="gan", instruments=False, attr_weight=0.0, init_from=None,
                    **gan_options):
    from vqsynth.train.gan import train_gan
    from vqsynth.train.generator import GeneratorConfig

    cfg = GeneratorConfig(n_attrs=len(TIMBRE_NAMES) + len(FAMILIES))
    T = int(seconds * notes.sample_rate / hop)
    tokens = encoded["tokens"].astype(np.int64)

    def sample(b, rng):
        rows = rng.integers(0, len(notes), b)
        audio = notes.audio(rows)[:, :T * hop]
        attrs = np.concatenate([notes.timbre[rows], soft[rows]], axis=1)
        return {"audio": torch.from_numpy(audio), "pitch": torch.from_numpy(notes.pitch[rows].astype(np.float32)),
                "attrs": torch.from_numpy(attrs.astype(np.float32)),
                "tokens": torch.from_numpy(tokens[rows, :T]), "program": torch.from_numpy(notes.program[rows].astype(np.int64))}

    if instruments:
        gan_options["n_programs"] = 128
    if attr_weight > 0:
        if not (_run(runs, "attributes") / "checkpoint.pt").exists():
            from vqsynth.cli import UserError

            raise UserError(f"{_run(runs, 'attributes')}: no attribute regressor: run `vqsynth train attributes` "
                            "first, or pass --attr-weight 0")
        gan_options.update(attr_weight=attr_weight, attr_judge=load_regressor(runs, notes.sample_rate))
    return train_gan(sample, _run(runs, run_name), cfg, notes.sample_rate, hop, len(TIMBRE_NAMES),
                     steps=steps, batch=batch, warmup=warmup, max_minutes=max_minutes,
                     init_from=init_from and _run(runs, init_from), **gan_options)


def load_generator(runs, run_name="gan"):
    from vqsynth.train.generator import Generator, GeneratorConfig

    cfg = GeneratorConfig(n_attrs=len(TIMBRE_NAMES) + len(FAMILIES))
    gen = Generator(cfg)
    state = torch.load(_run(runs, run_name) / "checkpoint.pt", map_location="cpu", weights_only=False)
    gen.load_state_dict(state["G"])
    return gen.eval(), state["step"], state.get("elapsed", 0.0)


def load_instruments(runs, run_name="gan"):
    """The programs' z means [128, Z] of a run trained with an instrument table, else None."""
    state = torch.load(_run(runs, run_name) / "checkpoint.pt", map_location="cpu", weights_only=False)
    return state["instruments"]["mu"].numpy() if "instruments" in state else None


def choose_presets(notes: Notes, runs, gen, mu, soft, encoded, hop, pitches=(48, 60, 72)):
    """A preset for every training program (its z, median attributes and mean soft labels), so
    a MIDI program change finds the exact program, or its family's first preset for programs the
    model never saw. The first 16, one per GM family in family order, are the family's medoid in
    z: the program whose z lies nearest the mean z of the family's programs (the most typical
    member as the model learned them; the smallest reconstruction error picked outliers such as
    Timpani for strings). Each preset records how faithfully G makes its program (multi-scale
    spectral distance to the program's real notes nearest three pitches) and the judge's
    probability of its family."""
    from vqsynth.data.gm import PROGRAMS
    from vqsynth.train.gan import multiscale_spectral_loss
    from vqsynth.train.synth import synthesize

    judge = load_teacher(runs, notes.sample_rate)
    sr = notes.sample_rate
    T = sr // hop
    names = TIMBRE_NAMES + list(FAMILIES)

    def preset(prog):
        torch.manual_seed(0)  # the DSP head's noise: the same figures on every run
        rows = np.flatnonzero(notes.program == prog)
        attrs = np.concatenate([np.median(notes.timbre[rows], 0), soft[rows].mean(0)]).astype(np.float32)
        near = np.array([rows[np.argmin(np.abs(notes.pitch[rows] - p))] for p in pitches])
        B, fam = len(near), int(notes.family[rows[0]])
        pitch = torch.from_numpy(notes.pitch[near].astype(np.float32))
        with torch.no_grad():
            frames, _ = gen(torch.from_numpy(np.tile(mu[prog], (B, 1))), pitch, torch.from_numpy(np.tile(attrs, (B, 1))),
                            torch.from_numpy(encoded["tokens"][near, :T].astype(np.int64)), gen.initial_state(B))
            f0 = (440.0 * 2.0 ** ((pitch - 69) / 12))[:, None].expand(-1, T)
            audio = synthesize(frames, f0, gen.cfg.n_harmonics, hop, sr, sr / 2)
            distance = float(multiscale_spectral_loss(audio, torch.from_numpy(notes.audio(near)[:, :T * hop])))
            p_family = float(torch.softmax(judge(audio)[1], -1)[:, fam].mean())
        return {"name": PROGRAMS[prog].lower().replace(" ", "-").replace("(", "").replace(")", ""),
                "program": int(prog), "family": FAMILIES[fam], "spectral_distance": round(distance, 3),
                "judge_family_probability": round(p_family, 3), "z": mu[prog].round(4).tolist(),
                "attrs": {n: round(float(v), 4) for n, v in zip(names, attrs)}}

    programs = sorted(set(notes.program.tolist()))
    featured = []
    for fam in range(len(FAMILIES)):
        members = [p for p in programs if p // 8 == fam]
        if members:
            centre = mu[members].mean(0)
            featured.append(min(members, key=lambda p: float(np.linalg.norm(mu[p] - centre))))
    presets = [preset(p) for p in featured + [p for p in programs if p not in featured]]
    for x in presets[:len(featured)]:
        print(f"preset {x['family']}: {x['name']} (spectral distance {x['spectral_distance']:.2f}, "
              f"judge p {x['judge_family_probability']:.2f})", flush=True)
    print(f"{len(presets)} presets: {len(featured)} family medoids, then every other training program", flush=True)
    return presets


def stage_export(notes: Notes, args):
    from vqsynth.model.folder import models_dir
    from vqsynth.train.export import export_model_folder

    gen, steps, elapsed = load_generator(args.runs, getattr(args, "gan_run", "gan"))
    encoder = load_encoder(args.runs, notes.sample_rate, args.hop).encoder
    prior = json.loads((Path(args.runs) / "prior.json").read_text())
    mu = load_instruments(args.runs, getattr(args, "gan_run", "gan"))
    if mu is not None:
        presets = choose_presets(notes, args.runs, gen, mu, soft_labels(notes, args.runs, args.temperature),
                                 stage_encode(notes, args.runs, args.hop), args.hop)
    else:
        rng = np.random.default_rng(2026)
        presets = [{"name": f"seed-{i}", "z": rng.standard_normal(gen.cfg.z_size).round(4).tolist()}
                   for i in range(8)]
    out = Path(args.out) if args.out else models_dir() / args.name
    info = {"corpus": str(args.corpus), "notes_train": len(notes), "generator_steps": steps,
            "generator_wall_time_s": round(elapsed), "distillation_temperature": args.temperature}
    export_model_folder(out, args.name, gen, encoder, prior, notes.sample_rate, args.hop, presets,
                        training_data=json.dumps(info), version=getattr(args, "model_version", "1.0"))
    print(f"exported {out}")
    return out
