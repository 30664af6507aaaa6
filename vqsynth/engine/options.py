"""Engine options shared by `serve` and `render` (their rows are in settings.py) and the engine
built from them: a bad value is one line naming the option, never a traceback later."""

from __future__ import annotations


def build_engine(args):
    """Model + Engine from parsed arguments; errors come out as UserError lines."""
    from vqsynth.cli import UserError
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.errors import InputError
    from vqsynth.model.folder import ModelError, load_model, resolve_model

    try:
        model = load_model(resolve_model(args.model))
        engine = Engine(model, sample_rate=args.sample_rate, block_size=args.block_size, polyphony=args.polyphony,
                        prior_mode=args.prior, seed=args.seed, attack_cache=not args.no_attack_cache,
                        drums=load_drums(getattr(args, "drums", None)))
        if getattr(args, "kit", None) is not None:
            engine.set_drums(kit=args.kit)
        if getattr(args, "preset", None) is not None:
            engine.set_preset(args.preset)
            engine.jump_attrs()  # start there, no glide from the defaults
        return engine
    except (ModelError, InputError, ValueError) as exc:
        raise UserError(str(exc)) from None


def load_drums(name):
    """The drum model `name` (a folder or a name under models/), the shipped one if None and it
    is there, or None for "none" or when none ships."""
    from vqsynth.model.drums import load_drum_model
    from vqsynth.model.folder import models_dir, resolve_model

    if name is not None and str(name).lower() == "none":
        return None
    if name is None:
        default = models_dir() / "vqsynth-drums"
        return load_drum_model(default) if (default / "model.json").is_file() else None
    return load_drum_model(resolve_model(name))


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
