"""The token prior: writes one VQCPC token per frame for a live note (runtime, numpy only).

Two ways, selectable (model.json `prior.mode` or the engine option):
- "markov": a learned Markov chain in three phases: onset distribution by velocity, attack
  transitions for a fixed number of frames (onset, attack, hold and release each per velocity
  bucket where the table has `by_velocity` rows, as priors fitted on every velocity do), a hold chain that never enters a silence token (so
  a held note neither stops nor drifts into silence, and never loops audibly: it is a random
  walk), and a release chain after the note-off that is forced into silence after
  `release.frames`.
- "resample": the thesis's way: a real token sequence from the corpus, its hold part stretched
  by nearest-neighbour resampling. Live notes have no known length, so the hold part is walked
  back and forth (ping-pong) for as long as the key is down.
Same seed, same sequence.
"""

from __future__ import annotations

import copy

import numpy as np

PHASES = ("attack", "hold", "release", "done")


def _stochastic(m, allowed=None):
    m = np.asarray(m, dtype=np.float64).copy()
    if allowed is not None:
        m[..., ~allowed] = 0.0
    s = m.sum(-1, keepdims=True)
    return np.where(s > 0, m / np.where(s > 0, s, 1), 1.0 / m.shape[-1])


class TokenPrior:
    def __init__(self, table: dict, mode: str | None = None):
        self.n_tokens = int(table["n_tokens"])
        self.mode = mode or table.get("mode", "markov")
        if self.mode not in ("markov", "resample"):
            raise ValueError(f"unknown prior mode {self.mode!r} (markov or resample)")
        self.silence = np.zeros(self.n_tokens, dtype=bool)
        self.silence[table["silence"]] = True
        self.velocity_edges = np.asarray(table["velocity_edges"])
        self.onset = _stochastic(table["onset"], ~self.silence)
        buckets = len(self.onset)
        self.attack_frames = int(table["attack"]["frames"])
        self.attack = self._phase(table["attack"], buckets)
        self.hold = self._phase(table["hold"], buckets, ~self.silence)
        self.release_frames = int(table["release"]["frames"])
        self.release = self._phase(table["release"], buckets)
        self.silence_token = int(np.flatnonzero(self.silence)[0])
        self.examples = table.get("examples", [])
        if self.mode == "resample" and not self.examples:
            raise ValueError("prior mode 'resample' needs 'examples' (real token sequences) in the prior")
        # cumulative tables make one draw a searchsorted
        self._cum = {k: np.cumsum(getattr(self, k), -1) for k in ("onset", "attack", "hold", "release")}

    def _phase(self, phase: dict, buckets: int, allowed=None):
        """[buckets, T, T] transition tables: the phase's own per velocity bucket, else the shared one."""
        rows = phase.get("by_velocity") or [phase["transition"]] * buckets
        if len(rows) != buckets:
            raise ValueError(f"{len(rows)} velocity buckets of transitions, {buckets} onset rows")
        return _stochastic(np.asarray(rows, dtype=np.float64), allowed)

    def bucket(self, velocity: int) -> int:
        return int(np.searchsorted(self.velocity_edges, velocity, side="right"))

    def note(self, velocity: int, seed: int) -> "NoteTokens":
        return NoteTokens(self, velocity, seed)

    def draw(self, table: str, row, u: float, bucket: int | None = None) -> int:
        cum = self._cum[table][row] if bucket is None else self._cum[table][bucket, row]
        return int(min(np.searchsorted(cum, u * cum[-1], side="right"), self.n_tokens - 1))


class NoteTokens:
    """Tokens for one note: call next() once per frame, release() at the note-off."""

    def __init__(self, prior: TokenPrior, velocity: int, seed: int):
        self.prior = prior
        self.rng = np.random.default_rng(seed)
        self.phase = "attack"
        self.frame = 0  # frames written in the current phase
        self.token = None
        self.bucket = prior.bucket(velocity)
        if prior.mode == "resample":
            ex = min(prior.examples, key=lambda e: abs(e["velocity"] - velocity))
            self.example = np.asarray(ex["tokens"])
            self.note_off = int(ex["note_off"])
            self.hold_from = min(prior.attack_frames, self.note_off - 1)

    def fork(self, seed) -> "NoteTokens":
        """A copy that goes on from here with its own random stream (a cached attack's writer,
        continued by each note that starts from that attack). The prior and the example are
        shared, read-only: a deep copy cost a copy of every transition table per note-on."""
        twin = copy.copy(self)
        twin.rng = np.random.default_rng(seed)
        return twin

    @property
    def done(self) -> bool:
        return self.phase == "done"

    def release(self):
        if self.phase in ("attack", "hold"):
            self.phase, self.frame = "release", 0

    def next(self) -> int:
        p = self.prior
        u = self.rng.random()
        if self.prior.mode == "resample":
            tok = self._next_resampled()
        elif self.token is None:
            tok = p.draw("onset", self.bucket, u)
        elif self.phase == "attack":
            tok = p.draw("attack", self.token, u, self.bucket)
        elif self.phase == "hold":
            tok = p.draw("hold", self.token, u, self.bucket)
        elif self.phase == "release" and self.frame < p.release_frames:
            tok = p.draw("release", self.token, u, self.bucket)
        else:
            tok = p.silence_token
        self._advance(tok)
        return tok

    def _next_resampled(self) -> int:
        ex, f = self.example, self.frame
        if self.phase == "attack":
            return int(ex[f])
        if self.phase == "hold":  # ping-pong over the real hold segment
            span = max(self.note_off - self.hold_from, 1)
            k = f % (2 * span)
            return int(ex[self.hold_from + (k if k < span else 2 * span - 1 - k)])
        i = self.note_off + f
        return int(ex[i]) if i < len(ex) and f < self.prior.release_frames else self.prior.silence_token

    def _advance(self, tok):
        p = self.prior
        self.token = tok
        self.frame += 1
        if self.phase == "attack" and self.frame >= p.attack_frames:
            self.phase, self.frame = "hold", 0
        elif self.phase == "release" and self.frame > p.release_frames and p.silence[tok]:
            self.phase = "done"



def default_prior_table(n_tokens: int = 16) -> dict:
    """A hand-written prior for the random test model: token 0 silence, 1-3 attack, 4-11 hold,
    12-15 release. Trained models ship a prior learned from the encoded corpus instead."""
    eye = np.eye(n_tokens)
    attack = np.zeros((n_tokens, n_tokens))
    attack[:, 1:4] = 1.0
    attack[:, 4:12] = 0.5
    hold = 0.6 * eye + 0.05
    hold[:, :4] = 0.0
    hold[:, 12:] = 0.0
    release = np.zeros((n_tokens, n_tokens))
    release[:, 12:] = 1.0
    release[12:, 0] = 0.3
    release[0] = 0.0
    release[0, 0] = 1.0  # silence is absorbing
    onset = np.zeros((3, n_tokens))
    onset[:, 1:4] = [[3, 1, 1], [1, 3, 1], [1, 1, 3]]
    ex = [1, 2, 3] + [4 + (i % 8) for i in range(40)] + [12, 13, 14, 15, 0, 0]
    return {
        "kind": "markov", "mode": "markov", "n_tokens": n_tokens, "silence": [0],
        "velocity_edges": [64, 100], "onset": onset.tolist(),
        "attack": {"frames": 3, "transition": attack.tolist()},
        "hold": {"transition": hold.tolist()},
        "release": {"frames": 30, "transition": release.tolist()},
        "examples": [{"velocity": 100, "tokens": ex, "note_off": 43}],
    }
