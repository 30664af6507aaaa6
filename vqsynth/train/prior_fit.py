"""Fit the token prior (vqsynth/model/prior.py) from the encoded corpus.

Input: for each note, its token sequence (one per frame), the frame of its note-off, its
velocity and the level of each frame. Output: the prior table model folders ship as prior.json.
Counting transitions is all there is to it: a Markov chain per phase, add-one smoothed inside the
phase's observed support so nothing impossible ever gets drawn.
"""

from __future__ import annotations

import numpy as np


def _transitions(seqs, n_tokens):
    counts = np.zeros((n_tokens, n_tokens))
    for s in seqs:
        if len(s) > 1:
            np.add.at(counts, (s[:-1], s[1:]), 1.0)
    return counts


def _smooth(counts, support):
    """Add a small count where the row token and the target are both seen in this phase."""
    c = counts.copy()
    c[np.ix_(support, support)] += 0.1
    return c


def fit_prior(tokens, note_off, velocity, frame_db, n_tokens=16, attack_frames=8, silence_db=-55.0,
              velocity_edges=(64, 100), n_examples=3):
    """tokens [N,T] int, note_off [N] frame index, velocity [N], frame_db [N,T] frame level in dB."""
    tokens = np.asarray(tokens)
    N, T = tokens.shape
    level = np.full(n_tokens, -120.0)
    for k in range(n_tokens):
        m = tokens == k
        if m.any():
            level[k] = float(np.median(frame_db[m]))
    silence = np.flatnonzero(level < silence_db)
    if silence.size == 0:
        silence = np.array([int(np.argmin(level))])
    is_silent = np.zeros(n_tokens, bool)
    is_silent[silence] = True
    edges = np.asarray(velocity_edges)
    buckets = np.searchsorted(edges, velocity, side="right")
    n_buckets = len(edges) + 1
    onset = np.ones((n_buckets, n_tokens)) * 0.01
    for b, t0 in zip(buckets, tokens[:, 0]):
        onset[b, t0] += 1.0
    attack = [tokens[i, :attack_frames + 1] for i in range(N)]
    hold = [tokens[i, attack_frames:note_off[i]] for i in range(N)]
    release = [tokens[i, note_off[i] - 1:] for i in range(N)]
    notes_per_bucket = np.bincount(buckets, minlength=n_buckets)
    # how long releases take to reach silence, for the forced end of the release chain
    lengths = []
    for i in range(N):
        after = np.flatnonzero(is_silent[tokens[i, note_off[i]:]])
        lengths.append(after[0] if after.size else T - note_off[i])
    release_frames = int(np.clip(np.percentile(lengths, 90), 5, 200))
    seen = lambda seqs: np.unique(np.concatenate([s for s in seqs if len(s)]))  # noqa: E731

    def release_table(seqs):
        rel = _transitions(seqs, n_tokens)
        rel[silence] = 0.0
        rel[silence, silence[0]] = 1.0  # silence is absorbing once reached
        return rel

    def per_bucket(seqs, make):
        """The phase's table for each velocity bucket from that bucket's notes only (the pooled
        table for a bucket with no notes; notes_per_bucket then says 0)."""
        pooled = make(seqs)
        return [make([s for s, b in zip(seqs, buckets) if b == k]) if notes_per_bucket[k] else pooled
                for k in range(n_buckets)], pooled

    smooth = lambda seqs: _smooth(_transitions(seqs, n_tokens), seen(seqs))  # noqa: E731
    attack_b, attack_all = per_bucket(attack, smooth)
    hold_b, hold_all = per_bucket(hold, smooth)
    release_b, rel = per_bucket(release, release_table)
    rnd = lambda tables: [np.round(t, 3).tolist() for t in tables]  # noqa: E731
    table = {
        "kind": "markov", "mode": "markov", "n_tokens": n_tokens, "silence": silence.tolist(),
        "token_level_db": np.round(level, 1).tolist(),
        "velocity_edges": list(map(int, edges)), "onset": np.round(onset, 3).tolist(),
        "notes_per_bucket": notes_per_bucket.tolist(),
        "attack": {"frames": attack_frames, "transition": attack_all.round(3).tolist(), "by_velocity": rnd(attack_b)},
        "hold": {"transition": hold_all.round(3).tolist(), "by_velocity": rnd(hold_b)},
        "release": {"frames": release_frames, "transition": rel.round(3).tolist(), "by_velocity": rnd(release_b)},
        "examples": _examples(tokens, note_off, velocity, buckets, n_examples),
    }
    return table


def _examples(tokens, note_off, velocity, buckets, n):
    """Real sequences for the thesis's resample mode: per velocity bucket, the most typical one
    (the sequence whose token histogram is closest to the bucket's mean histogram)."""
    out = []
    n_tokens = int(tokens.max()) + 1
    for b in np.unique(buckets):
        idx = np.flatnonzero(buckets == b)
        hist = np.stack([np.bincount(tokens[i], minlength=n_tokens) for i in idx]).astype(float)
        best = idx[np.argsort(((hist - hist.mean(0)) ** 2).sum(1))[:max(1, n // 3)]]
        for i in best:
            out.append({"velocity": int(velocity[i]), "tokens": tokens[i].tolist(), "note_off": int(note_off[i])})
    return out
