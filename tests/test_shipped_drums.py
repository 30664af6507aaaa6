"""The shipped drum model plays a GM drum part: kick, snare and hi-hat where the file has them.

A GM beat on channel 10 is rendered by vqsynth's live engine code (offline), and each of its hits
is compared with FluidSynth playing the same key from FluidR3 (the SoundFont the model never heard
for held-out kits, but whose Standard kit it trained on): a kick's energy sits low, a hi-hat's
high, a snare's in between, in both."""

from pathlib import Path

import mido
import numpy as np
import pytest

from vqsynth.control.mapping import load_mapping
from vqsynth.control.midi import MidiController
from vqsynth.engine.engine import Engine
from vqsynth.engine.offline import render
from vqsynth.model.folder import load_model, models_dir

DRUMS = models_dir() / "vqsynth-drums"
SR = 44100
FLUID = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
BEAT = [(0.0, 36), (0.25, 42), (0.5, 38), (0.75, 42), (1.0, 36), (1.25, 42), (1.5, 38), (1.75, 46)]

pytestmark = pytest.mark.skipif(not (DRUMS / "model.json").is_file(), reason="no shipped drum model")


def _bands(x):
    """(share of energy below 150 Hz, share above 6 kHz) over the first 80 ms of a hit."""
    seg = x[: int(0.08 * SR)]
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)))) ** 2
    f = np.fft.rfftfreq(len(seg), 1 / SR)
    total = spec.sum() + 1e-12
    return spec[f < 150].sum() / total, spec[f > 6000].sum() / total


def _vqsynth_hits():
    from vqsynth.model.drums import load_drum_model

    tonal = load_model(models_dir() / (models_dir() / "DEFAULT").read_text().strip())
    e = Engine(tonal, sample_rate=SR, block_size=128, drums=load_drum_model(DRUMS))
    ctl = MidiController(e, load_mapping())
    events = [(t, lambda at, m=mido.Message("note_on", channel=9, note=k, velocity=110): ctl.handle(m, at))
              for t, k in BEAT]
    out = render(e, events, 2.0, tail=0.3)
    assert e.drums.counters["drum_hits"] == len(BEAT)
    return {(t, k): out[int(t * SR):int(t * SR) + int(0.2 * SR)] for t, k in BEAT}


def _fluidsynth_hit(key):
    from vqsynth.data.render import Renderer

    with Renderer(str(FLUID), SR) as r:
        return r.note(128, 0, key, 110, 0.3, 0.3)


def test_a_gm_beat_plays_kick_snare_and_hi_hat_where_the_file_has_them():
    hits = _vqsynth_hits()
    ours = {k: np.array([_bands(x) for (t, kk), x in hits.items() if kk == k]).mean(0) for k in (36, 38, 42)}
    for (t, k), x in hits.items():
        assert np.abs(x[: int(0.05 * SR)]).max() > 0.02, f"no hit at {t} s (key {k})"
    real = {k: np.array(_bands(_fluidsynth_hit(k))) for k in (36, 38, 42)} if FLUID.is_file() else None
    for bands, who in ((ours, "vqsynth"), (real, "FluidSynth")):
        if bands is None:
            continue
        assert bands[36][0] > bands[38][0] > bands[42][0], (who, bands)  # low end: kick > snare > hat
        assert bands[42][1] > bands[38][1] > bands[36][1], (who, bands)  # top end: hat > snare > kick
