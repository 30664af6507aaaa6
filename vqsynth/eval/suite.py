"""`vqsynth eval MODEL`: the thesis's measurements (ch. 4.3, 6.2, 7.3, 8.4) on the project's corpus,
each figure beside what real data scores.

Generated notes are rendered through the live engine code (offline) at the model's own rate, with
the conditions (pitch, attributes, family soft labels) of held-out test notes. The judge is the
project's mel classifier (vqsynth/train/classifier.py) trained on the corpus; real-data reference
values come from two halves of the test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vqsynth.eval import metrics as M


def render_note(model, pitch, attrs=None, hold_s=1.0, velocity=100, z=None, bend=0.0, tail_s=0.6, seed=0,
                sample_rate=None, preset=None):
    """One note through the engine at the model's sample rate (or `sample_rate`): float32 audio.
    `preset`: played as a performer selects it (its z, the attributes it recalls, what velocity
    does to them), before `attrs` and `z` if they are given too."""
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.offline import render

    e = Engine(model, sample_rate=sample_rate or model.sample_rate, polyphony=1, attack_cache=False, seed=seed, volume=1.0)
    if preset is not None:
        e.set_preset(preset)
        e.jump_attrs()
    if attrs is not None:
        for name, value in zip(model.attr_names, np.asarray(attrs, dtype=np.float64)):
            e.set_attr(name, float(np.clip(value, *model.attr_ranges[name])))
        e.jump_attrs()
    if z is not None:
        e.z = np.asarray(z, dtype=np.float32)
    ev = [(0.0, lambda t: e.pitch_bend(0, bend, t=t)), (0.0, lambda t: e.note_on(pitch, velocity, t=t)),
          (hold_s, lambda t: e.note_off(pitch, t=t))]
    return render(e, ev, hold_s, tail=tail_s)


class Judge:
    """The mel classifier: probabilities of pitch and family, and 128-d embeddings."""

    def __init__(self, runs, sample_rate):
        from vqsynth.train.pipeline import load_teacher

        self.model = load_teacher(runs, sample_rate)
        self.sr = sample_rate

    def __call__(self, clips):
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.asarray(clips, dtype=np.float32))
            emb = self.model.embed(x)
            return (torch.softmax(self.model.pitch(emb), -1).numpy(),
                    torch.softmax(self.model.family(emb), -1).numpy(), emb.numpy())


def distribution_scores(judge, clips):
    p, f, e = judge(clips)
    return {"PIS": M.inception_score(p), "IIS": M.inception_score(f)}, e


def coherence(model, name, trials, rng, pitch_range, draw_z=None):
    """DrumGAN Table 6.3 for one timbral attribute: E1/E2/E3 over `trials` random (z, pitch, rest).
    z comes from `draw_z(rng)` (the model's own instruments) or, by default, from N(0, I), the
    prior of a model trained with z ~ N(0, I)."""
    from vqsynth.data.timbre import attributes as measure

    i = model.attr_names.index(name)
    measured = {0.2: [], 0.5: [], 0.8: []}
    for _ in range(trials):
        base = model.attr_defaults.copy()
        base[:7] = rng.uniform(0.2, 0.8, 7)
        z = draw_z(rng) if draw_z else rng.standard_normal(model.z_size).astype(np.float32)
        pitch = int(rng.integers(max(pitch_range[0], 36), min(pitch_range[1], 84) + 1))
        for level in measured:
            a = base.copy()
            a[i] = level
            audio = render_note(model, pitch, a, hold_s=1.0, z=z, tail_s=0.0)
            measured[level].append(measure(audio[:int(1.0 * model.sample_rate)], model.sample_rate)[name])
    return M.coherence_accuracies(measured[0.2], measured[0.5], measured[0.8])


def family_coherence(model, judge, trials, rng, pitch_range):
    """DarkGAN's test for the soft labels: per family, the label set to 0.2 / 0.5 / 0.8 with the
    rest fixed; the judge's probability of that family on the output must rise with it.
    E1/E2/E3 as for the attributes, plus the Pearson r between label and probability."""
    first = len(model.attr_names) - 16
    out = {}
    for f, name in enumerate(model.attr_names[first:]):
        measured = {0.2: [], 0.5: [], 0.8: []}
        for _ in range(trials):
            base = model.attr_defaults.copy()
            base[:first] = rng.uniform(0.2, 0.8, first)
            z = rng.standard_normal(model.z_size).astype(np.float32)
            pitch = int(rng.integers(max(pitch_range[0], 36), min(pitch_range[1], 84) + 1))
            clips = []
            for level in measured:
                a = base.copy()
                a[first + f] = level
                clips.append(render_note(model, pitch, a, hold_s=1.0, z=z, tail_s=0.0)[:model.sample_rate])
            _, fam, _ = judge(np.stack(clips))
            for level, p in zip(measured, fam[:, f]):
                measured[level].append(float(p))
        c = M.coherence_accuracies(measured[0.2], measured[0.5], measured[0.8])
        x = np.repeat(list(measured), trials)
        y = np.concatenate([measured[k] for k in measured])
        c["r"] = float(np.corrcoef(x, y)[0, 1]) if np.std(y) > 0 else 0.0
        out[name] = c
    return out


def z_effect(model, rng, pairs=8):
    """How much z (the instrument) changes the sound: the log-spectral distance between two notes
    that differ only in z, over the distance between two that differ only in the noise seed of
    the DSP head. About 1 or less: z is ignored; well above 1: z picks the instrument. Measured
    for z drawn from N(0, I) and, where the model has two or more, for pairs of its presets."""
    def spectrum(z, pitch, seed):
        x = render_note(model, pitch, hold_s=1.0, z=z, tail_s=0.0, seed=seed)[:model.sample_rate]
        return np.log(np.abs(np.fft.rfft(x * np.hanning(x.size))) + 1e-6)

    by_z, by_preset, by_seed = [], [], []
    n = len(model.presets)
    for _ in range(pairs):
        pitch = int(rng.integers(48, 73))
        za, zb = rng.standard_normal((2, model.z_size)).astype(np.float32)
        a = spectrum(za, pitch, 1)
        by_z.append(np.sqrt(np.mean((a - spectrum(zb, pitch, 1)) ** 2)))
        by_seed.append(np.sqrt(np.mean((a - spectrum(za, pitch, 2)) ** 2)))
        if n >= 2:
            i, j = rng.choice(n, 2, replace=False)
            pa, pb = spectrum(model.preset_z(i), pitch, 1), spectrum(model.preset_z(j), pitch, 1)
            by_preset.append(np.sqrt(np.mean((pa - pb) ** 2)))
    out = {"z_distance": float(np.mean(by_z)), "seed_distance": float(np.mean(by_seed)),
           "ratio": float(np.mean(by_z) / np.mean(by_seed))}
    if by_preset:
        out.update(preset_distance=float(np.mean(by_preset)), preset_ratio=float(np.mean(by_preset) / np.mean(by_seed)))
    return out


def preset_identity(model, judge, corpus=None, pitches=(48, 60, 72)):
    """Do the presets sound like the instruments they are named after? Each preset made from a GM
    program (its z and recalled attributes) plays three pitches through the engine; the judge's
    family for each note, against the preset's family. `family_accuracy` over all notes, and
    `real_accuracy`: the judge on the corpus's own notes of those programs at those pitches (the
    most the judge can give)."""
    rows, real_hits, real_n = [], 0, 0
    for i, p in enumerate(model.preset_table):
        if "family" not in p:
            continue
        attrs = model.attr_defaults.copy()
        for name, value in model.preset_attrs(i).items():
            attrs[model.attr_names.index(name)] = value
        clips = np.stack([render_note(model, q, attrs, hold_s=1.0, z=model.preset_z(i), tail_s=0.0)[:model.sample_rate]
                          for q in pitches])
        _, fam, _ = judge(clips)
        want = model.family_names.index(p["family"])
        if corpus is not None and "program" in p:
            lab = corpus.labels
            idx = [int(np.flatnonzero((lab["program"] == p["program"]) & (lab["pitch"] == q))[0]) for q in pitches
                   if ((lab["program"] == p["program"]) & (lab["pitch"] == q)).any()]
            if idx:
                _, real_fam, _ = judge(np.stack([corpus.audio(k)[:model.sample_rate] * 0.5 for k in idx]))
                real_hits += int((real_fam.argmax(1) == want).sum())
                real_n += len(idx)
        rows.append({"preset": p["name"], "family": p["family"], "hits": int((fam.argmax(1) == want).sum()),
                     "notes": len(pitches), "p_family": float(fam[:, want].mean()),
                     "heard_as": [model.family_names[k] for k in fam.argmax(1)]})
    if not rows:
        return None
    return {"family_accuracy": sum(r["hits"] for r in rows) / sum(r["notes"] for r in rows),
            "real_accuracy": real_hits / real_n if real_n else None,
            "chance": 1 / len(model.family_names), "per_preset": rows}


def pitch_accuracy(model, pitches, bend=0.0):
    rows = []
    for p in pitches:
        audio = render_note(model, p, hold_s=1.0, bend=bend, tail_s=0.0)
        target = 440.0 * 2 ** ((p + bend - 69) / 12)
        f0, voiced = M.track_pitch(audio[int(0.1 * model.sample_rate):], model.sample_rate, target)
        acc, med = M.pitch_accuracy(f0, voiced, target)
        rows.append({"pitch": int(p), "accuracy": acc, "median_cents": med, "voiced": float(np.mean(voiced))})
    return rows


def variable_length(model, holds):
    out = []
    sr = model.sample_rate
    for h in holds:
        audio = render_note(model, 60, hold_s=h, tail_s=3.0)
        end = audio[-int(0.2 * sr):]
        out.append({"hold_s": h, "clicks": M.click_count(audio[: int((h + 0.5) * sr)], sr, onsets_s=[0.0]),
                    "level_spread_db": M.level_stability_db(audio, sr, min(0.3, h), h) if h >= 0.5 else None,
                    "ends_silent": bool(np.abs(end).max() < 1e-3),
                    "tail_peak_db": float(20 * np.log10(np.abs(end).max() + 1e-9))})
    return out


def run_suite(model_dir, corpus_dir, runs, out_dir, quick=True, seed=0, trials=None, notes=None):
    """quick: 60 notes and 5 coherence trials per attribute; full: 400 and 1000 (hours on 2
    cores); `trials` / `notes` set either count directly."""
    from vqsynth.data.corpus import Corpus
    from vqsynth.model.folder import load_model

    rng = np.random.default_rng(seed)
    model = load_model(model_dir)
    corpus = Corpus(corpus_dir)
    sr = corpus.sample_rate
    judge = Judge(runs, sr)
    n = notes or (60 if quick else 400)
    test = corpus.split("test", "tonal")
    pick = rng.choice(test, size=min(2 * n, len(test)), replace=False)
    real = np.stack([corpus.audio(int(i))[:sr] for i in pick]) * 0.5
    half = len(real) // 2
    real_a, emb_a = distribution_scores(judge, real[:half])
    real_b, emb_b = distribution_scores(judge, real[half:])
    trials = trials or (5 if quick else 1000)
    result = {"model": model.name, "quick": quick, "notes": n, "trials": trials, "real": {**real_a, "KID": M.kid(emb_a, emb_b),
                                                            "FD": M.frechet_distance(emb_a, emb_b)}}
    gen = []
    labels = corpus.labels[pick[:half]]
    for lab in labels:
        attrs = model.attr_defaults.copy()
        attrs[:7] = [lab[a] for a in model.attr_names[:7]]
        if lab["family"] >= 0:
            attrs[7:] = 0.02
            attrs[7 + int(lab["family"])] = 0.7
        gen.append(render_note(model, int(lab["pitch"]), attrs, hold_s=1.0, tail_s=0.0,
                               z=rng.standard_normal(model.z_size), seed=int(rng.integers(1 << 30)))[:sr])
    gen = np.stack(gen)
    g_scores, emb_g = distribution_scores(judge, gen)
    result["generated"] = {**g_scores, "KID": M.kid(emb_a, emb_g), "FD": M.frechet_distance(emb_a, emb_g)}
    result["z_effect"] = z_effect(model, rng, 8 if quick else 50)
    result["presets"] = preset_identity(model, judge, corpus)
    lo, hi = model.pitch_range
    pitches = list(range(max(lo, 36), min(hi, 96) + 1, 6 if quick else 1))
    rows = pitch_accuracy(model, pitches)
    bent = pitch_accuracy(model, pitches[::2], bend=1.0)
    result["pitch"] = {"accuracy": float(np.mean([r["accuracy"] for r in rows])),
                       "median_cents": float(np.nanmedian([r["median_cents"] for r in rows])),
                       "accuracy_bend_+1": float(np.mean([r["accuracy"] for r in bent])), "per_pitch": rows}
    result["coherence"] = {a: coherence(model, a, trials, rng, (lo, hi)) for a in model.attr_names[:7]}
    if len(model.attr_names) > 7:  # 16 families x 3 levels per trial: a tenth of the attribute trials
        result["family_coherence"] = family_coherence(model, judge, max(trials // 10, 2), rng, (lo, hi))
    result["variable_length"] = variable_length(model, [0.05, 0.5, 2.0, 10.0] + ([] if quick else [60.0]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(result, indent=1, default=float))
    (out / "eval.md").write_text(markdown(result))
    _plots(result, gen, sr, out)
    return result


def markdown(r):
    g, real = r["generated"], r["real"]
    size = f"{r['notes']} notes, {r['trials']} coherence trials" if "trials" in r else ("quick" if r["quick"] else "full")
    lines = [f"## Evaluation of {r['model']} ({size})", "",
             "| metric | generated | real data (two halves of the test split) |", "|---|---|---|"]
    for k in ("PIS", "IIS", "KID", "FD"):
        lines.append(f"| {k} | {g[k]:.3f} | {real[k]:.3f} |")
    p = r["pitch"]
    if "z_effect" in r:
        z = r["z_effect"]
        lines += ["", f"z effect: two notes differing only in z are {z['z_distance']:.3f} apart (log-spectral RMS), "
                  f"two differing only in the DSP noise seed {z['seed_distance']:.3f}: ratio {z['ratio']:.2f} "
                  "(about 1 or less: z is ignored)."
                  + (f" Between two presets: {z['preset_distance']:.3f}, ratio {z['preset_ratio']:.2f}." if "preset_ratio" in z else "")]
    if r.get("presets"):
        pr = r["presets"]
        lines += ["", f"Presets (GM programs' z and attributes, 3 pitches each): the judge hears the preset's "
                  f"family in {100 * pr['family_accuracy']:.0f} % of notes (chance {100 * pr['chance']:.0f} %"
                  + (f"; the corpus's own notes of those programs: {100 * pr['real_accuracy']:.0f} %" if pr.get("real_accuracy") is not None else "")
                  + ").", "",
                  "| preset | family | judge hits | p(family) | heard as |", "|---|---|---|---|---|"]
        for x in pr["per_preset"][:16]:
            lines.append(f"| {x['preset']} | {x['family']} | {x['hits']}/{x['notes']} | {x['p_family']:.2f} | "
                         f"{', '.join(x['heard_as'])} |")
        if len(pr["per_preset"]) > 16:
            lines.append(f"| (and {len(pr['per_preset']) - 16} more presets: eval.json) | | | | |")
    lines += ["", f"Pitch (pYIN, librosa): {100 * p['accuracy']:.1f} % of voiced frames within 50 cents, median error "
              f"{p['median_cents']:.1f} cents; with +1 semitone of bend {100 * p['accuracy_bend_+1']:.1f} %.", "",
              "| attribute | E1 low<high | E2 mid<high | E3 low<mid |", "|---|---|---|---|"]
    for a, c in r["coherence"].items():
        lines.append(f"| {a} | {c['E1']:.2f} | {c['E2']:.2f} | {c['E3']:.2f} |")
    if r.get("family_coherence"):
        fc = r["family_coherence"]
        lines += ["", "Family soft labels through the judge (DarkGAN): the judge's probability of the family "
                  "as the label goes 0.2 / 0.5 / 0.8.", "",
                  "| family | E1 | E2 | E3 | r |", "|---|---|---|---|---|"]
        for a, c in fc.items():
            lines.append(f"| {a} | {c['E1']:.2f} | {c['E2']:.2f} | {c['E3']:.2f} | {c['r']:.2f} |")
        lines.append(f"| mean | {np.mean([c['E1'] for c in fc.values()]):.2f} | "
                     f"{np.mean([c['E2'] for c in fc.values()]):.2f} | {np.mean([c['E3'] for c in fc.values()]):.2f} | "
                     f"{np.mean([c['r'] for c in fc.values()]):.2f} |")
    lines += ["", "| hold | clicks | level spread during hold | ends silent | tail peak |", "|---|---|---|---|---|"]
    for v in r["variable_length"]:
        spread = "—" if v["level_spread_db"] is None else f"{v['level_spread_db']:.1f} dB"
        lines.append(f"| {v['hold_s']} s | {v['clicks']} | {spread} | {v['ends_silent']} | {v['tail_peak_db']:.0f} dB |")
    return "\n".join(lines) + "\n"


def _plots(r, gen, sr, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["pitch"]["per_pitch"]
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.bar([x["pitch"] for x in rows], [x["accuracy"] for x in rows], width=1.5)
    ax.set_xlabel("MIDI pitch")
    ax.set_ylabel("share within 50 cents")
    fig.tight_layout()
    fig.savefig(out / "pitch-accuracy.png", dpi=80)
    plt.close(fig)
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.6))
    for ax, clip in zip(axes, gen[:4]):
        ax.specgram(clip + 1e-9, NFFT=512, Fs=sr, noverlap=384, cmap="magma")
    fig.tight_layout()
    fig.savefig(out / "examples.png", dpi=80)
    plt.close(fig)
