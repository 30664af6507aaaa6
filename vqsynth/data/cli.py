"""`vqsynth data build | info | verify`: the training corpus (format: vqsynth/data/corpus.py).

Imported when the CLI starts: numpy, fluidsynth, scipy and rich are imported inside functions.
Also runs alone: `python -m vqsynth.data.cli build ...`.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

from vqsynth.cli import UserError

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def _ints(text):
    """'0-7,16,24-31' -> [0, ..., 7, 16, 24, ..., 31]"""
    out = []
    try:
        for part in str(text).split(","):
            a, _, b = part.strip().partition("-")
            out += list(range(int(a), int(b or a) + 1))
    except ValueError:
        raise UserError(f"not a list of numbers and ranges: {text!r} (e.g. 0-7,16,24-31)") from None
    return out


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="render the corpus (resumable; a rerun is a no-op)")
    b.add_argument("--out", default="corpus", help="corpus folder [corpus]")
    b.add_argument("--soundfont", action="append", help=f"SoundFont (.sf2/.sf3), repeatable [{DEFAULT_SOUNDFONT}]")
    b.add_argument("--subset", choices=["tonal", "drums", "all"], default="all")
    b.add_argument("--sample-rate", type=int, default=16000)
    b.add_argument("--programs", default="0-127", help="GM programs for the tonal subset [0-127]")
    b.add_argument("--kits", default=None, help="drum kits (bank 128 presets) [every kit in the SoundFont]")
    b.add_argument("--pitches", default="21-108", help="MIDI pitches; for drums, the GM keys 35-81 [21-108]")
    b.add_argument("--velocities", default="25,50,75,100,127")
    b.add_argument("--limit", type=int, default=None, help="at most N notes per subset, spread evenly (small builds)")
    b.add_argument("--workers", type=int, default=2, help="render processes [2]")
    b.add_argument("--seed", type=int, default=0, help="split seed [0]")
    for name, help_ in (("info", "counts, size and attribute distribution"), ("verify", "check every checksum")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--out", default="corpus", help="corpus folder [corpus]")


def run(args) -> int:
    return {"build": _build, "info": _info, "verify": _verify}[args.action](args)


def _soundfonts(paths):
    paths = paths or [DEFAULT_SOUNDFONT]
    for p in paths:
        if not Path(p).is_file():
            hint = " (apt-get install fluid-soundfont-gm)" if p == DEFAULT_SOUNDFONT else ""
            raise UserError(f"SoundFont not found: {p}{hint}")
    return paths


@contextmanager
def _progress():
    """Yields progress(done, total, seconds): a rich bar on a terminal, a line every 30 s in a log."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if console.is_terminal:
        with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]:.1f} notes/s"), TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("notes", total=None, rate=0.0)
            yield lambda done, total, seconds: bar.update(task, completed=done, total=total,
                                                          rate=done / max(seconds, 1e-9))
        return
    last = [0.0]

    def log(done, total, seconds):
        if seconds - last[0] >= 30 or done == total:
            last[0] = seconds
            rate = done / max(seconds, 1e-9)
            print(f"{done}/{total} notes  {rate:.1f} notes/s  elapsed {seconds / 60:.1f} min  "
                  f"left {(total - done) / max(rate, 1e-9) / 60:.1f} min", file=sys.stderr, flush=True)
    yield log


def _build(args) -> int:
    from vqsynth.data.build import build
    from vqsynth.data.render import load_fluidsynth

    soundfonts = _soundfonts(args.soundfont)
    load_fluidsynth()
    subsets = ("tonal", "drums") if args.subset == "all" else (args.subset,)
    t0 = time.perf_counter()
    with _progress() as progress:
        stats = build(args.out, soundfonts, sample_rate=args.sample_rate, subsets=subsets,
                      programs=_ints(args.programs), pitches=_ints(args.pitches), velocities=_ints(args.velocities),
                      kits=_ints(args.kits) if args.kits else None, limit=args.limit, workers=args.workers,
                      seed=args.seed, progress=progress)
    if not stats["rendered"]:
        print(f"{args.out}: complete, nothing to do")
        return 0
    print(f"{args.out}: rendered {stats['rendered']} notes in {stats['seconds']:.0f} s "
          f"({stats['rendered'] / max(stats['seconds'], 1e-9):.1f} notes/s), kept {stats['kept']}, "
          f"dropped {stats['dropped']} (silent, broken or duplicate); total {time.perf_counter() - t0:.0f} s")
    return _info(args)


def _info(args) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from vqsynth.data.corpus import read_manifest

    manifest = read_manifest(args.out)
    stats = manifest.get("stats")
    if stats is None:
        raise UserError(f"{args.out}: the build has not finished: rerun `vqsynth data build --out {args.out}`")
    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(f"[bold]{args.out}[/]: {stats['bytes'] / 2**30:.2f} GiB, {manifest['config']['sample_rate']} Hz, "
                  f"{len(manifest['shards'])} shards, build time {manifest.get('build_seconds', 0) / 60:.1f} min")
    for subset, n in stats["notes"].items():
        console.print(f"{subset}: {n['kept']} notes kept of {n['requested']} requested, dropped {n['dropped']}; "
                      f"splits {stats['splits'][subset]}")
        if subset == "tonal":
            console.print(f"  pitch (YIN): {n['pitched']} notes pitched, {n['within_50_cents']} within 50 cents "
                          "of their label")
        drops = [f"{s['program']} {s['preset']}: {s['dropped']}" for s in manifest["shards"]
                 if s["subset"] == subset and s["dropped"]]
        if drops:
            console.print("  dropped per " + ("program" if subset == "tonal" else "kit") + ": " + "; ".join(drops))
        table = Table(title=f"{subset}: attributes in [0,1] (and raw, Audio Commons scale); loudness in LUFS",
                      box=box.SIMPLE, title_justify="left")
        table.add_column("attribute", no_wrap=True)
        for col in ["p1", "p25", "median", "p75", "p99", "raw p1", "raw p50", "raw p99"]:
            table.add_column(col, justify="right")
        attrs = stats["attributes"][subset]
        for name in [a for a in attrs if not a.startswith("raw_")]:
            v = attrs[name]["values"]
            raw = attrs["raw_" + name]["values"] if "raw_" + name in attrs else None
            if v:
                table.add_row(name, *[f"{x:.2f}" if raw else f"{x:.1f}" for x in (v[1], v[3], v[4], v[5], v[7])],
                              *([f"{x:.1f}" for x in (raw[1], raw[4], raw[7])] if raw else ["", "", ""]))
        console.print(table)
    return 0


def _verify(args) -> int:
    from vqsynth.data.corpus import verify

    t0 = time.perf_counter()
    n = verify(args.out)
    print(f"{args.out}: {n} files match their checksums ({time.perf_counter() - t0:.1f} s)")
    return 0


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="vqsynth data", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"vqsynth data: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
