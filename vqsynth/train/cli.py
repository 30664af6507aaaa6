"""`vqsynth train STAGE`: the training pipeline of vqsynth/train/pipeline.py, stage by stage.

    vqsynth train all --corpus corpus --runs runs --name vqsynth-gm
runs every stage in order; each resumes from its checkpoint, and a finished stage is skipped.

    vqsynth train control --corpus corpus-44k --runs runs --generator-minutes 60
    vqsynth train control-export --corpus corpus-44k --runs runs --name vqsynth-gm2 --model-version 2.0
train the generator on the corpus's analysis targets (vqsynth/train/control.py; tokens from the
encoder of --encoder-from) and export it with one preset per GM program.

    vqsynth train drums --corpus corpus-drums --runs runs --drum-run drums --generator-minutes 50
    vqsynth train drums-export --corpus corpus-drums --runs runs --drum-run drums --name vqsynth-drums
train the one-shot drum generator on the corpus's drum hits (vqsynth/train/drums.py) and export
it with one preset per kit.
"""

from __future__ import annotations

import argparse

STAGES = ["encoder", "encode", "prior", "teacher", "attributes", "generator", "export", "probes", "control",
          "control-export", "drums", "drums-export", "all"]
PIPELINE = ["encoder", "encode", "prior", "teacher", "attributes", "generator", "export", "probes"]


def add_arguments(parser):
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--corpus", default="corpus", help="corpus folder (vqsynth data build) [corpus]")
    parser.add_argument("--runs", default="runs", help="folder of the training runs [runs]")
    parser.add_argument("--hop", type=int, default=160, help="frame hop in samples at the corpus rate [160]")
    parser.add_argument("--encoder-steps", type=int, default=1500)
    parser.add_argument("--teacher-steps", type=int, default=1500)
    parser.add_argument("--attributes-steps", type=int, default=1000, help="attribute regressor steps [1000]")
    parser.add_argument("--generator-steps", type=int, default=4000)
    parser.add_argument("--generator-minutes", type=float, default=None,
                        help="stop the generator stage after this many minutes (resume later) [no limit]")
    parser.add_argument("--batch", type=int, default=8, help="generator batch (whole 4-s notes) [8]")
    parser.add_argument("--warmup", type=int, default=400, help="spectral-only steps before the critics join [400]")
    parser.add_argument("--gan-run", default="gan", help="run folder of the generator stage, under --runs [gan]")
    parser.add_argument("--adv-weight", type=float, default=0.1, help="weight of the critics' terms for G [0.1]")
    parser.add_argument("--drift", type=float, default=1e-3, help="critic drift penalty epsilon [0.001]")
    parser.add_argument("--critic-warmup", type=int, default=0,
                        help="steps the critics train alone when they join [0]")
    parser.add_argument("--instruments", action=argparse.BooleanOptionalAction, default=True,
                        help="z from a per-program Gaussian (the instrument), not from N(0, I) [on]")
    parser.add_argument("--kl-weight", type=float, default=0.01, help="weight of the instruments' KL term [0.01]")
    parser.add_argument("--attr-weight", type=float, default=5.0,
                        help="weight of the frozen attribute regressor's error on G's output (0: off) [5]")
    parser.add_argument("--init-from", default=None,
                        help="start a new generator run from this run's checkpoint (under --runs) [none]")
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate, G and critics [0.0002]")
    parser.add_argument("--temperature", type=float, default=2.0, help="distillation temperature T [2.0]")
    parser.add_argument("--name", default="vqsynth-gm", help="model name for export [vqsynth-gm]")
    parser.add_argument("--model-version", default="1.0", help="version written to model.json [1.0]")
    parser.add_argument("--out", default=None, help="model folder to export to [models/NAME]")
    parser.add_argument("--threads", type=int, default=2, help="torch threads [2]")
    parser.add_argument("--encoder-from", default="models/vqsynth-gm",
                        help="control stages: the model folder whose encoder.onnx gives the tokens [models/vqsynth-gm]")
    parser.add_argument("--control-run", default="control", help="control stages: run folder under --runs [control]")
    parser.add_argument("--drum-run", default="drums", help="drum stages: run folder under --runs [drums]")
    parser.add_argument("--z-dropout", type=float, default=0.3,
                        help="control stage: share of notes trained with z = 0, so attributes and family labels "
                             "steer on their own [0.3]")
    parser.add_argument("--init-logvar", type=float, default=None,
                        help="control stage, with --init-from: set every program's z log-variance to this "
                             "(e.g. -6: z near its program's mean, so G can learn to use it) [kept]")
    parser.add_argument("--onset-weight", type=float, default=1.0,
                        help="control stage: weight of a note's first 16 frames (160 ms) in the loss, "
                             "against 1 for the rest [1]")


def run(args):
    try:
        import torch
    except ModuleNotFoundError:
        from vqsynth.cli import UserError

        raise UserError("training needs torch: pip install -e '.[train]' (torch==2.13.0, the CPU build)") from None

    from vqsynth.train import pipeline as P

    torch.set_num_threads(args.threads)
    if args.stage.startswith("control"):
        return _control(args)
    if args.stage.startswith("drums"):
        return _drums(args)
    notes = P.Notes(args.corpus, "train")
    todo = PIPELINE if args.stage == "all" else [args.stage]
    encoded = soft = None
    for stage in todo:
        print(f"== {stage}", flush=True)
        if stage == "encoder":
            P.stage_encoder(notes, args.runs, args.hop, args.encoder_steps)
        elif stage == "encode":
            encoded = P.stage_encode(notes, args.runs, args.hop)
        elif stage == "prior":
            P.stage_prior(notes, args.runs, args.hop, encoded or P.stage_encode(notes, args.runs, args.hop))
        elif stage == "teacher":
            P.stage_teacher(notes, args.runs, args.teacher_steps)
            soft = P.soft_labels(notes, args.runs, args.temperature)
        elif stage == "attributes":
            P.stage_attributes(notes, args.runs, args.attributes_steps)
        elif stage == "generator":
            encoded = encoded or P.stage_encode(notes, args.runs, args.hop)
            soft = soft if soft is not None else P.soft_labels(notes, args.runs, args.temperature)
            P.stage_generator(notes, args.runs, args.hop, encoded, soft, args.generator_steps, batch=args.batch,
                              max_minutes=args.generator_minutes, warmup=args.warmup, run_name=args.gan_run,
                              adv_weight=args.adv_weight, drift=args.drift, critic_warmup=args.critic_warmup, lr=args.lr,
                              instruments=args.instruments, kl_weight=args.kl_weight, attr_weight=args.attr_weight,
                              init_from=args.init_from)
        elif stage == "export":
            P.stage_export(notes, args)
        elif stage == "probes":  # what the exported model's tokens carry (issue #3)
            from pathlib import Path

            from vqsynth.train.probes import run_probes, table

            result = run_probes(args.corpus, args.out or Path("models") / args.name, Path(args.runs) / "probes.json")
            print(table(result), flush=True)
    return 0


def _control(args):
    import json
    from pathlib import Path

    from vqsynth.train import control as C

    notes = C.ControlNotes(args.corpus)
    run_dir = Path(args.runs) / args.control_run
    enc_meta = json.loads((Path(args.encoder_from) / "model.json").read_text())
    encoded = C.encode_tokens(notes, Path(args.encoder_from) / enc_meta["encoder"].get("file", "encoder.onnx"),
                              int(enc_meta["sample_rate"]), run_dir / "tokens.npz")
    soft = C.family_labels(notes)
    if args.stage == "control":
        C.train_control(notes, encoded, soft, run_dir, steps=args.generator_steps, batch=args.batch,
                        max_minutes=args.generator_minutes, lr=args.lr, z_dropout=args.z_dropout,
                        onset_weight=args.onset_weight, kl_weight=args.kl_weight, init_logvar=args.init_logvar,
                        init_from=args.init_from and Path(args.runs) / args.init_from)
        return 0
    out = Path(args.out) if args.out else Path("models") / args.name
    C.export_control(notes, run_dir, encoded, soft, args.encoder_from, out, args.name, args.model_version,
                     {"corpus": str(args.corpus), "notes": len(notes), "targets": notes.cfg})
    print(f"exported {out}")
    return 0


def _drums(args):
    from pathlib import Path

    from vqsynth.train import drums as D

    run_dir = Path(args.runs) / args.drum_run
    hits = D.DrumHits(args.corpus, ("train",))
    if args.stage == "drums":
        D.train_drums(hits, run_dir, steps=args.generator_steps, batch=args.batch, max_minutes=args.generator_minutes,
                      lr=args.lr, z_dropout=args.z_dropout)
        return 0
    out = Path(args.out) if args.out else Path("models") / args.name
    D.export_drums(hits, run_dir, out, args.name, args.model_version,
                   {"corpus": str(args.corpus), "hits": len(hits), "sounds": len(hits.sounds)})
    print(f"exported {out}")
    return 0
