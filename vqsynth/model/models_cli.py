"""`vqsynth models`: list the model folders, validate each, show what it offers."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("folder", nargs="?", help="validate and describe one model folder")


def run(args):
    from rich.console import Console
    from rich.table import Table

    from vqsynth.cli import UserError
    import json

    from vqsynth.model.drums import load_drum_model
    from vqsynth.model.folder import ModelError, load_model, models_dir, resolve_model

    console = Console()
    if args.folder:
        folders = [resolve_model(args.folder)]
    else:
        root = models_dir()
        folders = sorted(p for p in root.iterdir() if (p / "model.json").exists()) if root.is_dir() else []
    if not folders:
        raise UserError(f"no model folders in {models_dir()}")
    default = (models_dir() / "DEFAULT").read_text().strip() if (models_dir() / "DEFAULT").is_file() else None
    table = Table(title="Models")
    for col in ("name", "folder", "rate", "pitches", "tokens", "presets", "status"):
        table.add_column(col)
    bad = 0
    for folder in folders:
        try:
            if json.loads((folder / "model.json").read_text()).get("kind") == "one-shot":
                d = load_drum_model(folder)
                table.add_row(d.name + " (drums)", str(folder), f"{d.sample_rate} Hz", "GM keys", "-",
                              f"{len(d.kits)} kits", "[green]ok[/green]")
                continue
            m = load_model(folder)
            table.add_row(m.name + (" (default)" if folder.name == default else ""), str(folder),
                          f"{m.sample_rate} Hz", f"{m.pitch_range[0]}..{m.pitch_range[1]}", str(m.n_tokens),
                          f"{len(m.presets)} (vqsynth presets)", "[green]ok[/green]")
        except (ModelError, ValueError, OSError) as exc:
            bad += 1
            table.add_row(folder.name, str(folder), "", "", "", "", f"[red]{exc}[/red]")
    console.print(table)
    return 1 if bad else 0
