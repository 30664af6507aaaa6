"""The follow part (control/follow.py): an audio input plays a voice. Real signals: FluidSynth
phrases with vibrato and glides, and tone bursts whose times are known; measured with librosa
(pYIN, RMS), not with the follower's own tracker."""

import numpy as np
import pytest
import soundfile as sf

from vqsynth.cli import main
from vqsynth.control.follow import FollowSettings, follow_file_events
from vqsynth.control.pitch_track import window_size, yin
from vqsynth.engine.engine import Engine
from vqsynth.engine.offline import render
from rig import wait_until

SR = 48000
HOP = 480
NOTES = [(67, 0.3, 0.9), (69, 1.0, 1.5), (71, 1.6, 2.4), (74, 2.7, 3.6)]


@pytest.fixture(scope="module")
def phrases(tmp_path_factory):
    from vqsynth.data.cli import DEFAULT_SOUNDFONT
    from vqsynth.data.render import Renderer

    folder = tmp_path_factory.mktemp("phrases")
    out = {}
    with Renderer(DEFAULT_SOUNDFONT, SR) as r:
        for name, program in (("violin", 40), ("flute", 73)):
            out[name] = folder / f"{name}.wav"
            sf.write(out[name], r.phrase(program, NOTES, 4.0), SR)
    return out


def _pyin(y):
    import librosa

    f0, voiced, _ = librosa.pyin(y, fmin=60, fmax=1600, sr=SR, frame_length=2048, hop_length=HOP)
    return np.where(voiced, f0, np.nan)


def _rms_db(y):
    import librosa

    return 20 * np.log10(librosa.feature.rms(y=y, frame_length=2 * HOP, hop_length=HOP)[0] + 1e-9)


def _within(f_ref, f_got, cents=50):
    voiced = np.isfinite(f_ref)
    off = 1200 * np.abs(np.log2(f_got[voiced] / f_ref[voiced]))
    return float(np.mean(np.nan_to_num(off, nan=1e9) <= cents))


def test_yin_finds_the_pitch_pyin_finds_in_fluidsynth_phrases(phrases):
    n = window_size(SR, 60)
    for name, path in phrases.items():
        y = sf.read(path, dtype="float32")[0]
        ref = _pyin(y)
        # YIN's window ends at the frame's end; pYIN's frame k is centred on k * HOP
        ours = np.array([yin(np.pad(y, (n, 0))[k * HOP + 1024 - n + n:k * HOP + 1024 + n], SR)[0]
                         for k in range(ref.size)])
        ours = np.where(ours > 0, ours, np.nan)
        assert np.isfinite(ref).sum() > 250, name
        assert _within(ref, ours) >= 0.9, (name, _within(ref, ours))


def test_yin_says_unvoiced_for_noise_and_silence():
    n = window_size(SR, 60)
    assert yin(np.zeros(n, np.float32), SR) == (0.0, 1.0)
    noise = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    assert yin(noise, SR)[0] == 0.0


def test_yin_takes_the_period_not_a_formant_ripple_in_its_dip():
    """A voice's formant (here harmonics around the 30th) ripples the period's dip: the first
    lag under the threshold was 10 short of the period (173.6 Hz for 162; a sung syllable's first
    90 ms were a semitone sharp). The deepest lag just after it is the period."""
    sr, f0 = 48000, 162.0
    t = np.arange(window_size(sr, 60.0)) / sr
    for formant in (2.0, 8.0):
        x = sum((1 / k + formant * np.exp(-((k - 30) / 1.5) ** 2)) * np.sin(2 * np.pi * k * f0 * t + 0.3 * k)
                for k in range(1, 40))
        f, aperiodicity = yin(x, sr, voicing=0.25)
        assert f == pytest.approx(f0, rel=0.005) and aperiodicity < 0.05


def test_the_follow_part_plays_the_phrase_at_its_pitch_and_level(phrases, tmp_path):
    """Through `vqsynth render --input-file` with the shipped model: the output's pitch is the
    input's (pYIN on both), its level follows the input's."""
    for name, path in phrases.items():
        out = tmp_path / f"{name}.wav"
        assert main(["render", "--input-file", str(path), "-o", str(out), "--tail", "0.5", "--sample-rate", str(SR),
                     "--follow-preset", name]) == 0
        y_in = sf.read(path, dtype="float32")[0]
        y_out = sf.read(out, dtype="float32")[0].mean(axis=1)[:y_in.size]
        within = _within(_pyin(y_in), _pyin(y_out))
        assert within >= 0.8, (name, within)  # perf/follow.py measures it: 0.93-0.96
        li, lo = np.maximum(_rms_db(y_in), -60), np.maximum(_rms_db(y_out), -60)
        corr = np.corrcoef(li, lo[:li.size])[0, 1]
        assert corr >= 0.7, (name, corr)  # perf/follow.py: 0.86-0.87


def _bursts(spans, f0s, seconds=2.0):
    """Harmonic tones over `spans` [(start_s, end_s)], 5-ms fades, silence elsewhere."""
    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t)
    for (a, b), f in zip(spans, f0s):
        on = (t >= a) & (t < b)
        tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in range(1, 6))
        fade = np.clip(np.minimum(t - a, b - t) / 0.005, 0, 1)
        y += np.where(on, 0.1 * tone * fade, 0.0)
    return y.astype(np.float32)


def _follow(model, y, tmp_path, **settings):
    path = tmp_path / "in.wav"
    sf.write(path, y, SR)
    e = Engine(model, sample_rate=SR, block_size=1024, attack_cache=False)
    events, length, follower = follow_file_events(e, path, FollowSettings(**settings))
    out = render(e, events, length, tail=0.6, channels=1, chunk=1)
    return e, follower, out


def test_notes_open_and_close_where_the_input_does(test_model, tmp_path):
    spans = [(0.3, 0.8), (1.2, 1.5)]
    e, follower, out = _follow(test_model, _bursts(spans, [220.0, 330.0]), tmp_path)
    assert follower.counters["notes"] == 2 and e.counters["notes"] == 2
    level = _rms_db(out)  # 10-ms frames: frame k is centred on k * 10 ms
    sounding = level > -120
    for (a, b), after in zip(spans, [s[0] for s in spans[1:]] + [len(level) / 100]):
        first = int(np.flatnonzero(sounding[int(a * 100) - 20:])[0]) + int(a * 100) - 20
        assert abs(first / 100 - a) <= 0.03, (a, first / 100)  # it opens at the input's onset
        assert not sounding[int((b + 0.05) * 100):int(after * 100) - 2].any(), (b, after)  # and closes at its end
    assert not sounding[:int(0.28 * 100)].any()  # nothing before the first
    assert not e.slots.active.any()  # and nothing left sounding


def test_silence_in_is_silence_out(test_model, tmp_path):
    e, follower, out = _follow(test_model, np.zeros(SR, np.float32), tmp_path)
    assert follower.counters["notes"] == 0 and e.counters["notes"] == 0
    assert not np.any(out)


def test_the_note_takes_its_tokens_from_the_input_frame_by_frame(test_model, tmp_path):
    """The envelope: one encoder token appended to the note per frame of input it sounds for."""
    e, follower, out = _follow(test_model, _bursts([(0.2, 0.7)], [262.0], seconds=1.0), tmp_path)
    tokens = [n for n in e.slots.notes if n is not None][0].fixed_tokens
    frames = follower.counters["frames"]
    assert 45 <= len(tokens) <= frames, (len(tokens), frames)  # 0.5 s of note, + the gate's release
    _, _, prior_only = _follow(test_model, _bursts([(0.2, 0.7)], [262.0], seconds=1.0), tmp_path, tokens=False)
    assert not np.allclose(out, prior_only)  # the tokens reach the sound


def test_a_bad_input_file_is_a_clear_error(tmp_path, capsys):
    out = str(tmp_path / "out.wav")
    assert main(["render", "--input-file", str(tmp_path / "none.wav"), "-o", out]) == 2
    assert "none.wav" in capsys.readouterr().err
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    assert main(["render", "--input-file", str(tmp_path / "junk.wav"), "-o", out]) == 2
    assert "junk.wav: cannot read audio" in capsys.readouterr().err
    sf.write(tmp_path / "ok.wav", np.zeros(4800, np.float32), SR)
    assert main(["render", "--input-file", str(tmp_path / "ok.wav"), "-o", out, "--follow-channel", "17"]) == 2
    assert "--follow-channel 17" in capsys.readouterr().err
    assert main(["render", "--input-file", str(tmp_path / "ok.wav"), "-o", out, "--follow-preset", "kazoo-9"]) == 2
    assert "--follow-preset kazoo-9" in capsys.readouterr().err


def test_the_mapping_files_follow_section_sets_the_follow_part(test_model_dir, tmp_path, capsys):
    """`[follow]` in the mapping file: here a gate above the input's level (-23 dBFS), so the
    input opens no note, where the default gate (-45) opens one."""
    sf.write(tmp_path / "in.wav", _bursts([(0.2, 0.7)], [262.0], seconds=1.0), SR)
    (tmp_path / "high.toml").write_text('[follow]\ngate_on_db = -10\ngate_off_db = -20\nunvoiced = "release"\n')
    outs = {}
    for name, extra in (("default", []), ("high", ["--mapping", str(tmp_path / "high.toml")])):
        outs[name] = tmp_path / f"{name}.wav"
        assert main(["render", "--model", str(test_model_dir), "--input-file", str(tmp_path / "in.wav"),
                     "-o", str(outs[name]), "--sample-rate", str(SR), *extra]) == 0
    printed = capsys.readouterr().out
    assert "follow part (channel 16): 1 notes" in printed and "follow part (channel 16): 0 notes" in printed
    assert np.any(sf.read(outs["default"])[0]) and not np.any(sf.read(outs["high"])[0])
    (tmp_path / "bad.toml").write_text("[follow]\ngate_on_db = -50\ngate_off_db = -40\n")
    assert main(["render", "--model", str(test_model_dir), "--input-file", str(tmp_path / "in.wav"),
                 "-o", str(tmp_path / "x.wav"), "--mapping", str(tmp_path / "bad.toml")]) == 2
    assert "bad.toml:3: follow.gate_off_db: gate_off_db -40 is above follow.gate_on_db (-50)" in capsys.readouterr().err


@pytest.mark.rig
@pytest.mark.parametrize("via", ["jack", "sounddevice"])
def test_an_input_in_the_jack_rig_plays_the_follow_part(jack_server, test_model_dir, via):
    """The server as a performer runs it: a JACK client plays tone bursts into the server's input
    (its own JACK port, or PortAudio's input stream through JACK) and hears the follow part start
    at each onset and stop after each end (perf/follow_latency.py measures how soon)."""
    import os
    import time

    from probe import Probe
    from test_server_rig import start_server, stop_server

    extra = ["--input-device", "system"] if via == "sounddevice" else []
    proc, ready = start_server(test_model_dir, "--audio", "jack", "--follow-input", via, *extra, "--no-midi",
                               env=dict(os.environ))
    probe = Probe("measure", server=jack_server)
    try:
        port = {"jack": "vqsynth:audio_in", "sounddevice": "PortAudio:in_0"}[via]
        assert {"jack": "audio in vqsynth:audio_in plays part 16",
                "sounddevice": "audio in 'system' via PortAudio plays part 16"}[via] in ready, ready
        probe.connect_out_to(port)
        probe.connect_from("vqsynth:out_1")
        time.sleep(0.3)
        spans = [(0.3, 0.8), (1.2, 1.5)]
        probe.play(_bursts(spans, [220.0, 330.0], seconds=2.0))
        time.sleep(2.6)
        assert probe.played_at is not None
        start = probe.played_at - probe.first_frame
        heard = np.abs(probe.capture[:probe.captured]) > 1e-5
        for (a, b), after in zip(spans, [1.2, 2.0]):
            on, off = start + int(a * SR), start + int(b * SR)
            assert not heard[on - int(0.1 * SR):on].any()  # silent before the onset ...
            # ... heard while it sounds (how soon is a timing figure: perf/follow_latency.py)
            assert heard[on:off].any(), (a, b)
            assert not heard[off + int(0.15 * SR):start + int(after * SR)].any()  # and silent after its end
    finally:
        probe.close()
        out = stop_server(proc)
    assert "Traceback" not in out, out


@pytest.mark.rig
def test_an_input_device_that_cannot_open_leaves_the_rest_playing(jack_server, test_model_dir):
    """A wrong --input-device is said in one line naming what there is, and the server starts and
    plays MIDI and OSC as ever: only the follow part is silent."""
    import os
    import subprocess
    import sys

    from rig import OscProbe
    from test_server_rig import stop_server

    cmd = [sys.executable, "-m", "vqsynth", "serve", "--model", str(test_model_dir), "--osc-port", "0",
           "--audio", "jack", "--follow-input", "sounddevice", "--input-device", "kazoo", "--no-midi"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    lines = []
    while not (lines and lines[-1].startswith("vqsynth ready")):
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)
    try:
        said = "".join(lines)
        assert "audio input off: no input device matches 'kazoo' (have: 0: system)" in said, said
        osc = OscProbe(int(lines[-1].rsplit(":", 1)[1]))
        osc.send_message("/vqsynth/note/on", [60, 100])
        assert wait_until(lambda: osc.status()["voices"] == 1, timeout=5.0)
        assert "no audio input" in osc.ask("/vqsynth/follow/on", 1, reply="/fail")[1]
        osc.close()
    finally:
        out = stop_server(proc)
    assert "Traceback" not in out, out


def test_osc_switches_and_sets_the_follow_part(live, server, probe):
    """/vqsynth/follow/*: off means the input is not heard, on again and it plays; the gate and
    the modes are set and reported; bad values and a server with no input get /fail."""
    import time

    from vqsynth.control.follow import Follower, live_sender

    reply = probe.ask("/vqsynth/follow/on", 1, reply="/fail")
    assert "no audio input" in reply[1]
    follower = Follower(live, None)
    follower.send = live_sender(follower)
    server.follower = follower
    tone = _bursts([(0.05, 0.35)], [220.0], seconds=0.5)

    def play():
        for k in range(0, tone.size, 128):
            follower.feed(tone[k:k + 128], time.monotonic())

    assert probe.ask("/vqsynth/follow/on", 0, reply="/done") == ["/vqsynth/follow/on"]
    play()
    assert follower.counters["notes"] == 0 and live.counters["notes"] == 0
    probe.ask("/vqsynth/follow/on", 1, reply="/done")
    play()
    assert follower.counters["notes"] == 1
    assert wait_until(lambda: live.counters["notes"] == 1)
    probe.ask("/vqsynth/follow/gate", -30.0, -42.0, reply="/done")
    probe.ask("/vqsynth/follow/unvoiced", "release", reply="/done")
    probe.ask("/vqsynth/follow/level", 0, reply="/done")
    probe.ask("/vqsynth/follow/tokens", 0, reply="/done")
    probe.ask("/vqsynth/follow/timbre", 1, reply="/done")
    assert probe.ask("/vqsynth/follow/status", reply="/follow.reply") == [1, 16, "follow", 1, follower.counters["frames"],
                                                                         -30.0, -42.0, "release", 0, 0, 1]
    probe.ask("/vqsynth/follow/mode", "gate", reply="/done")
    assert "follow or gate" in probe.ask("/vqsynth/follow/mode", "sideways", reply="/fail")[1]
    assert follower.settings.mode == "gate"
    probe.ask("/vqsynth/follow/gate", -40.0, -30.0, reply="/done")  # a gate cannot close above where it opens
    assert (follower.settings.gate_on_db, follower.settings.gate_off_db) == (-40.0, -40.0)
    assert "hold or release" in probe.ask("/vqsynth/follow/unvoiced", "sideways", reply="/fail")[1]
    assert follower.settings.unvoiced == "release"


def test_the_input_gives_the_same_audio_whatever_blocks_it_comes_in(test_model, tmp_path):
    """JACK hands the follower 128 frames a period, a file 1,024 at a time: the analysis steps on
    its own grid (64 samples between notes, frames in them), so the sound is the same."""
    path = tmp_path / "in.wav"
    sf.write(path, _bursts([(0.2, 0.6), (0.75, 1.1)], [196.0, 247.0], seconds=1.3), SR)

    def once(block):
        e = Engine(test_model, sample_rate=SR, block_size=1024, attack_cache=False)
        events, length, follower = follow_file_events(e, path, block=block)
        return follower.counters, render(e, events, length, tail=0.5, channels=1, chunk=1)

    (c128, a128), (c1024, a1024), (c333, a333) = once(128), once(1024), once(333)
    assert c128 == c1024 == c333 and c128["notes"] == 2
    assert np.array_equal(a128, a1024) and np.array_equal(a128, a333) and np.abs(a128).max() > 0


def test_live_brightness_is_the_audio_commons_one(phrases):
    """control/timbre_track.py (numpy, for the server) against data/timbre.py (scipy, the corpus's
    labels) on windows of FluidSynth notes of ten programs."""
    from vqsynth.control.timbre_track import Brightness
    from vqsynth.data.cli import DEFAULT_SOUNDFONT
    from vqsynth.data.render import Renderer
    from vqsynth.data.timbre import brightness

    live = Brightness(SR)
    ours, ref = [], []
    with Renderer(DEFAULT_SOUNDFONT, SR) as r:
        for program in (0, 19, 24, 40, 56, 71, 73, 80, 89, 52):
            for pitch in (48, 60, 72):
                window = r.note(0, program, pitch, 100, 0.4, 0.39)[int(0.3 * SR) - live.n:int(0.3 * SR)]
                ours.append(live.raw(window))
                ref.append(brightness(window, SR))
    ours, ref = np.array(ours), np.array(ref)
    assert np.corrcoef(ours, ref)[0, 1] > 0.99 and np.abs(ours - ref).mean() < 1.0, (ours, ref)
    assert live(np.zeros(live.n)) is None


def test_the_part_brightness_follows_the_input_when_asked(test_model, tmp_path):
    """One held note, a dull tone (3 harmonics) turning bright (40) at the same level: the follow
    part's brightness goes up with it, inside the note; off, the part keeps the global one."""
    t = np.arange(int(0.4 * SR)) / SR
    dull = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 4))
    bright = sum(np.sin(2 * np.pi * 220 * k * t) / k ** 0.5 for k in range(1, 41))
    dull, bright = dull / np.sqrt(np.mean(dull ** 2)), bright / np.sqrt(np.mean(bright ** 2))
    k = test_model.attr_names.index("brightness")

    def final(y, timbre=True):
        e, follower, _ = _follow(test_model, (0.05 * y).astype(np.float32), tmp_path, timbre=timbre)
        return follower, float(e.channel_attr_target[15, k])

    follower, turned = final(np.concatenate([np.zeros(2400), dull, bright]))
    assert follower.counters["notes"] == 1  # one note: what moved the attribute was the frames
    _, stayed = final(np.concatenate([np.zeros(2400), dull, dull]))
    assert turned > stayed + 0.2, (turned, stayed)
    assert np.isnan(final(np.concatenate([np.zeros(2400), dull, bright]), timbre=False)[1])


def test_in_gate_mode_a_held_key_sounds_while_the_input_does(test_model, tmp_path):
    """Gate mode: a note held on the part's channel (as from a keyboard) is shaped by the input's
    level: heard during the bursts, silent between them; the input plays no note of its own."""
    spans = [(0.3, 0.6), (0.9, 1.2)]
    path = tmp_path / "in.wav"
    sf.write(path, _bursts(spans, [220.0, 330.0], seconds=1.5), SR)
    e = Engine(test_model, sample_rate=SR, block_size=1024, attack_cache=False)
    events, length, follower = follow_file_events(e, path, FollowSettings(mode="gate"))
    events.append((0.0, lambda t: e.note_on(60, 100, 15, t=t)))  # the key, held throughout
    out = render(e, events, length, tail=0.0, channels=1, chunk=1)
    assert follower.counters["notes"] == 0 and e.counters["notes"] == 1
    level = _rms_db(out)
    for a, b in spans:
        assert level[int((a + 0.05) * 100):int((b - 0.02) * 100)].min() > -100, (a, b)  # heard in the burst
    for a, b in ((0.1, 0.28), (0.68, 0.88), (1.28, 1.45)):
        assert level[int(a * 100):int(b * 100)].max() < -60, (a, b)  # and hardly at all between


@pytest.mark.rig
def test_a_file_and_a_jack_port_make_the_same_calls(test_model_dir, tmp_path):
    """The same phrase through `render --input-file`'s path and through the JACK client's input
    port (tests/follow_jack_calls.py, in its own process): the follower makes the same calls with
    the same arguments, the same samples apart (what the engine then makes of the same calls,
    live or offline, test_engine.py holds)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from vqsynth.model.folder import load_model

    y = _bursts([(0.3, 0.8), (1.2, 1.5)], [220.0, 330.0], seconds=2.0)
    path = tmp_path / "in.wav"
    sf.write(path, y, SR, subtype="FLOAT")  # the samples JACK carries, not 16-bit ones
    engine = Engine(load_model(test_model_dir), sample_rate=SR, attack_cache=False)
    events, _, _ = follow_file_events(engine, path, FollowSettings(tokens=False))
    from_file = json.loads(json.dumps([(t * SR, call.key()) for t, call in events]))  # as the other side's
    from rig import jack_name, start_jackd, stop_jackd

    # its own JACK server, at 1,024-frame periods: at 128 a loaded machine (the full suite) made
    # xruns in each of 3 tries, and an xrun drops a period of the input
    name = jack_name()
    jackd = start_jackd(name, period=1024)
    try:
        script = Path(__file__).resolve().parent / "follow_jack_calls.py"
        run = subprocess.run([sys.executable, str(script), str(test_model_dir), str(path)], capture_output=True,
                             text=True, timeout=90,
                             env=dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1"))
    finally:
        stop_jackd(jackd)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert not got["xruns"], f"an xrun in each of 5 tries ({got['xruns']} in the last)"
    from_jack = got["calls"]
    assert from_file and len(from_jack) == len(from_file)
    assert [k for _, k in from_jack] == [k for _, k in from_file]
    gaps = lambda calls: np.diff([t for t, _ in calls])  # noqa: E731
    # within 0.5 ms (24 samples): the callback stamps a time with the clock's fit of wall time to
    # JACK's frames and the engine turns it back into a sample a moment later, after the fit has
    # slewed (2 samples apart alone, 5 under the full suite's load; not a latency: a placement)
    np.testing.assert_allclose(gaps(from_jack), gaps(from_file), atol=0.0005 * SR)
