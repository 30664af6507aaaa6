"""`vqsynth presets [--model M]`: every preset of a model, numbered as /vqsynth/preset and
--preset take them, with the GM program a program change reaches it by. `--drums [NAME]` lists
the kits of a drum model instead (numbered as /vqsynth/drums/kit and --kit take them)."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("--model", default=None, help="model folder or name under models/ [the default model]")
    parser.add_argument("find", nargs="?", help="show only what this name or prefix matches")
    parser.add_argument("--drums", nargs="?", const="", default=None,
                        help="list the kits of the drum model (NAME, or the shipped one) instead")


def run(args):
    from rich.console import Console
    from rich.table import Table

    from vqsynth.cli import UserError
    from vqsynth.model.folder import ModelError, load_model, resolve_model

    if args.drums is not None:
        return _kits(args)
    try:
        model = load_model(resolve_model(args.model))
    except ModelError as exc:
        raise UserError(str(exc)) from None
    rows = list(enumerate(model.preset_table))
    if args.find:
        try:
            rows = [rows[model.find_preset(args.find)]]
        except ValueError as exc:
            raise UserError(str(exc)) from None
    table = Table(title=f"Presets of {model.name} {model.meta.get('version', '')}".strip())
    for col in ("#", "name", "GM program", "family", "featured"):
        table.add_column(col, overflow="fold")
    for i, p in rows:
        table.add_row(str(i), p["name"], str(p.get("program", "—")), p.get("family", "—"),
                      "yes" if p.get("featured") else "")
    Console(width=100).print(table)
    return 0


def _kits(args):
    from rich.console import Console
    from rich.table import Table

    from vqsynth.cli import UserError
    from vqsynth.engine.options import load_drums
    from vqsynth.model.folder import ModelError

    try:
        drums = load_drums(args.drums or None)
    except ModelError as exc:
        raise UserError(str(exc)) from None
    if drums is None:
        raise UserError("no drum model (models/vqsynth-drums is not there; name one with --drums NAME)")
    rows = list(enumerate(drums.kits))
    if args.find:
        try:
            rows = [rows[drums.find_kit(args.find)]]
        except ValueError as exc:
            raise UserError(str(exc)) from None
    table = Table(title=f"Kits of {drums.name} {drums.meta.get('version', '')}".strip())
    for col in ("#", "name", "GM kit program", "keys"):
        table.add_column(col, overflow="fold")
    for i, k in rows:
        table.add_row(str(i), k.name, str(k.program), str(len(k.keys)))
    Console(width=100).print(table)
    return 0
