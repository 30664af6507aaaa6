"""`vqsynth` command line: one table of subcommands, each owned by the part that implements it.

Each entry names a module that defines `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their command runs, so `serve` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = [
    # name, module, one line of help
    ("serve", "vqsynth.engine.serve_cli", "play the model live from MIDI and OSC"),
    ("render", "vqsynth.engine.render_cli", "render a MIDI file to WAV through the engine"),
    ("devices", "vqsynth.engine.devices_cli", "list audio devices and MIDI ports"),
    ("learn", "vqsynth.control.learn_cli", "MIDI learn on a running server: bind the next CC moved to a parameter"),
    ("models", "vqsynth.model.models_cli", "list and validate model folders"),
    ("presets", "vqsynth.model.presets_cli", "list a model's presets (number, name, GM program, family)"),
    ("tokens", "vqsynth.model.tokens_cli", "print the token sequence of a WAV or of the prior"),
    ("data", "vqsynth.data.cli", "build the training corpus"),
    ("train", "vqsynth.train.cli", "train models (needs the 'train' extra)"),
    ("eval", "vqsynth.eval.cli", "evaluate a model folder"),
]


class UserError(Exception):
    """An error the user can fix: printed as one clear line, never as a traceback."""


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("vqsynth")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqsynth", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vqsynth {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = {}
    for name, module, help_ in COMMANDS:
        p = sub.add_parser(name, help=help_)
        parser.commands[name] = p
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("vqsynth"):
                p.set_defaults(_missing=f"'{name}' is not built yet")
            else:
                p.set_defaults(_missing=f"'{name}' needs {exc.name}: pip install -e '.[train]'")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "config", None):  # a settings file: its words first, so the command line wins
        from vqsynth.engine.config_file import config_argv

        words = list(sys.argv[1:] if argv is None else argv)
        try:
            before = config_argv(args.config, parser.commands[args.command])
        except UserError as exc:
            print(f"vqsynth {args.command}: {exc}", file=sys.stderr)
            return 2
        at = words.index(args.command)
        args, extra = parser.parse_known_args(words[:at + 1] + before + words[at + 1:])
    if extra:  # say it with the subcommand's own usage, not the top level's
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "_missing", None):
        print(f"vqsynth: {args._missing}", file=sys.stderr)
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except UserError as exc:
        print(f"vqsynth {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
