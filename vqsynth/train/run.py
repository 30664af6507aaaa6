"""What every training job shares: a run folder with a log, curves and resumable checkpoints.

A run folder holds `log.jsonl` (one line per logged step), `curves.png`, and `checkpoint.pt`
(models, optimisers, step, RNG states). Starting a job on an existing folder resumes it; a job
killed at any point loses at most `every` steps.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch


class Run:
    def __init__(self, folder, modules: dict, every: int = 200):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.modules = modules  # name -> nn.Module or optimiser (anything with state_dict)
        self.every = every
        self.step = 0
        self.started = time.time()
        self.elapsed_before = 0.0
        ckpt = self.folder / "checkpoint.pt"
        if ckpt.exists():
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            for name, module in modules.items():
                if name in state:  # a shipped, compact checkpoint leaves out the optimiser: it starts fresh
                    module.load_state_dict(state[name])
                else:
                    self.log_line({"event": "not in checkpoint, starts fresh", "module": name})
            self.step = state["step"]
            self.elapsed_before = state.get("elapsed", 0.0)
            torch.set_rng_state(state["torch_rng"])
            self.log_line({"event": "resumed", "step": self.step})

    @property
    def elapsed(self):
        return self.elapsed_before + time.time() - self.started

    def log_line(self, record: dict):
        with open(self.folder / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def log(self, **metrics):
        rec = {"step": self.step, "time": round(self.elapsed, 1)}
        rec.update({k: round(float(v), 5) for k, v in metrics.items()})
        self.log_line(rec)
        print(" ".join(f"{k}={v}" for k, v in rec.items()), flush=True)

    def save(self):
        state = {name: m.state_dict() for name, m in self.modules.items()}
        state.update(step=self.step, elapsed=self.elapsed, torch_rng=torch.get_rng_state())
        tmp = self.folder / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.folder / "checkpoint.pt")  # atomic: a kill never leaves half a file
        self.plot()

    def maybe_save(self):
        if self.step % self.every == 0:
            self.save()

    def plot(self):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        log = self.folder / "log.jsonl"
        if not log.exists():
            return
        rows = [json.loads(line) for line in open(log) if '"event"' not in line]
        keys = sorted({k for r in rows for k in r} - {"step", "time"})
        if not rows or not keys:
            return
        fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.2 * len(keys)), sharex=True, squeeze=False)
        for ax, k in zip(axes[:, 0], keys):
            pts = [(r["step"], r[k]) for r in rows if k in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=0.8)
            ax.set_ylabel(k, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        fig.tight_layout()
        fig.savefig(self.folder / "curves.png", dpi=80)
        plt.close(fig)
