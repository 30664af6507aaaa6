"""Export trained (or freshly initialised) torch parts to a model folder (DESIGN.md contract).

`make_test_model` builds the small, clearly named test model that tests use until a trained
model ships: a randomly initialised generator and encoder and a hand-written token prior. It is
never the default model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vqsynth.model.constants import FAMILIES, TIMBRE_ATTRIBUTES
from vqsynth.model.prior import default_prior_table
from vqsynth.train.generator import Generator, GeneratorConfig
from vqsynth.train.vqcpc import Encoder


def export_generator(gen: Generator, path: Path):
    cfg = gen.cfg
    gen.eval()
    B, T = 2, 4
    args = (torch.randn(B, cfg.z_size), torch.full((B,), 60.0), torch.rand(B, cfg.n_attrs),
            torch.randint(0, cfg.n_tokens, (B, T)), gen.initial_state(B))
    torch.onnx.export(
        gen, args, str(path), dynamo=False, opset_version=17,
        input_names=["z", "pitch", "attrs", "tokens", "state"], output_names=["frames", "next_state"],
        dynamic_axes={"z": {0: "B"}, "pitch": {0: "B"}, "attrs": {0: "B"}, "tokens": {0: "B", 1: "T"},
                      "state": {0: "B"}, "frames": {0: "B", 1: "T"}, "next_state": {0: "B"}})


def export_encoder(enc: Encoder, path: Path, sample_rate: int):
    enc.eval()
    torch.onnx.export(
        enc, (torch.randn(1, sample_rate),), str(path), dynamo=False, opset_version=17,
        input_names=["audio"], output_names=["tokens"],
        dynamic_axes={"audio": {0: "B", 1: "N"}, "tokens": {0: "B", 1: "frames"}})


def attribute_table():
    table = [{"name": n, "kind": "timbre", "range": [0.0, 1.0], "default": 0.5, "doc": d}
             for n, d in TIMBRE_ATTRIBUTES]
    table += [{"name": f, "kind": "family", "range": [0.0, 1.0], "default": 1.0 / len(FAMILIES),
               "doc": f"soft label of the GM family '{f}' (teacher probability)"} for f in FAMILIES]
    return table


def write_model_json(folder: Path, name: str, cfg: GeneratorConfig, sample_rate: int, hop: int, **extra):
    meta = {
        "format": 1, "name": name, "version": extra.pop("version", "0.0"),
        "sample_rate": sample_rate, "hop": hop,
        "pitch_range": [cfg.pitch_lo, cfg.pitch_hi], "n_tokens": cfg.n_tokens, "z_size": cfg.z_size,
        "attributes": attribute_table(),
        "generator": {"file": "generator.onnx", "state_shape": [cfg.channels, cfg.state_frames],
                      "n_harmonics": cfg.n_harmonics, "n_noise": cfg.n_noise,
                      "band_limit_hz": sample_rate / 2, "config": cfg.to_dict()},
        "encoder": {"file": "encoder.onnx"},
        "prior": {"file": "prior.json"},
        **extra,
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def make_test_model(folder, seed: int = 0, sample_rate: int = 16000, hop: int = 160, channels: int = 64):
    """A random-weight model folder for tests (clearly named 'test-random'; never shipped)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = GeneratorConfig(channels=channels, n_attrs=len(TIMBRE_ATTRIBUTES) + len(FAMILIES))
    export_generator(Generator(cfg), folder / "generator.onnx")
    export_encoder(Encoder(sample_rate, hop, n_codes=cfg.n_tokens), folder / "encoder.onnx", sample_rate)
    (folder / "prior.json").write_text(json.dumps(default_prior_table(cfg.n_tokens), indent=1) + "\n")
    rng = np.random.default_rng(seed)
    presets = [{"name": f"random-{i}", "z": rng.standard_normal(cfg.z_size).round(4).tolist()} for i in range(4)]
    write_model_json(folder, "test-random", cfg, sample_rate, hop, presets=presets,
                     training_data="none: random weights, for tests only", metrics={})
    (folder / "README.md").write_text("# test-random\n\nRandom weights made by "
                                      "`vqsynth.train.export.make_test_model`, for tests only.\n")
    return folder


def export_model_folder(folder, name, gen: Generator, encoder: Encoder, prior_table: dict, sample_rate: int,
                        hop: int, presets: list, training_data: str, metrics: dict | None = None,
                        version: str = "1.0"):
    """Write a complete model folder from trained parts; validated by loading it back."""
    from vqsynth.model.folder import load_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    export_generator(gen, folder / "generator.onnx")
    export_encoder(encoder, folder / "encoder.onnx", sample_rate)
    (folder / "prior.json").write_text(json.dumps(prior_table) + "\n")
    write_model_json(folder, name, gen.cfg, sample_rate, hop, version=version, presets=presets,
                     training_data=training_data, metrics=metrics or {})
    load_model(folder)
    return folder
