"""Two (or more) models side by side with the same seeds: the attribute coherence of each
timbral attribute (DrumGAN E1/E2/E3, 20 trials), the z effect (30 pairs, and between presets)
and the family soft labels through the judge (DarkGAN, 10 trials per family). These are the
figures the quick evaluation samples too thinly to compare versions by.

    .venv/bin/python perf/compare_models.py OLD_MODEL NEW_MODEL --json models/vqsynth-gm/eval/compare.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main():
    from vqsynth.eval.suite import Judge, coherence, family_coherence, z_effect
    from vqsynth.model.folder import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--runs", default="runs", help="training runs (the judge is runs/teacher) [runs]")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out = {}
    for folder in args.models:
        m = load_model(folder)
        rng = np.random.default_rng(1)  # one stream through the seven attributes, in order
        r = {a: coherence(m, a, args.trials, rng, m.pitch_range) for a in m.attr_names[:7]}
        r["z_effect"] = z_effect(m, np.random.default_rng(2), 30)
        fam = family_coherence(m, Judge(args.runs, m.sample_rate), 10, np.random.default_rng(0), m.pitch_range)
        r["family_mean"] = {k: float(np.mean([v[k] for v in fam.values()])) for k in ("E1", "E2", "E3", "r")}
        out[folder] = r
        print(folder, json.dumps(r), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
