"""`vqsynth presets [--model M]`: every preset of a model, numbered as /vqsynth/preset and
--preset take them, with the GM program a program change reaches it by."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("--model", default=None, help="model folder or name under models/ [the default model]")
    parser.add_argument("find", nargs="?", help="show only what this name or prefix matches")


def run(args):
    from rich.console import Console
    from rich.table import Table

    from vqsynth.cli import UserError
    from vqsynth.model.folder import ModelError, load_model, resolve_model

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
