"""Coverage-guided fuzzing (atheris / libFuzzer) of every parser that reads outside input.

Each target (perf/fuzz_targets.py) runs in its own process under atheris, with python-osc,
mido and vqsynth instrumented for coverage; a case that breaks the contract, raises, or runs
longer than --timeout seconds stops the run with a crash file in the work folder. The summary
(cases, crashes, hangs, seconds, coverage, what the inputs were answered with) goes to
stdout and, with --json, to a file.

    nice -n 19 .venv/bin/python perf/fuzz.py --runs 1000000 --json perf/results/fuzz.json   # every target
    .venv/bin/python perf/fuzz.py osc --runs 20000                                          # one target

Needs atheris (pip install atheris; wheels for CPython 3.8-3.11 on Linux x86-64).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGETS = ("osc", "midi", "mapping", "modeljson")


def child(target: str, model_dir: str, workdir: str, libfuzzer_args: list[str]):
    """Runs inside the fuzzing process: set up the target, hand it to atheris."""
    import atheris

    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=["vqsynth", "pythonosc", "mido", "tomllib"]):
        import mido  # noqa: F401
        import pythonosc.osc_message  # noqa: F401
        import vqsynth.control.mapping  # noqa: F401
        import vqsynth.control.midi  # noqa: F401
        import vqsynth.control.osc_addresses  # noqa: F401
        import vqsynth.control.osc_packet  # noqa: F401
        import vqsynth.control.osc_server  # noqa: F401
        import vqsynth.engine.engine  # noqa: F401
        import vqsynth.model.folder  # noqa: F401
    import fuzz_targets as ft
    from vqsynth.model.folder import load_model

    model = load_model(model_dir)
    corpus = Path(workdir) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = {"osc": ft.osc_seeds, "midi": ft.midi_seeds, "mapping": ft.mapping_seeds,
             "modeljson": lambda: ft.model_json_seeds(model_dir)}[target]()
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i:03d}").write_bytes(seed)
    extra = []
    if target == "osc":
        dictionary = Path(workdir) / "osc.dict"
        dictionary.write_text("".join('"' + "".join(f"\\x{b:02x}" for b in w) + '"\n' for w in ft.osc_dictionary()))
        extra.append(f"-dict={dictionary}")
    fuzz = {"osc": lambda: ft.OscTarget(model), "midi": lambda: ft.MidiTarget(model),
            "mapping": lambda: ft.MappingTarget(model), "modeljson": lambda: ft.ModelJsonTarget(model_dir)}[target]()
    import atexit

    def report():
        stats = {"cases_seen_by_target": fuzz.cases}
        for name in ("outcomes", "events"):
            if hasattr(fuzz, name):
                stats[name] = getattr(fuzz, name)
        if hasattr(fuzz, "server"):
            stats["server_counters"] = dict(fuzz.server.counters)
        if hasattr(fuzz, "controller"):
            stats["midi_counters"] = {k: v for k, v in fuzz.controller.counters.items() if v}
        (Path(workdir) / "stats.json").write_text(json.dumps(stats, indent=1, default=str))
    atexit.register(report)  # runs on a crash; libFuzzer's normal exit skips it, hence the periodic one

    def one(data: bytes):
        fuzz(data)
        if fuzz.cases % 5000 == 0:
            report()
    atheris.Setup([sys.argv[0], *libfuzzer_args, *extra, str(corpus)], one)
    atheris.Fuzz()


def _executed(text: str) -> int:
    """Cases one libFuzzer segment ran (also printed when it is interrupted)."""
    done = re.findall(r"stat::number_of_executed_units: (\d+)", text) or re.findall(r"Done (\d+) runs", text)
    return int(done[-1]) if done else 0


def run_target(target: str, args, model_dir: Path) -> dict:
    """Fuzz `target` until --runs cases in all, resuming (same corpus) after an interruption: this
    machine is shared, and a run killed from outside is continued, not lost. Rerunning the same
    command with the same --workdir continues from the segments already logged there."""
    workdir = Path(args.workdir or tempfile.gettempdir()) / f"vqs-fuzz-{target}"
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    texts = [p.read_text(errors="replace") for p in sorted(workdir.glob("segment-*.log"))]
    rc = 0
    while sum(_executed(t) for t in texts) < args.runs and len(texts) < 50:
        left = args.runs - sum(_executed(t) for t in texts)
        lf = [f"-runs={left}", f"-timeout={args.timeout}", "-rss_limit_mb=3000", "-print_final_stats=1",
              f"-artifact_prefix={workdir}/", "-max_len=" + str(args.max_len.get(target, 4096))]
        if args.seconds:
            lf.append(f"-max_total_time={args.seconds}")
        log = workdir / f"segment-{len(texts):02d}.log"
        with open(log, "w") as out:
            rc = subprocess.call([sys.executable, __file__, "--child", target, "--model", str(model_dir),
                                  "--workdir-child", str(workdir), "--", *lf], stdout=out, stderr=subprocess.STDOUT,
                                 cwd=ROOT)
        texts.append(log.read_text(errors="replace"))
        if list(workdir.glob("crash-*")) or list(workdir.glob("timeout-*")) or list(workdir.glob("oom-*")) or \
                args.seconds or "run interrupted" not in texts[-1] and rc != 0:
            break  # a finding (or a time-boxed run): stop; an interruption from outside: go on
    seconds = time.monotonic() - started
    text = "\n".join(texts)
    done = [(str(sum(_executed(t) for t in texts)), "0")]
    cov = re.findall(r"cov: (\d+) ft: (\d+)", text)
    crashes = sorted(p.name for p in workdir.glob("crash-*"))
    hangs = sorted(p.name for p in workdir.glob("timeout-*"))
    ooms = sorted(p.name for p in workdir.glob("oom-*"))
    stats_file = workdir / "stats.json"
    result = {
        "target": target, "runs": int(done[-1][0]) if done else None, "seconds": round(seconds, 1),
        "returncode": 0 if "run interrupted" in texts[-1] and sum(_executed(t) for t in texts) >= args.runs else rc,
        "crashes": len(crashes), "hangs": len(hangs), "ooms": len(ooms),
        "coverage_edges": int(cov[-1][0]) if cov else None, "features": int(cov[-1][1]) if cov else None,
        "workdir": str(workdir), "segments": len(texts),
        "interrupted_segments": sum("run interrupted" in t for t in texts),
        **(json.loads(stats_file.read_text()) if stats_file.exists() else {}),
    }
    if crashes or hangs or ooms or (rc != 0 and "run interrupted" not in texts[-1]):
        tail = text[-4000:]
        result["failure"] = tail
    return result


def main():
    if "--child" in sys.argv:
        i = sys.argv.index("--")
        ap = argparse.ArgumentParser()
        ap.add_argument("--child")
        ap.add_argument("--model")
        ap.add_argument("--workdir-child")
        a = ap.parse_args(sys.argv[1:i])
        child(a.child, a.model, a.workdir_child, sys.argv[i + 1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", default=list(TARGETS), help=f"any of {', '.join(TARGETS)} [all]")
    ap.add_argument("--runs", type=int, default=100000, help="cases per target (osc gets this many; see --share)")
    ap.add_argument("--share", default="osc=1,midi=1,mapping=0.2,modeljson=0.02",
                    help="fraction of --runs for each target (model.json loads ONNX sessions: slow)")
    ap.add_argument("--seconds", type=int, default=0, help="stop each target after this long (0: no limit)")
    ap.add_argument("--timeout", type=int, default=30,
                    help="wall-clock seconds one case may take before it counts as a hang (the targets also "
                         "check CPU time: 5 s)")
    ap.add_argument("--model", default=None, help="model folder (default: a random-weight test model made here)")
    ap.add_argument("--workdir", default=None, help="where corpora, logs and crash files go (default: /tmp)")
    ap.add_argument("--json", default=None, help="also write the summary here")
    args = ap.parse_args()
    args.max_len = {"osc": 8192, "midi": 512, "mapping": 4096, "modeljson": 8192}
    share = {k: float(v) for k, v in (p.split("=") for p in args.share.split(","))}
    model_dir = Path(args.model) if args.model else None
    if model_dir is None:
        from vqsynth.train.export import make_test_model

        model_dir = make_test_model(Path(tempfile.mkdtemp(prefix="vqs-fuzz-")) / "test-random")
    results = []
    total_runs = args.runs
    for target in args.targets:
        args.runs = max(int(total_runs * share.get(target, 1.0)), 1)
        r = run_target(target, args, model_dir)
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "failure"}), flush=True)
        if "failure" in r:
            print(r["failure"], flush=True)
    summary = {"cases": sum(r["runs"] or r.get("cases_seen_by_target", 0) for r in results),
               "crashes": sum(max(r["crashes"], int(r["returncode"] != 0 and not r["hangs"] and not r["ooms"]))
                              for r in results),
               "hangs": sum(r["hangs"] for r in results), "ooms": sum(r["ooms"] for r in results),
               "seconds": round(sum(r["seconds"] for r in results), 1), "targets": results,
               "command": " ".join(["perf/fuzz.py", *sys.argv[1:]])}
    print(f"fuzz: {summary['cases']} cases, {summary['crashes']} crashes, {summary['hangs']} hangs, "
          f"{summary['ooms']} out-of-memory, {summary['seconds']} s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return 0 if summary["crashes"] == summary["hangs"] == summary["ooms"] == 0 and \
        all(r["returncode"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
