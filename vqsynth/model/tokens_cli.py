"""`vqsynth tokens`: the token sequence of a WAV (through encoder.onnx) or of the prior."""

from __future__ import annotations


def add_arguments(parser):
    parser.add_argument("wav", nargs="?", help="a WAV file to encode (omit to show the prior)")
    parser.add_argument("--model", default=None, help="model folder or name (default: models/DEFAULT)")
    parser.add_argument("--hold", type=float, default=1.0, help="prior: seconds the key is held [1.0]")
    parser.add_argument("--velocity", type=int, default=100, help="prior: note velocity [100]")
    parser.add_argument("--seed", type=int, default=0, help="prior: seed [0]")
    parser.add_argument("--mode", choices=["markov", "resample"], default=None, help="prior mode (default: the model's)")
    parser.add_argument("--plot", default=None, help="also draw the sequence into this PNG")


def encode_wav(model, path):
    """Tokens of a WAV file: mixed to mono, resampled to the model's rate with soxr."""
    from vqsynth.cli import UserError

    try:
        return model.encode_file(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def prior_tokens(model, hold_s, velocity, seed):
    frames_per_s = model.sample_rate / model.hop
    note = model.prior.note(velocity, seed)
    held = [note.next() for _ in range(int(round(hold_s * frames_per_s)))]
    note.release()
    tail = []
    while not note.done and len(tail) < 10 * frames_per_s:
        tail.append(note.next())
    return held, tail


def run(args):
    from vqsynth.cli import UserError
    from vqsynth.model.folder import ModelError, load_model, resolve_model

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            raise UserError("--plot needs matplotlib: pip install matplotlib (or the 'train' extra)") from None
    try:
        model = load_model(resolve_model(args.model))
    except ModelError as exc:
        raise UserError(str(exc)) from None
    if args.mode:
        model.prior.mode = args.mode
    if args.wav:
        tokens, release_at = list(encode_wav(model, args.wav)), None
        print(f"{args.wav}: {len(tokens)} frames ({model.hop / model.sample_rate * 1000:.0f} ms each)")
    else:
        held, tail = prior_tokens(model, args.hold, args.velocity, args.seed)
        tokens, release_at = held + tail, len(held)
        print(f"prior ({model.prior.mode}), hold {args.hold} s, velocity {args.velocity}, seed {args.seed}: "
              f"{len(held)} held + {len(tail)} release frames")
    print(" ".join(str(t) for t in tokens))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 2.5))
        ax.step(range(len(tokens)), tokens, where="post", lw=0.8)
        if release_at is not None:
            ax.axvline(release_at, color="r", ls="--", lw=0.8, label="note-off")
            ax.legend()
        ax.set_xlabel("frame")
        ax.set_ylabel("token")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=90)
        print(f"plot: {args.plot}")
    return 0
