"""The training corpus: a tiny real FluidSynth build (3 programs, 2 drum kits), its labels, its
storage contract (checksums, resume, no-op rerun) and the timbral attributes."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vqsynth.cli import UserError
from vqsynth.data import timbre
from vqsynth.data.build import assign_splits, build
from vqsynth.data.cli import DEFAULT_SOUNDFONT, main
from vqsynth.data.corpus import SPLITS, Corpus, verify
from vqsynth.data.gm import DRUM_CLASSES, DRUM_KEYS
from vqsynth.data.pitch import tuning_cents
from vqsynth.eval.metrics import track_pitch

PIANO, FLUTE, SAW = 0, 73, 81
TINY = dict(programs=[PIANO, FLUTE, SAW], pitches=[36, 38, 42, 48, 49, 60, 72], velocities=[100], kits=[0, 25])


def _build(out):
    try:
        return build(out, [DEFAULT_SOUNDFONT], workers=2, **TINY)
    except UserError as exc:
        pytest.fail(f"the corpus tests need FluidSynth and {DEFAULT_SOUNDFONT} "
                    f"(apt-get install libfluidsynth3 fluid-soundfont-gm; CI installs them): {exc}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    stats = _build(out)
    assert stats["rendered"] == 3 * 7 + 2 * 7  # 3 programs x 7 pitches; 2 kits x 7 GM keys
    return out


def _snapshot(folder: Path):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_files_exist_and_are_not_silent(tiny):
    c = Corpus(tiny)
    assert len(c) > 0 and (tiny / "manifest.json").exists() and (tiny / "labels.npy").exists()
    for entry in c.manifest["shards"]:
        assert (tiny / entry["audio"]["file"]).exists() and (tiny / entry["labels"]["file"]).exists()
    for i in range(len(c)):
        x = c.audio(i)
        assert x.dtype == np.float32 and len(x) == (64000 if c.labels[i]["subset"] == "tonal" else 16000)
        assert np.abs(x).max() > 0.9 and np.sqrt(np.mean(x ** 2)) > 1e-3  # peak-normalised, not silent
        assert np.abs(c.audio(i, raw_level=True)).max() == pytest.approx(c.labels[i]["gain"], rel=1e-3)


def test_rendered_pitch_matches_the_label(tiny):
    c = Corpus(tiny)
    tonal = np.flatnonzero(c.labels["subset"] == "tonal")
    assert len(tonal) == 21
    for i in tonal:
        lab = c.labels[i]
        cents = tuning_cents(c.audio(i), c.sample_rate, int(lab["pitch"]))
        assert abs(cents) < 50, (lab["preset"], lab["pitch"], cents)
        assert lab["tuning_cents"] == pytest.approx(cents, abs=1e-3)
        # and by a tracker nobody here wrote: pYIN (librosa), on half a second of the hold
        target = 440.0 * 2 ** ((int(lab["pitch"]) - 69) / 12)
        f0, voiced = track_pitch(c.audio(i)[int(0.3 * c.sample_rate):int(0.8 * c.sample_rate)], c.sample_rate, target)
        assert voiced.mean() > 0.5 and abs(np.median(1200 * np.log2(f0[voiced] / target))) < 50, lab["preset"]


def test_labels_are_complete(tiny):
    c = Corpus(tiny)
    lab = c.labels
    tonal, drums = lab[lab["subset"] == "tonal"], lab[lab["subset"] == "drums"]
    assert set(tonal["program"]) == {PIANO, FLUTE, SAW} and (tonal["family"] == tonal["program"] // 8).all()
    assert (tonal["kit"] == -1).all() and (tonal["drum_class"] == -1).all()
    assert set(drums["kit"]) == {0, 25} and (drums["program"] == -1).all() and (drums["family"] == -1).all()
    for row in drums:
        assert DRUM_CLASSES[row["drum_class"]] == DRUM_KEYS[int(row["pitch"])][1]
    assert (lab["velocity"] == 100).all() and (lab["soundfont"] == "FluidR3_GM").all()
    assert all(lab["preset"]) and (lab["gain"] > 0).all() and np.isfinite(lab["loudness_lufs"]).all()
    for name in timbre.ATTRIBUTES:
        assert ((lab[name] >= 0) & (lab[name] <= 1)).all() and np.isfinite(lab["raw_" + name]).all()
    assert set(lab["split"]) <= {0, 1, 2}
    for inst in set(lab["instrument"]):  # splits by instrument: never one instrument in two splits
        assert len(set(lab["split"][lab["instrument"] == inst])) == 1
    drums = lab[lab["subset"] == "drums"]
    for kit in set(drums["kit"]):  # drums split by whole kit (by name): no kit's hits in two splits
        assert len(set(drums["split"][drums["kit"] == kit])) == 1
    for i, row in enumerate(lab):  # shard/row point at the note the labels describe
        entry = c.manifest["shards"][row["shard"]]
        assert (entry["subset"], entry["program"]) == (row["subset"], row["kit"] if row["kit"] >= 0 else row["program"])
    stats = c.manifest["stats"]
    assert stats["notes"]["tonal"]["kept"] + sum(stats["notes"]["tonal"]["dropped"].values()) == 21
    assert set(stats["attributes"]["tonal"]["brightness"]) == {"percentiles", "values", "mean"}


def test_rerun_is_a_noop(tiny, capsys):
    before = _snapshot(tiny)
    assert main(["build", "--out", str(tiny), "--programs", "0,73,81", "--pitches", "36,38,42,48,49,60,72",
                 "--velocities", "100", "--kits", "0,25"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert _snapshot(tiny) == before


def test_a_killed_build_resumes_where_it_stopped(tiny, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(tiny, out)
    manifest = json.loads((out / "manifest.json").read_text())
    lost = manifest["shards"].pop()  # as if killed after writing this shard's files, before the manifest
    del manifest["labels"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / (lost["audio"]["file"] + ".tmp")).write_bytes(b"half a file")
    stats = _build(out)
    assert stats["rendered"] == lost["requested"]
    assert (np.load(out / "labels.npy")["digest"] == np.load(tiny / "labels.npy")["digest"]).all()


def test_a_corrupted_shard_is_detected(tiny, tmp_path):
    out = tmp_path / "c"
    shutil.copytree(tiny, out)
    shards = Corpus(out).manifest["shards"]
    assert verify(out) == 1 + sum(len({"audio", "labels", "targets"} & set(s)) for s in shards)
    assert any("targets" in s for s in shards)
    shard = out / Corpus(out).manifest["shards"][1]["audio"]["file"]
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF  # same size, one sample changed
    shard.write_bytes(bytes(data))
    with pytest.raises(UserError, match=str(shard)):
        verify(out)
    assert main(["verify", "--out", str(out)]) == 2
    shard.write_bytes(bytes(data[:-1000]))  # truncated: caught on open, without hashing
    with pytest.raises(UserError, match=f"corrupted corpus file {shard}"):
        Corpus(out).batch(np.arange(len(Corpus(out))))


def test_a_brighter_program_scores_brighter(tiny):
    lab = Corpus(tiny).labels
    mean = {p: lab["raw_brightness"][lab["program"] == p].mean() for p in (FLUTE, SAW)}
    assert mean[SAW] > mean[FLUTE] + 3
    assert lab["brightness"][lab["program"] == SAW].mean() > lab["brightness"][lab["program"] == FLUTE].mean()


def test_batch_sampler(tiny):
    c = Corpus(tiny)
    idx = c.split("train")
    assert len(idx) and set(c.labels["split"][idx]) == {0}
    audio, lab = c.batch(idx[:5], length=8000, rng=np.random.default_rng(1))
    again, _ = c.batch(idx[:5], length=8000, rng=np.random.default_rng(1))
    assert audio.shape == (5, 8000) and audio.dtype == np.float32 and np.array_equal(audio, again)
    onset, _ = c.batch(idx[:1], length=100)
    assert np.array_equal(onset[0], c.audio(int(idx[0]))[:100])
    assert c.attributes(idx[:5]).shape == (5, len(timbre.ATTRIBUTES))
    full, _ = c.batch([int(np.flatnonzero(c.labels["subset"] == "drums")[0])], length=20000)
    assert not full[0, 16000:].any()  # a 1 s drum note is zero-padded


def test_splits_are_80_10_10_by_unit_and_seeded():
    units = [("tonal", "sf", p) for p in range(128)]
    strata = [p // 8 for p in range(128)]
    a = assign_splits(units, strata, seed=0)
    assert np.bincount(a).tolist() == [102, 13, 13]
    assert (a == assign_splits(units, strata, seed=0)).all() and (a != assign_splits(units, strata, seed=1)).any()
    assert all(len(set(a[np.array(strata) == f])) >= 2 for f in range(16))  # every family spans splits


def test_clear_errors(tmp_path, capsys):
    assert main(["build", "--out", str(tmp_path / "x"), "--soundfont", str(tmp_path / "none.sf2")]) == 2
    assert "SoundFont not found" in capsys.readouterr().err
    assert main(["info", "--out", str(tmp_path / "nothing")]) == 2
    assert "no corpus" in capsys.readouterr().err


# ----------------------------------------------------------------------- attributes, controlled cases

SR = 16000
T = np.arange(2 * SR) / SR


def _noise(seed=0):
    return np.random.default_rng(seed).standard_normal(len(T)) * 0.1


def _lowpass(x, hz):
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(6, hz / (SR / 2), output="sos"), x)


def test_attributes_move_the_right_way():
    noise, dark = _noise(), _lowpass(_noise(), 1000)
    assert timbre.brightness(noise, SR) > timbre.brightness(dark, SR) + 5
    assert timbre.sharpness(noise, SR) > timbre.sharpness(dark, SR) + 5
    low, high = 0.5 * np.sin(2 * np.pi * 60 * T), 0.5 * np.sin(2 * np.pi * 2000 * T)
    assert timbre.boominess(low, SR) > timbre.boominess(high, SR) + 5
    assert timbre.depth(low, SR) > timbre.depth(high, SR) + 5
    beating = 0.3 * (np.sin(2 * np.pi * 400 * T) + np.sin(2 * np.pi * 430 * T))
    assert timbre.roughness(beating, SR) > timbre.roughness(0.3 * np.sin(2 * np.pi * 400 * T), SR) + 5
    decay = np.exp(-T * 8)
    click = noise * decay
    swell = _noise(1) * np.minimum(T / 0.5, 1.0) * decay[::-1]
    assert timbre.hardness(click, SR) > timbre.hardness(swell, SR) + 5
    assert all(0 <= v <= 1 for v in timbre.attributes(click, SR).values())


def test_loudness_of_a_reference_tone():
    tone = 0.1 * np.sin(2 * np.pi * 1000 * T)  # BS.1770: a full-scale 1 kHz sine reads -3.01 LUFS
    assert timbre.loudness_lufs(tone, SR) == pytest.approx(-23.0, abs=0.3)
    assert timbre.loudness_lufs(np.zeros(SR), SR) == float("-inf")
    with pytest.raises(ValueError, match="silent"):
        timbre.attributes(np.zeros(SR), SR)


def test_a_note_right_after_one_cut_on_the_same_key_starts_clean():
    """All-sounds-off kills voices at the next block: unflushed, a violin C4 after one cut at full
    level began with its last samples (0.16 of full scale; a 1-ms attack for a 130-ms one)."""
    from vqsynth.data.render import Renderer

    fresh = Renderer(DEFAULT_SOUNDFONT, 44100).note(0, 40, 60, 90, 0.5, 0.5)
    r = Renderer(DEFAULT_SOUNDFONT, 44100)
    r.note(0, 40, 60, 90, 0.5, 0.5)  # cut while it sounds: no note-off before the end
    again = r.note(0, 40, 60, 90, 0.5, 0.5)
    assert np.abs(fresh[:441]).max() < 0.5 * np.abs(fresh).max()  # the bow takes time to speak
    assert np.abs(again - fresh).max() < 0.01 * np.abs(fresh).max()
