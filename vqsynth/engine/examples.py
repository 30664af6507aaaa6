"""The model's demo folder, rendered through the live engine code (offline):

    vqsynth render --examples DIR [--model NAME]

chromatic.wav (every pitch of the range, 0.4 s each), held-10s.wav (one note held 10 s),
velocity-sweep.wav (one pitch at velocities 20..127), attr-<name>.wav (a held note while one
attribute sweeps 0 -> 1), latent.wav (notes while z moves from preset 0 to preset 1),
presets.wav (the same phrase on each featured preset in turn, one per GM family; else the first
16), and a spectrogram PNG of each over the whole band (presets.png names each segment).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _events_chromatic(e, lo, hi):
    step = 0.4
    ev = []
    for k, p in enumerate(range(lo, hi + 1)):
        ev += [(k * step, lambda t, p=p: e.note_on(p, 100, t=t)), (k * step + 0.3, lambda t, p=p: e.note_off(p, t=t))]
    return ev, (hi - lo + 1) * step


def _events_held(e, seconds=10.0, pitch=60):
    return [(0.0, lambda t: e.note_on(pitch, 100, t=t)), (seconds, lambda t: e.note_off(pitch, t=t))], seconds


def _events_velocity(e, pitch=60):
    vels = [20, 40, 60, 80, 100, 127]
    ev = []
    for k, v in enumerate(vels):
        ev += [(k * 0.8, lambda t, v=v: e.note_on(pitch, v, t=t)), (k * 0.8 + 0.6, lambda t: e.note_off(pitch, t=t))]
    return ev, len(vels) * 0.8


def _events_attr(e, name, pitch=60, seconds=4.0, steps=40):
    ev = [(0.0, lambda t: e.set_attr(name, 0.0, t=t)), (0.01, lambda t: e.note_on(pitch, 100, t=t))]
    for k in range(1, steps + 1):
        ev.append((seconds * k / steps, lambda t, v=k / steps: e.set_attr(name, v, t=t)))
    ev.append((seconds, lambda t: e.note_off(pitch, t=t)))
    return ev, seconds


def _events_latent(e, z0, z1, notes=8, pitch=55):
    ev = []
    for k in range(notes):
        z = (1 - k / (notes - 1)) * z0 + (k / (notes - 1)) * z1
        ev += [(k * 0.6, lambda t, z=z: e.set_z(z.tolist(), t=t)),
               (k * 0.6 + 0.01, lambda t: e.note_on(pitch, 100, t=t)),
               (k * 0.6 + 0.5, lambda t: e.note_off(pitch, t=t))]
    return ev, notes * 0.6


def showcase_presets(model, most=16) -> list:
    """The presets a demo plays: those flagged featured (one per GM family), else the first `most`."""
    featured = [i for i, p in enumerate(model.preset_table) if p.get("featured")]
    return (featured or list(range(len(model.presets))))[:most]


def _events_presets(e, phrase=(48, 55, 60, 64, 67), step=0.3, most=16):
    ev, t0, labels = [], 0.0, []
    for i in showcase_presets(e.model, most):
        ev.append((t0, lambda t, i=i: e.set_preset(i, t=t)))
        labels.append((t0, f"{i} {e.model.presets[i]}"))
        for k, p in enumerate(phrase):
            on = t0 + 0.05 + k * step
            ev += [(on, lambda t, p=p: e.note_on(p, 100, t=t)), (on + 0.9 * step, lambda t, p=p: e.note_off(p, t=t))]
        t0 += 0.05 + len(phrase) * step + 0.4
    return ev, t0, labels


def spectrogram_png(audio, sr, path, title, labels=()):
    """A spectrogram over the whole band, with `labels` [(time s, text)] marking segments."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12 if labels else 10, 3.4 if labels else 3))
    ax.specgram(audio + 1e-9, NFFT=1024, Fs=sr, noverlap=768, cmap="magma", vmin=-140)
    ax.set_ylim(0, sr / 2)
    for t, text in labels:
        ax.axvline(t, color="white", lw=0.6)
        ax.text(t + 0.03, 0.97 * sr / 2, text, color="white", fontsize=6, rotation=90, va="top")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("s")
    ax.set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def render_examples(make_engine, out_dir, plots=True):
    """make_engine() -> a fresh Engine; writes the WAVs (and PNGs) into out_dir; returns the paths."""
    import soundfile as sf

    from vqsynth.engine.offline import render

    out = Path(out_dir)
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ModuleNotFoundError:
            print("matplotlib is not installed: writing the WAVs without spectrograms "
                  "(pip install matplotlib, or the 'train' extra, for them)")
            plots = False
    out.mkdir(parents=True, exist_ok=True)
    probe = make_engine()
    model = probe.model
    lo, hi = model.pitch_range
    timbre = [a["name"] for a in model.attributes if a.get("kind") == "timbre"]
    z0 = model.preset_z(0) if model.presets else np.zeros(model.z_size, np.float32)
    z1 = model.preset_z(1) if len(model.presets) > 1 else -z0
    jobs = {"chromatic": lambda e: _events_chromatic(e, lo, hi), "held-10s": _events_held,
            "velocity-sweep": _events_velocity, "latent": lambda e: _events_latent(e, z0, z1)}
    if model.presets:
        jobs["presets"] = _events_presets
    jobs.update({f"attr-{n}": (lambda e, n=n: _events_attr(e, n)) for n in timbre})
    written = []
    for name, make_events in jobs.items():
        e = make_engine()
        e.attacks.enabled = False  # offline: no latency to hide, and attribute sweeps would rebuild it often
        events, seconds, *labels = make_events(e)
        audio = render(e, events, seconds, tail=1.0)
        path = out / f"{name}.wav"
        sf.write(path, audio, e.sample_rate, subtype="PCM_16")
        if plots:
            spectrogram_png(audio, e.sample_rate, out / f"{name}.png",
                            f"{model.name} {model.meta.get('version', '')}: {name}", labels[0] if labels else ())
        written.append(path)
    return written
