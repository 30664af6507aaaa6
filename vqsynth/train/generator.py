"""The streaming generator G(z, pitch, attributes, tokens) -> DSP control frames (torch).

Causal 1-D convolutions over frames, conditioned by FiLM from the static inputs (z, pitch,
attributes) and fed the VQCPC token of each frame. Each convolution keeps its own past
(cached_conv's idea), and all those pasts travel as one explicit `state` tensor, so the engine
can call the exported ONNX graph chunk by chunk and get the one-shot output (tests prove it).

Cost: per frame and voice about n_layers * kernel * channels^2 multiply-adds (6*3*128^2 ~ 0.3 M
at the defaults), well inside the 1-5 M budget of DESIGN.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class GeneratorConfig:
    z_size: int = 32
    n_attrs: int = 23
    n_tokens: int = 16
    channels: int = 128
    n_layers: int = 6
    kernel: int = 3
    n_harmonics: int = 64
    n_noise: int = 32
    pitch_lo: int = 21
    pitch_hi: int = 108

    @property
    def dilations(self):
        return [2 ** (i % 4) for i in range(self.n_layers)]

    @property
    def frame_size(self):
        return 1 + self.n_harmonics + self.n_noise

    @property
    def state_frames(self):
        return sum((self.kernel - 1) * d for d in self.dilations)

    def to_dict(self):
        return asdict(self)


def exp_sigmoid(x, max_value=2.0, exponent=math.log(10.0), floor=1e-7):
    """DDSP's positive activation: smooth, bounded, with a wide dynamic range."""
    return max_value * torch.sigmoid(x) ** exponent + floor


class CausalBlock(nn.Module):
    """Residual block: dilated causal conv, FiLM from the static condition, 1x1 conv."""

    def __init__(self, channels, kernel, dilation, cond_size):
        super().__init__()
        self.context = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.film = nn.Linear(cond_size, 2 * channels)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x, cond, past):
        full = torch.cat([past, x], dim=2)
        scale, shift = self.film(cond).unsqueeze(2).chunk(2, dim=1)
        h = torch.nn.functional.gelu(self.conv(full) * (1 + scale) + shift)
        return x + self.out(h), full[:, :, full.shape[2] - self.context:]


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        n_pitch_feats = 16
        self.register_buffer("pitch_freqs", torch.pi * 2.0 ** torch.arange(n_pitch_feats // 2).float() / 8.0)
        self.cond = nn.Sequential(nn.Linear(cfg.z_size + n_pitch_feats + 1 + cfg.n_attrs, 256), nn.GELU(),
                                  nn.Linear(256, 256), nn.GELU())
        self.token_emb = nn.Embedding(cfg.n_tokens, c)
        self.inp = nn.Linear(256, c)
        self.blocks = nn.ModuleList(CausalBlock(c, cfg.kernel, d, 256) for d in cfg.dilations)
        self.head = nn.Conv1d(c, cfg.frame_size, 1)

    def initial_state(self, batch: int):
        return torch.zeros(batch, self.cfg.channels, self.cfg.state_frames)

    def static_condition(self, z, pitch, attrs):
        p = (pitch - self.cfg.pitch_lo) / (self.cfg.pitch_hi - self.cfg.pitch_lo)
        ang = p.unsqueeze(1) * self.pitch_freqs * 8.0
        feats = torch.cat([z, torch.sin(ang), torch.cos(ang), p.unsqueeze(1), attrs], dim=1)
        return self.cond(feats)

    def trunk(self, z, pitch, attrs, tokens, state):
        """The causal trunk: features [B,C,T] before the output head, and the next state
        (perf/compare_heads.py puts other output heads on it)."""
        cond = self.static_condition(z, pitch, attrs)
        x = self.token_emb(tokens).transpose(1, 2) + self.inp(cond).unsqueeze(2)
        pasts, start = [], 0
        for block in self.blocks:
            past = state[:, :, start:start + block.context]
            start += block.context
            x, new_past = block(x, cond, past)
            pasts.append(new_past)
        return x, torch.cat(pasts, dim=2)

    def forward(self, z, pitch, attrs, tokens, state):
        """z [B,Z], pitch [B] (MIDI), attrs [B,A], tokens [B,T] int64, state [B,C,S] ->
        frames [B,T,1+H+Nb] (amplitude, harmonic distribution, noise magnitudes), next state."""
        x, next_state = self.trunk(z, pitch, attrs, tokens, state)
        out = self.head(x).transpose(1, 2)  # [B,T,F]
        H = self.cfg.n_harmonics
        amp = exp_sigmoid(out[..., :1] - 2.0)
        harm = torch.softmax(out[..., 1:1 + H], dim=-1)
        noise = exp_sigmoid(out[..., 1 + H:] - 4.0, max_value=0.5)
        return torch.cat([amp, harm, noise], dim=-1), next_state
