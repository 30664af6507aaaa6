"""`vqsynth eval MODEL`: the evaluation suite of vqsynth/eval/suite.py."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("model", nargs="?", default=None,
                        help="model folder or name [models/DEFAULT]; a drum (one-shot) model is measured against "
                             "the held-out kits of a drum corpus (vqsynth/eval/drums.py)")
    parser.add_argument("--corpus", default="corpus", help="corpus folder (real data, test split) [corpus]")
    parser.add_argument("--runs", default="runs", help="training runs (the judge is runs/teacher) [runs]")
    parser.add_argument("--out", default="eval-out", help="where eval.md, eval.json and PNGs go [eval-out]")
    parser.add_argument("--quick", action="store_true", help="CI-sized: a few minutes on 2 cores")
    parser.add_argument("--trials", type=int, default=None,
                        help="coherence trials per attribute (a tenth per family) [5 quick, 1000 full; "
                             "--sound: 10 per attribute, half that per family, 0 for none]")
    parser.add_argument("--notes", type=int, default=None, help="generated and real notes compared [60 quick, 400 full]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sound", action="store_true",
                        help="instead: the model against FluidSynth on the same notes (identity, noise floor, band, "
                             "attack per velocity, held notes); needs no corpus or judge")
    parser.add_argument("--compare", action="append", default=[],
                        help="with --sound: another model measured in the same run (its column first), repeatable")
    parser.add_argument("--presets", type=int, default=None, help="with --sound: only the first N presets")


def run(args):
    from vqsynth.cli import UserError
    from vqsynth.eval.suite import run_suite
    from vqsynth.model.folder import ModelError, resolve_model

    import json

    folder = resolve_model(args.model) if args.model else None
    if folder is not None and json.loads((folder / "model.json").read_text()).get("kind") == "one-shot":
        from vqsynth.eval import drums

        try:
            result = drums.run(folder, args.corpus, args.out, trials=args.trials or (8 if args.quick else 40),
                               seed=args.seed)
        except (ModelError, FileNotFoundError) as exc:
            raise UserError(str(exc)) from None
        print(drums.markdown(result))
        return 0
    if args.sound:
        from vqsynth.eval import sound

        try:
            results = sound.run([resolve_model(m) for m in args.compare] + [resolve_model(args.model)], args.out,
                                args.presets, controls_trials=args.trials if args.trials is not None else 10)
        except ModelError as exc:
            raise UserError(str(exc)) from None
        print(sound.markdown(results))
        return 0
    try:
        result = run_suite(resolve_model(args.model), args.corpus, args.runs, args.out, args.quick, args.seed,
                           trials=args.trials, notes=args.notes)
    except (ModelError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from None
    from vqsynth.eval.suite import markdown

    print(markdown(result))
    return 0
