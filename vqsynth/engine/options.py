"""Engine options shared by `serve` and `render`: one table, read by both parsers and the docs.

Each option's range is checked by the parser, before any work starts: a bad value is one line
naming the option and what it takes, exit code 2 (argparse's own), never a traceback later."""

from __future__ import annotations

import argparse

# name, type, default, (lo, hi) or None, help
ENGINE_OPTIONS = [
    ("model", str, None, None, "model folder or name under models/ (default: the one models/DEFAULT names)"),
    ("sample-rate", int, 48000, (8000, 192000), "output sample rate in Hz"),
    ("block-size", int, 128, (16, 8192), "audio block size in frames (a power of two avoids PipeWire crackle)"),
    ("polyphony", int, 16, (1, 256), "number of voices"),
    ("mapping", str, None, None, "MIDI/OSC mapping file (TOML; default: mappings/default.toml)"),
    ("prior", str, None, None, "token prior mode: markov or resample (default: the model's)"),
    ("seed", int, 0, (0, 2 ** 63 - 1), "seed of the token prior and the noise"),
    ("preset", str, None, None, "preset to start with: number, name or unique prefix (`vqsynth presets`)"),
]


def ranged(typ, lo, hi):
    """An argparse type that also checks lo <= value <= hi."""
    def parse(text):
        try:
            value = typ(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if typ is int else ' number'}: {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value
    parse.__name__ = typ.__name__
    return parse


def add_engine_arguments(parser):
    for name, typ, default, bounds, help_ in ENGINE_OPTIONS:
        kind = ranged(typ, *bounds) if bounds else typ
        where = f" {bounds[0]}..{bounds[1]}" if bounds and name != "seed" else ""
        parser.add_argument(f"--{name}", type=kind, default=default, help=f"{help_}{where} [{default}]")
    parser.add_argument("--no-attack-cache", action="store_true", help="render every note-on fresh (adds latency)")


def build_engine(args):
    """Model + Engine from parsed arguments; errors come out as UserError lines."""
    from vqsynth.cli import UserError
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.errors import InputError
    from vqsynth.model.folder import ModelError, load_model, resolve_model

    try:
        model = load_model(resolve_model(args.model))
        engine = Engine(model, sample_rate=args.sample_rate, block_size=args.block_size, polyphony=args.polyphony,
                        prior_mode=args.prior, seed=args.seed, attack_cache=not args.no_attack_cache)
        if getattr(args, "preset", None) is not None:
            engine.set_preset(args.preset)
            engine.attr_now[:] = engine.attr_target  # start there, no glide from the defaults
        return engine
    except (ModelError, InputError, ValueError) as exc:
        raise UserError(str(exc)) from None


def load_mapping_or_fail(path, model=None):
    from vqsynth.cli import UserError
    from vqsynth.control.mapping import MappingError, load_mapping, targets_for

    try:
        mapping = load_mapping(path)
        if model is not None:  # a target this model lacks is an error in the file too: say so here
            mapping.resolve(targets_for(model))
        return mapping
    except (MappingError, OSError) as exc:
        raise UserError(str(exc)) from None
