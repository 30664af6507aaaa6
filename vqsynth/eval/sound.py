"""`vqsynth eval --sound`: the model against FluidSynth playing the same notes with the same
SoundFont (the source of the training data), measured by vqsynth/eval/listener.py.

Both play at 44.1 kHz, the rate a listener hears: the model's DSP head synthesises at the output
rate whatever the model's own, so a 16 kHz model's missing top octave shows as it sounds.

Every figure is printed beside the real notes' own, and the real-vs-real ceiling where one
exists. The pitches and velocities are ones no model was trained on (the 2.x corpus has pitches
21 + 4k and 108, velocities 25/50/75/100/127; 1.x velocity 100 only): C3-E3-G3-C4 at velocity 90.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vqsynth.eval import listener as L

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
PHRASE = (48, 52, 55, 60)           # C3 E3 G3 C4: what a listener plays first
CEILING_PHRASE = (50, 54, 57, 62)   # other notes of the same programs: real against real
VELOCITY = 90
NOTE_S = 1.0
RMS = 0.1
RATE = 44100


def _peak(x):
    """Peak-normalised to half scale, as the corpus is."""
    return 0.5 * x / (np.abs(x).max() + 1e-12)


def _level(x):
    return x * (RMS / (np.sqrt(np.mean(x ** 2)) + 1e-12))


class Real:
    """FluidSynth notes at the model's rate, peak-normalised to half scale as the corpus is."""

    def __init__(self, sample_rate):
        from vqsynth.data.render import Renderer

        self.sr = sample_rate
        self.r = Renderer(SOUNDFONT, sample_rate)

    def note(self, program, pitch, velocity=VELOCITY, hold_s=NOTE_S, tail_s=0.3):
        return _peak(self.r.note(0, program, pitch, velocity, hold_s + tail_s, hold_s))


def _model_note(model, preset, pitch, velocity=VELOCITY, hold_s=NOTE_S, tail_s=0.3, seed=0, zero_z=False):
    """A note of `preset` as a performer plays it (zero_z: the same with z = 0)."""
    from vqsynth.eval.suite import render_note

    z = np.zeros(model.z_size, np.float32) if zero_z else None
    x = render_note(model, pitch, hold_s=hold_s, velocity=velocity, z=z, tail_s=tail_s, seed=seed, sample_rate=RATE,
                    preset=preset)
    return _peak(x)


def _resynthesised(real, program, pitch, hop, n_harmonics, n_noise, band_limit_hz):
    from vqsynth.data.targets import resynthesise
    from vqsynth.model.dsp import midi_to_hz

    return _peak(resynthesise(real.note(program, pitch).astype(np.float64), real.sr, float(midi_to_hz(pitch)),
                              hop, n_harmonics, n_noise, min(band_limit_hz, real.sr / 2)))


def _phrase_features(notes, sr):
    n = int(NOTE_S * sr)
    return L.timbre_features(np.concatenate([_level(x[:n]) for x in notes]), sr)


def evaluate(model, presets=None, progress=print, controls_trials=10) -> dict:
    """Every section of the sound evaluation for one model; `presets` limits the presets used."""
    sr = RATE
    real = Real(sr)
    table = [(i, p) for i, p in enumerate(model.preset_table) if "program" in p]
    if presets is not None:
        table = table[:presets]
    programs = sorted({p["program"] for _, p in table})
    ref_programs = list(range(128))
    progress(f"{model.name}: {len(table)} presets, reference {len(ref_programs)} FluidSynth programs")
    ref = np.stack([_phrase_features([real.note(p, q) for q in PHRASE], sr) for p in ref_programs])
    ceiling = np.stack([_phrase_features([real.note(p, q, velocity=70) for q in CEILING_PHRASE], sr)
                        for p in programs])
    held = {}
    gen_feats, zero_feats = [], []
    for i, p in table:
        gen_feats.append(_phrase_features([_model_note(model, i, q) for q in PHRASE], sr))
        # the same preset with z = 0: how much of its identity z carries (2.0: none)
        zero_feats.append(_phrase_features([_model_note(model, i, q, zero_z=True) for q in PHRASE], sr))
        held[p["program"]] = _model_note(model, i, 60, hold_s=2.0)
    # the real notes played back from their own analysis targets through the DSP head: what a
    # generator that wrote the targets exactly would score (the representation's ceiling)
    # (at this model's harmonics, noise bands and band limit, at the evaluation's rate)
    shape = (int(round(sr * model.hop / model.sample_rate)), model.n_harmonics, model.n_noise, model.band_limit_hz)
    targets = np.stack([_phrase_features([_resynthesised(real, p, q, *shape) for q in PHRASE], sr) for p in programs])
    qp = [p["program"] for _, p in table]
    result = {"model": model.name, "version": model.meta.get("version"), "sample_rate": model.sample_rate}
    result["identity"] = {
        "model": L.identity_scores(np.stack(gen_feats), qp, ref, ref_programs),
        "model_z0": L.identity_scores(np.stack(zero_feats), qp, ref, ref_programs),
        "targets": L.identity_scores(targets, programs, ref, ref_programs),
        "real": L.identity_scores(ceiling, programs, ref, ref_programs),
        "chance_top5": 5 / 128, "chance_family": 8 / 128}
    progress("identity done")
    # clean, full band: a held C4 of every preset's program, sustain 0.3-1.8 s
    f0 = 440.0 * 2 ** ((60 - 69) / 12)
    rows = []
    for prog, x in held.items():
        y = real.note(prog, 60, hold_s=2.0)
        row = {"program": prog}
        for key, fn in (("hfr_db", lambda a: L.harmonic_to_floor_db(a, sr, f0, 0.3, 1.8, f_hi=8000)),
                        ("floor_4_8k_db", lambda a: L.floor_db(a, sr, f0, 0.3, 1.8)),
                        ("above_8k_db", lambda a: L.power_above_db(a[:int(2.0 * sr)], sr, 8000.0))):
            row[key] = [fn(x), fn(y)]
        rows.append(row)
    diff = lambda k: [r[k][0] - r[k][1] for r in rows]  # noqa: E731
    result["clean"] = {
        "hfr_db_median_diff": float(np.median(diff("hfr_db"))),
        "floor_4_8k_db_median_diff": float(np.median(diff("floor_4_8k_db"))),
        "hfr_lower_for": int(sum(d < 0 for d in diff("hfr_db"))), "programs": len(rows),
        "above_8k_db_median_diff": float(np.median(diff("above_8k_db"))), "per_program": rows}
    lines_in = [_model_note(model, table[0][0], q, hold_s=1.0, tail_s=0.0) for q in (43, 50, 57, 64, 71)]
    spectra = [L.spectrum_db(x, sr) for x in lines_in]
    result["clean"]["fixed_lines_hz"] = L.spectral_lines(np.stack([s for _, s in spectra]), spectra[0][0])
    progress("clean done")
    result["velocity"] = velocity_section(model, real, table)
    progress("velocity done")
    result["hold"] = hold_section(model, real, table)
    result["morph"] = morph_section(model, table)
    progress("morph done")
    if controls_trials:
        result["attributes"] = attribute_section(model, controls_trials, table=table)
        progress("attributes done")
        result["families"] = family_section(model, real, max(controls_trials // 2, 2))
    return result


def attribute_section(model, trials, seed=0, table=None):
    """DrumGAN Table 6.3 for the seven timbral attributes (vqsynth.eval.suite.coherence: each
    attribute at 0.2 / 0.5 / 0.8 with the rest fixed, measured by the corpus's own attribute code).
    DrumGAN draws z from the prior the model was trained with: here each program's own Gaussian,
    so each trial plays a random preset's z (`table`: the GM presets). The same trials with z from
    N(0, I) are kept beside (`off_instruments`): a model whose z carries the instrument was never
    trained there (2.x presets' z spread 0.3 per dimension, N(0, I) 1.0)."""
    from vqsynth.eval.suite import coherence

    timbre = [a["name"] for a in model.attributes if a.get("kind") == "timbre"]

    def section(draw_z):
        rng = np.random.default_rng(seed)
        rows = {name: coherence(model, name, trials, rng, model.pitch_range, draw_z=draw_z) for name in timbre}
        return {"per_attribute": rows, "min_E1": float(min(r["E1"] for r in rows.values())),
                "mean_E1": float(np.mean([r["E1"] for r in rows.values()]))}

    zs = [model.preset_z(i) for i, _ in table or []]
    out = {"trials": trials, "z": "presets" if zs else "N(0, I)",
           **section((lambda rng: zs[int(rng.integers(len(zs)))]) if zs else None)}
    if zs:
        out["off_instruments"] = section(None)
    return out


def family_section(model, real, trials, seed=0, pitch=60):
    """DarkGAN's soft-label test with an independent judge: a family's label at 0.2 / 0.5 / 0.8,
    the rest fixed (the other labels at their defaults, timbre attributes drawn at random, z = 0,
    the centre of the instruments), and the judge's probability of that family rising with it. The
    judge is no network of ours: the distance, in standardised timbre_features, to each family's
    centroid over real FluidSynth notes of its eight programs (a softmax of minus the distances)."""
    from vqsynth.eval.metrics import coherence_accuracies
    from vqsynth.eval.suite import render_note

    families = [a["name"] for a in model.attributes if a.get("kind") == "family"]
    if not families:
        return None
    n = int(NOTE_S * RATE)
    ref = np.stack([L.timbre_features(_level(real.note(p, pitch)[:n]), RATE) for p in range(128)])
    mu, sd = ref.mean(0), ref.std(0) + 1e-9
    centroids = np.stack([((ref[8 * f:8 * f + 8] - mu) / sd).mean(0) for f in range(len(families))])

    def p_family(x):
        d = np.sqrt((((L.timbre_features(_level(x[:n]), RATE) - mu) / sd - centroids) ** 2).sum(1))
        w = np.exp(-(d - d.min()))
        return w / w.sum()

    rng = np.random.default_rng(seed)
    first = model.attr_names.index(families[0])
    rows = {}
    for f, name in enumerate(families):
        measured = {0.2: [], 0.5: [], 0.8: []}
        for _ in range(trials):
            base = model.attr_defaults.copy()
            base[:first] = rng.uniform(0.2, 0.8, first)
            for level in measured:
                a = base.copy()
                a[first + f] = level
                x = render_note(model, pitch, a, hold_s=NOTE_S, z=np.zeros(model.z_size, np.float32), tail_s=0.0,
                                sample_rate=RATE)
                measured[level].append(float(p_family(x)[f]))
        rows[name] = coherence_accuracies(measured[0.2], measured[0.5], measured[0.8])
    return {"trials": trials, "per_family": rows, "mean_E1": float(np.mean([r["E1"] for r in rows.values()]))}


def morph_section(model, table, steps=8, pairs=((0, 40), (24, 73), (56, 19))):
    """The latent walk between two presets: C4 with z moved from one preset's to the other's in
    `steps` notes (attributes likewise): share of pYIN frames within 50 cents, and clicks."""
    from vqsynth.eval.metrics import click_count, pitch_accuracy, track_pitch
    from vqsynth.eval.suite import render_note

    by_prog = {p["program"]: i for i, p in table}
    f0 = 440.0 * 2 ** ((60 - 69) / 12)
    rows = []
    for a, b in pairs:
        if a not in by_prog or b not in by_prog:
            continue
        ia, ib = by_prog[a], by_prog[b]
        attrs = []
        for i in (ia, ib):
            v = model.attr_defaults.copy()
            for name, value in model.preset_attrs(i).items():
                v[model.attr_names.index(name)] = value
            attrs.append(v)
        acc, clicks = [], 0
        for w in np.linspace(0.0, 1.0, steps):
            z = (1 - w) * model.preset_z(ia) + w * model.preset_z(ib)
            x = render_note(model, 60, (1 - w) * attrs[0] + w * attrs[1], hold_s=0.6, z=z, tail_s=0.3,
                            sample_rate=RATE)
            f, voiced = track_pitch(x[int(0.05 * RATE):int(0.6 * RATE)], RATE, f0, hop=441)
            acc.append(pitch_accuracy(f, voiced, f0)[0])
            clicks += click_count(x, RATE, onsets_s=[0.0])
        rows.append({"from": a, "to": b, "in_tune": float(np.mean(acc)), "clicks": int(clicks)})
    return {"pairs": rows, "in_tune": float(np.mean([r["in_tune"] for r in rows])) if rows else None,
            "clicks": int(sum(r["clicks"] for r in rows))}


def velocity_section(model, real, table, velocities=(30, 60, 90, 110, 127), programs=(0, 24, 40, 56, 73)):
    """Attack (ms to half the peak) per velocity, model and real, and the brightness slope per
    velocity (brightness measured on each note, per 127 of velocity), per program and averaged."""
    import soxr

    from vqsynth.data.timbre import brightness as brightness_16k

    sr = RATE
    brightness = lambda x, _: brightness_16k(soxr.resample(x, sr, 16000), 16000)  # noqa: E731  the corpus's scale
    by_prog = {p["program"]: i for i, p in table}
    rows = []
    for prog in programs:
        if prog not in by_prog:
            continue
        for v in velocities:
            x = _model_note(model, by_prog[prog], 60, velocity=v, hold_s=1.0, tail_s=0.0)
            y = real.note(prog, 60, velocity=v, hold_s=1.0, tail_s=0.0)
            rows.append({"program": prog, "velocity": v, "attack_ms": [L.attack_ms(x, sr), L.attack_ms(y, sr)],
                         "brightness": [brightness(x, sr), brightness(y, sr)]})
    out = {"per_note": rows}
    if rows:
        out["attack_ms_max_abs_diff"] = float(max(abs(r["attack_ms"][0] - r["attack_ms"][1]) for r in rows))
        out["attack_ms_by_velocity"] = {v: [float(np.median([r["attack_ms"][k] for r in rows if r["velocity"] == v]))
                                            for k in (0, 1)] for v in velocities}
        # per program (most FluidR3 programs change only their level with velocity, so a median
        # over five says 0 for model and real alike): the mean slope, and how far each program's is
        # from its real one
        per = {}
        for prog in sorted({r["program"] for r in rows}):
            pts = [r for r in rows if r["program"] == prog]
            per[prog] = [float(np.polyfit([r["velocity"] for r in pts], [r["brightness"][k] for r in pts], 1)[0] * 127)
                         for k in (0, 1)]
        out["brightness_slope_by_program"] = per
        out["brightness_slope_per_127"] = [float(np.mean([v[k] for v in per.values()])) for k in (0, 1)]
        out["brightness_slope_abs_diff"] = float(np.mean([abs(m - r) for m, r in per.values()]))
    return out


def hold_section(model, real, table, seconds=10.0, count=6):
    """Onsets inside a held C4 and its level spread, model and real, for the first presets."""
    from vqsynth.eval.metrics import level_stability_db

    sr = RATE
    rows = []
    for i, p in table[:count]:
        x = _model_note(model, i, 60, hold_s=seconds, tail_s=0.0)
        y = real.note(p["program"], 60, hold_s=seconds, tail_s=0.0)
        rows.append({"program": p["program"],
                     "onsets_per_s": [L.onsets_per_s(x, sr, 0.3, seconds), L.onsets_per_s(y, sr, 0.3, seconds)],
                     "level_spread_db": [level_stability_db(x, sr, 0.3, seconds), level_stability_db(y, sr, 0.3, seconds)]})
    return {"per_program": rows, "seconds": seconds,
            "onsets_per_s_mean": [float(np.mean([r["onsets_per_s"][k] for r in rows])) for k in (0, 1)],
            "level_spread_db_median": [float(np.median([r["level_spread_db"][k] for r in rows])) for k in (0, 1)]}


def markdown(results: list) -> str:
    """One table, a column per model, beside the real notes (ceilings)."""
    def cell(r, f):
        try:
            return f(r)
        except (KeyError, TypeError, IndexError):
            return "—"

    rows = [
        ("identity: right program in nearest 5", lambda r: f"{100 * r['identity']['model']['in_top']:.1f} %",
         lambda r: f"{100 * r['identity']['real']['in_top']:.1f} %"),
        ("identity: right program in nearest 5, every preset's z = 0 (what z carries)",
         lambda r: f"{100 * r['identity']['model_z0']['in_top']:.1f} %", lambda r: "—"),
        ("identity: right program in nearest 5, real notes from their analysis targets (the DSP head's ceiling)",
         lambda r: "—", lambda r: f"{100 * r['identity']['targets']['in_top']:.1f} %"),
        ("identity: nearest program in the right family", lambda r: f"{100 * r['identity']['model']['family']:.1f} %",
         lambda r: f"{100 * r['identity']['real']['family']:.1f} %"),
        ("identity: most presets on one nearest program", lambda r: str(r["identity"]["model"]["most_shared"]),
         lambda r: str(r["identity"]["real"]["most_shared"])),
        ("identity: distinct nearest programs", lambda r: str(r["identity"]["model"]["distinct_nearest"]),
         lambda r: str(r["identity"]["real"]["distinct_nearest"])),
        ("harmonic-to-floor, model - real (median, dB)", lambda r: f"{r['clean']['hfr_db_median_diff']:+.1f}",
         lambda r: "0"),
        ("4-8 kHz floor, model - real (median, dB)", lambda r: f"{r['clean']['floor_4_8k_db_median_diff']:+.1f}",
         lambda r: "0"),
        ("fixed spectral lines", lambda r: ", ".join(f"{f:.0f} Hz" for f in r["clean"]["fixed_lines_hz"]) or "none",
         lambda r: "—"),
        ("power above 8 kHz, model - real (median, dB)", lambda r: f"{r['clean']['above_8k_db_median_diff']:+.1f}",
         lambda r: "0"),
        ("attack, worst |model - real| over velocities (ms)",
         lambda r: f"{r['velocity']['attack_ms_max_abs_diff']:.1f}", lambda r: "0"),
        ("brightness slope per 127 velocity (mean of 5 programs)",
         lambda r: f"{r['velocity']['brightness_slope_per_127'][0]:+.2f}",
         lambda r: f"{r['velocity']['brightness_slope_per_127'][1]:+.2f}"),
        ("... each program's slope against its real one (mean abs difference)",
         lambda r: f"{r['velocity']['brightness_slope_abs_diff']:.2f}", lambda r: "0"),
        ("onsets per s inside a 10 s hold", lambda r: f"{r['hold']['onsets_per_s_mean'][0]:.2f}",
         lambda r: f"{r['hold']['onsets_per_s_mean'][1]:.2f}"),
        ("level spread over the hold (median, dB)", lambda r: f"{r['hold']['level_spread_db_median'][0]:.1f}",
         lambda r: f"{r['hold']['level_spread_db_median'][1]:.1f}"),
        ("latent walk between presets: in tune (pYIN, 50 cents)", lambda r: f"{100 * r['morph']['in_tune']:.0f} %",
         lambda r: "—"),
        ("latent walk: clicks", lambda r: str(r["morph"]["clicks"]), lambda r: "—"),
        ("attribute coherence E1, lowest of seven (z: a random preset's)", lambda r: f"{r['attributes']['min_E1']:.2f}",
         lambda r: "—"),
        ("attribute coherence E1, mean of seven (z: a random preset's)", lambda r: f"{r['attributes']['mean_E1']:.2f}",
         lambda r: "—"),
        ("... lowest of seven, z from N(0, I) (off the instruments)",
         lambda r: f"{r['attributes']['off_instruments']['min_E1']:.2f}", lambda r: "—"),
        ("family labels steer: E1 mean of 16 (feature judge)", lambda r: f"{r['families']['mean_E1']:.2f}",
         lambda r: "—"),
    ]
    head = "| measure | " + " | ".join(f"{r['model']} {r.get('version') or ''} ({r['sample_rate'] // 1000} kHz)"
                                         for r in results) + " | real (FluidSynth) |"
    lines = [head, "|---" * (len(results) + 2) + "|"]
    for name, f, g in rows:
        lines.append(f"| {name} | " + " | ".join(cell(r, f) for r in results) + f" | {cell(results[-1], g)} |")
    att = [r for r in results if "attack_ms_by_velocity" in r.get("velocity", {})]
    if att:
        lines += ["", "Attack (ms to half the peak, median over programs), by velocity:", "",
                  "| velocity | " + " | ".join(r["model"] + " " + str(r.get("version")) for r in att) + " | real |",
                  "|---" * (len(att) + 2) + "|"]
        for v in att[-1]["velocity"]["attack_ms_by_velocity"]:
            lines.append(f"| {v} | " + " | ".join(f"{r['velocity']['attack_ms_by_velocity'][v][0]:.1f}" for r in att)
                         + f" | {att[-1]['velocity']['attack_ms_by_velocity'][v][1]:.1f} |")
    return "\n".join(lines) + "\n"


def run(model_dirs, out_dir, presets=None, controls_trials=10) -> list:
    from vqsynth.model.folder import load_model

    results = []
    for d in model_dirs:
        results.append(evaluate(load_model(d), presets, controls_trials=controls_trials))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sound.json").write_text(json.dumps(results, indent=1, default=float))
    (out / "sound.md").write_text(markdown(results))
    return results
