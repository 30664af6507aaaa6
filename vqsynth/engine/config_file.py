"""`serve --config FILE`: every serve setting from a TOML file, as an installation keeps them.

The file's keys are the command line's long option names (`sample-rate = 44100`, or with
underscores), so the parser is the one registry: each value is checked by the option's own type
and choices, and a bad one is refused as `file:line: key: why`, the way mapping files are.
Options given on the command line win over the file.

    # /etc/vqsynth/serve.toml
    audio = "jack"
    sample-rate = 48000
    preset = "vibraphone"
    osc-host = "0.0.0.0"
    midi-port = ["Arturia", "nanoKONTROL"]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def _line_of(text: str, key: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return i
    return 1


def config_argv(path, parser: argparse.ArgumentParser) -> list[str]:
    """The file's settings as command-line words for `parser`; raises UserError naming file:line:key."""
    import tomllib

    from vqsynth.cli import UserError

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        table = tomllib.loads(text)
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--config {path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc})") from None
    actions = {a.option_strings[-1].lstrip("-"): a for a in parser._actions if a.option_strings}
    argv = []
    for key, value in table.items():
        name = key.replace("_", "-")
        where = f"{path}:{_line_of(text, key)}: {key}"
        action = actions.get(name)
        if action is None or name in ("config", "help"):
            known = ", ".join(sorted(k for k in actions if k not in ("config", "help", "h")))
            raise UserError(f"{where}: not a serve setting (known: {known})")
        flag = action.option_strings[-1]
        if action.nargs == 0:  # a switch
            if not isinstance(value, bool):
                raise UserError(f"{where}: true or false")
            argv += [flag] if value else []
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not isinstance(action, argparse._AppendAction):
            raise UserError(f"{where}: one value, not a list")
        for v in values:
            if isinstance(v, (dict, list)) or isinstance(v, bool):
                raise UserError(f"{where}: {v!r} is not a value this setting takes")
            word = str(v)
            try:
                checked = action.type(word) if action.type else word
            except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
                raise UserError(f"{where}: {exc}") from None
            if action.choices is not None and checked not in action.choices:
                raise UserError(f"{where}: {v!r} is not one of {', '.join(map(str, action.choices))}")
            argv += [flag, word]
    return argv
