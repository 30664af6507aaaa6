"""Probes: do the VQCPC tokens of a model carry the envelope, and not pitch or instrument?

Issue #3's test of meaning (thesis ch. 8.2.1): a linear probe that reads the envelope phase
(attack / sustain / release / silence) of a frame from the tokens around it should score high,
while a linear probe that reads a note's instrument family, octave or pitch class from its
token histogram should score near chance. Train probes on the corpus's train split, score them
on the test split (other instruments: the splits are by program), through the model's own
encoder.onnx, so the figures describe what ships.

    vqsynth train probes --corpus corpus --model models/vqsynth-gm
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PHASES = ["silence", "attack", "sustain", "release"]


def frame_levels(audio: np.ndarray, hop: int) -> np.ndarray:
    """Level in dB of each hop-long frame of audio [B, N] -> [B, N // hop]."""
    n = audio.shape[1] // hop * hop
    frames = audio[:, :n].reshape(audio.shape[0], -1, hop)
    return 10 * np.log10((frames.astype(np.float64) ** 2).mean(-1) + 1e-12)


def phase_labels(level_db: np.ndarray, note_off_frame: int, floor_db: float = 60.0,
                 max_attack_frames: int = 50) -> np.ndarray:
    """Per frame 0 silence (more than floor_db under the note's peak), 1 attack (onset to the
    level peak), 2 sustain (after the peak, key still down), 3 release (after the note-off)."""
    B, T = level_db.shape
    out = np.zeros((B, T), dtype=np.int64)
    for b in range(B):
        lv = level_db[b]
        sounding = lv > lv.max() - floor_db
        if not sounding.any():
            continue
        onset = int(np.flatnonzero(sounding)[0])
        end = min(onset + max_attack_frames, note_off_frame, T)
        peak = onset + int(np.argmax(lv[onset:max(end, onset + 1)]))
        f = np.arange(T)
        out[b] = np.where(~sounding, 0, np.where(f <= peak, 1, np.where(f < note_off_frame, 2, 3)))
        out[b, :onset] = 0
    return out


def encode(model, audio: np.ndarray, batch: int = 16) -> np.ndarray:
    """Tokens [B, frames] through the model's encoder.onnx."""
    parts = [model.encoder.run(None, {"audio": audio[i:i + batch].astype(np.float32)})[0]
             for i in range(0, audio.shape[0], batch)]
    return np.concatenate(parts)


def window_indices(tokens: np.ndarray, radius: int, n_tokens: int) -> np.ndarray:
    """For each frame, the ids (position * n_tokens + token) of the tokens radius frames around it;
    frames beyond the ends read a padding id."""
    B, T = tokens.shape
    pad = np.full((B, radius), -1)
    padded = np.concatenate([pad, tokens, pad], 1)
    cols = []
    for k in range(2 * radius + 1):
        tok = padded[:, k:k + T]
        cols.append(np.where(tok < 0, (2 * radius + 1) * n_tokens, k * n_tokens + tok))
    return np.stack(cols, -1).reshape(B * T, -1)


def fit_linear(x, y, n_classes, ids=False, n_inputs=None, steps=400, weight_decay=1e-4, seed=0):
    """A multinomial logistic regression (torch, full batch Adam): returns predict(x) -> labels.
    With ids=True, x holds feature indices (a sum of embeddings: a linear map of one-hots)."""
    import torch

    torch.manual_seed(seed)
    xt = torch.as_tensor(x)
    yt = torch.as_tensor(y, dtype=torch.long)
    if ids:
        layer = torch.nn.EmbeddingBag(n_inputs, n_classes, mode="sum")
        forward = layer
    else:
        mean, std = xt.mean(0), xt.std(0) + 1e-6
        layer = torch.nn.Linear(xt.shape[1], n_classes)
        forward = lambda v: layer((v - mean) / std)  # noqa: E731
    # classes weighted by 1/frequency: the probe must not win by always saying "silence"
    counts = torch.bincount(yt, minlength=n_classes).float()
    weights = torch.where(counts > 0, counts.sum() / (counts * n_classes).clamp(min=1), torch.zeros(()))
    opt = torch.optim.Adam(layer.parameters(), lr=0.05, weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(forward(xt), yt)
        loss.backward()
        opt.step()

    def predict(v):
        with torch.no_grad():
            return forward(torch.as_tensor(v)).argmax(-1).numpy()
    return predict


def scores(pred: np.ndarray, true: np.ndarray, n_classes: int, train_labels: np.ndarray) -> dict:
    present = [c for c in range(n_classes) if (true == c).any()]
    recall = {c: float((pred[true == c] == c).mean()) for c in present}
    majority = int(np.bincount(train_labels, minlength=n_classes).argmax())
    return {"accuracy": round(float((pred == true).mean()), 4),
            "balanced_accuracy": round(float(np.mean(list(recall.values()))), 4),
            "chance_balanced": round(1.0 / len(present), 4),
            "chance_majority": round(float((true == majority).mean()), 4),
            "classes": len(present), "recall": {str(c): round(v, 4) for c, v in recall.items()}}


def histograms(tokens: np.ndarray, n_tokens: int) -> np.ndarray:
    h = np.stack([np.bincount(t, minlength=n_tokens) for t in tokens]).astype(np.float32)
    return h / h.sum(1, keepdims=True)


def run_probes(corpus_dir, model_dir, out: Path | None = None, notes_per_split: int = 800, radius: int = 6,
               seed: int = 0) -> dict:
    from vqsynth.model.constants import FAMILIES
    from vqsynth.model.folder import load_model
    from vqsynth.train.pipeline import Notes

    model = load_model(Path(model_dir))
    rng = np.random.default_rng(seed)
    data = {}
    for split in ("train", "test"):
        notes = Notes(corpus_dir, split)
        if notes.sample_rate != model.sample_rate:
            raise ValueError(f"corpus at {notes.sample_rate} Hz, model at {model.sample_rate} Hz")
        rows = np.sort(rng.choice(len(notes), min(notes_per_split, len(notes)), replace=False))
        audio = notes.audio(rows)
        tokens = encode(model, audio)
        levels = frame_levels(audio, model.hop)[:, :tokens.shape[1]]
        phase = phase_labels(levels, int(round(notes.note_off_s * model.sample_rate / model.hop)))
        data[split] = dict(tokens=tokens, phase=phase, family=notes.family[rows].astype(np.int64),
                           pitch=notes.pitch[rows].astype(np.int64), program=notes.corpus.labels["program"][notes.index[rows]])
        print(f"{split}: {len(rows)} notes encoded", flush=True)
    n, result = model.n_tokens, {"model": model.name, "notes_per_split": notes_per_split, "window_radius": radius}
    tr, te = data["train"], data["test"]
    result["programs"] = {"train": int(len(np.unique(tr["program"]))), "test": int(len(np.unique(te["program"]))),
                          "shared": int(len(np.intersect1d(tr["program"], te["program"])))}
    # envelope phase from the tokens around each frame
    # (fitted on 40,000 random train frames: plenty for a linear map of 209 one-hots, and fast)
    fit_rows = rng.choice(tr["phase"].size, min(40000, tr["phase"].size), replace=False)
    y_tr, y_te = tr["phase"].reshape(-1), te["phase"].reshape(-1)
    for key, r in (("phase", radius), ("phase_one_token", 0)):
        x_tr, x_te = window_indices(tr["tokens"], r, n), window_indices(te["tokens"], r, n)
        predict = fit_linear(x_tr[fit_rows], y_tr[fit_rows], len(PHASES), ids=True, n_inputs=(2 * r + 1) * n + 1)
        result[key] = scores(predict(x_te), y_te, len(PHASES), y_tr)
        result[key]["names"] = PHASES
    # what should NOT be in a note's tokens: family, octave, pitch class (from its token histogram)
    h_tr, h_te = histograms(tr["tokens"], n), histograms(te["tokens"], n)
    for name, f, k in (("family", lambda d: d["family"], len(FAMILIES)), ("octave", lambda d: d["pitch"] // 12, 10),
                       ("pitch_class", lambda d: d["pitch"] % 12, 12)):
        predict = fit_linear(h_tr, f(tr), k)
        result[name] = scores(predict(h_te), f(te), k, f(tr))
    if out is not None:
        Path(out).write_text(json.dumps(result, indent=1))
    return result


def table(result: dict) -> str:
    lines = ["| probe (linear, test split) | accuracy | balanced accuracy | chance (balanced / majority) |",
             "|---|---|---|---|"]
    labels = {"phase": f"envelope phase from tokens ±{result['window_radius']} frames",
              "phase_one_token": "envelope phase from the frame's token", "family": "GM family from token histogram",
              "octave": "octave from token histogram", "pitch_class": "pitch class from token histogram"}
    for key, label in labels.items():
        r = result[key]
        lines.append(f"| {label} | {r['accuracy']:.3f} | {r['balanced_accuracy']:.3f} | "
                     f"{r['chance_balanced']:.3f} / {r['chance_majority']:.3f} |")
    return "\n".join(lines)
