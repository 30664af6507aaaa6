"""What a newcomer types: every bad setting or path is one line naming what to change, exit
code 2, said before any work starts (vqsynth/cli.py, engine/options.py, engine/render_cli.py)."""

import subprocess
import sys

import mido
import numpy as np
import pytest

from vqsynth.cli import main


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    path = tmp_path_factory.mktemp("midi") / "song.mid"
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track += [mido.Message("note_on", note=60, velocity=100, time=0), mido.Message("note_off", note=60, time=240)]
    mid.save(path)
    return path


def _run(args, capsys):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("output,says", [
    ("/no/such/dir/out.wav", "does not exist"),
    ("out.nosuchformat", "not a format"),
    ("noext", "no extension"),
    (".", "is a directory"),
])
def test_render_refuses_an_output_it_cannot_write_before_rendering(song, tmp_path, monkeypatch, capsys, output, says):
    monkeypatch.chdir(tmp_path)
    code, err = _run(["render", str(song), "-o", output, "--model", "no-such-model-needed"], capsys)
    assert code == 2 and len(err) == 1 and says in err[0], err


@pytest.mark.parametrize("option,value", [("--sample-rate", "7"), ("--sample-rate", "-1"), ("--sample-rate", "0"),
                                          ("--block-size", "-5"), ("--block-size", "0"), ("--polyphony", "0"),
                                          ("--sample-rate", "fast")])
@pytest.mark.parametrize("command", ["render", "serve"])
def test_settings_out_of_range_are_refused_by_the_parser(command, option, value, capsys):
    code, err = _run([command, option, value], capsys)
    assert code == 2
    assert option in err[-1] and f"vqsynth {command}" in err[-1]


def test_an_empty_midi_file_says_what_is_wrong(tmp_path, capsys):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    code, err = _run(["render", str(empty), "-o", str(tmp_path / "x.wav"), "--model", "no-such-model"], capsys)
    assert code == 2 and err[-1].endswith("not a readable MIDI file (empty or cut short)"), err


def test_an_unknown_option_shows_the_subcommands_usage(capsys):
    code, err = _run(["serve", "--bogus"], capsys)
    assert code == 2 and err[0].startswith("usage: vqsynth serve") and "--bogus" in err[-1]


def test_version():
    out = subprocess.run([sys.executable, "-m", "vqsynth.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("vqsynth ")


def test_presets_are_found_by_number_name_in_any_spelling_or_unique_prefix():
    from vqsynth.model.folder import load_model, resolve_model

    model = load_model(resolve_model(None))
    piano = model.presets.index("acoustic-grand-piano")
    assert model.find_preset("Acoustic Grand Piano") == piano
    assert model.find_preset("acoustic-grand-piano") == piano
    assert model.find_preset(str(piano)) == piano == model.find_preset(piano)
    vib = model.presets.index("vibraphone")
    assert model.find_preset("Vibraphone") == vib and model.find_preset("vibra") == vib
    with pytest.raises(ValueError, match="ambiguous: .*acoustic-grand-piano.*bright-acoustic-piano"):
        model.find_preset("piano")
    with pytest.raises(ValueError, match="unknown preset"):
        model.find_preset("theremin")
    with pytest.raises(ValueError, match="out of range"):
        model.find_preset(len(model.presets))


def test_presets_command_lists_numbers_names_and_programs(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "acoustic-grand-piano" in out and "GM program" in out
    assert main(["presets", "vibra"]) == 0
    assert "vibraphone" in capsys.readouterr().out
    code, err = _run(["presets", "piano"], capsys)
    assert code == 2 and "ambiguous" in err[-1]


def test_presets_lists_a_drum_models_kits(test_drum_model, capsys):
    assert main(["presets", "--drums", str(test_drum_model.folder)]) == 0
    out = capsys.readouterr().out
    assert "Test Standard" in out and "Test Electronic" in out and "GM kit program" in out
    code, err = _run(["presets", "--drums", str(test_drum_model.folder), "nope"], capsys)
    assert code == 2 and "no kit 'nope'" in err[-1]


def test_render_starts_on_the_preset_asked_for(song, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    outs = {}
    for name in ("vibraphone", "rock organ"):
        path = tmp_path / f"{name}.wav"
        assert main(["render", str(song), "-o", str(path), "--preset", name, "--sample-rate", "16000"]) == 0
        outs[name], _ = sf.read(path)
    a, b = outs.values()
    assert np.abs(a).max() > 1e-3 and np.sqrt(np.mean((a - b) ** 2)) > 0.1 * np.sqrt(np.mean(a ** 2))
    code, err = _run(["render", str(song), "-o", str(tmp_path / "x.wav"), "--preset", "piano"], capsys)
    assert code == 2 and "ambiguous" in err[-1]


@pytest.mark.parametrize("argv,says", [
    (["tokens", "--plot", "x.png"], "--plot needs matplotlib: pip install"),
    (["train", "control"], "training needs torch: pip install"),
])
def test_a_missing_extra_is_named_with_how_to_install_it(monkeypatch, capsys, argv, says):
    """As after the server-only ./setup.sh: the command says what to install, no traceback."""
    for name in ("matplotlib", "torch"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ModuleNotFoundError
    code, err = _run(argv, capsys)
    assert code == 2 and says in err[-1], err


def test_a_settings_file_feeds_serve_and_the_command_line_wins(tmp_path):
    from vqsynth.cli import build_parser
    from vqsynth.engine.config_file import config_argv

    path = tmp_path / "serve.toml"
    path.write_text('audio = "null"\nsample_rate = 44100\nno-midi = true\nmidi-port = ["Arturia", "nano"]\n'
                    'preset = "vibraphone"\n')
    parser = build_parser()
    words = config_argv(path, parser.commands["serve"])
    assert words == ["--audio", "null", "--sample-rate", "44100", "--no-midi", "--midi-port", "Arturia",
                     "--midi-port", "nano", "--preset", "vibraphone"]
    args = parser.parse_args(["serve"] + words + ["--sample-rate", "48000"])
    assert args.sample_rate == 48000 and args.audio == "null" and args.no_midi and args.preset == "vibraphone"


@pytest.mark.parametrize("text,says", [
    ('audio = "null"\n\nsampel-rate = 44100\n', ":3: sampel-rate: not a serve setting"),
    ('block-size = 0\n', ":1: block-size: 0 is outside 16..8192"),
    ('audio = "cassette"\n', ":1: audio: 'cassette' is not one of"),
    ('no-midi = "yes"\n', ":1: no-midi: true or false"),
    ('audio = ["null", "jack"]\n', ":1: audio: one value, not a list"),
    ('audio = "null\n', "not valid TOML"),
])
def test_a_bad_settings_file_is_refused_with_file_line_and_key(tmp_path, capsys, text, says):
    path = tmp_path / "serve.toml"
    path.write_text(text)
    code, err = _run(["serve", "--config", str(path)], capsys)
    assert code == 2 and says in err[-1] and str(path) in err[-1], err


def test_state_is_saved_and_recalled(test_model, tmp_path):
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.state_file import load, save

    a = Engine(test_model, sample_rate=16000)
    a.set_preset(2)
    a.set_attr("brightness", 0.85)
    a.set_volume(0.3)
    a.set_preset(1, channel=3)
    a.part_level(3, volume=70, pan=-0.5)
    path = save(tmp_path / "state" / "state.json", a)
    b = Engine(test_model, sample_rate=16000)
    load(path, b)
    assert b.preset == 2 and b.attr_target[b.model.attr_names.index("brightness")] == pytest.approx(0.85)
    assert b.volume_target == pytest.approx(0.3) and np.array_equal(b.z, a.z)
    assert (b.parts[3].preset, b.parts[3].volume, b.parts[3].pan) == (1, 70, -0.5) and b.parts[5].preset == 2
    a.set_z(42)
    save(path, a)
    c = Engine(test_model, sample_rate=16000)
    load(path, c)
    assert c.preset is None and np.allclose(c.z, a.z, atol=1e-5)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot recall"):
        load(path, c)


def test_the_state_file_keeps_the_follow_parts_settings(test_model, tmp_path):
    """An installation driven by a singer comes back after a reboot with the follow part as it
    was left (OSC moves it while it plays); a run without the input keeps what the file had."""
    import json

    from vqsynth.control.follow import FollowSettings, Follower
    from vqsynth.engine.engine import Engine
    from vqsynth.engine.state_file import load, save

    a = Engine(test_model, sample_rate=16000)
    a.set_preset(2)
    fa = Follower(a, None, FollowSettings())
    fa.settings.unvoiced, fa.settings.gate_on_db, fa.settings.timbre, fa.enabled = "release", -38.0, True, False
    path = save(tmp_path / "state.json", a, fa)
    b = Engine(test_model, sample_rate=16000)
    fb = Follower(b, None, FollowSettings())
    load(path, b, fb)
    assert (fb.settings.unvoiced, fb.settings.gate_on_db, fb.settings.timbre, fb.enabled) == ("release", -38.0, True, False)
    assert fb.settings.mode == "follow" and fb.settings.gate_off_db == -55.0
    save(path, b)  # this run had no audio input: the file's follow part stays
    assert json.loads(path.read_text())["follow"]["unvoiced"] == "release"
    state = json.loads(path.read_text())
    state["follow"]["mode"] = "karaoke"
    path.write_text(json.dumps(state))
    c = Engine(test_model, sample_rate=16000)
    with pytest.raises(ValueError, match=r"cannot recall this state .*follow\.mode: 'karaoke' is not one of follow, gate"):
        load(path, c, Follower(c, None, FollowSettings()))
    assert c.preset == 0 and b.preset == 2  # checked before anything was recalled


def test_the_example_settings_file_and_unit_name_real_settings():
    from pathlib import Path

    from vqsynth.cli import build_parser
    from vqsynth.engine.config_file import config_argv

    examples = Path(__file__).resolve().parents[1] / "examples"
    parser = build_parser()
    parser.commands["serve"].parse_args(config_argv(examples / "serve.toml", parser.commands["serve"]))
    unit = (examples / "vqsynth.service").read_text()
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    words = start.split()[1:]
    assert words[0] == "serve"
    parser.commands["serve"].parse_args(words[1:])


def test_a_learn_file_is_loaded_again_on_restart(test_model_dir, tmp_path, capsys):
    """What MIDI learn saved to --learn-file is the mapping the next start plays with (it was
    ignored unless --mapping named the same file)."""
    learned = tmp_path / "learned.toml"
    learned.write_text('[midi.cc.21]\ntarget = "brightness"\n')
    code = main(["serve", "--model", str(test_model_dir), "--audio", "null", "--no-midi", "--osc-port", "0",
                 "--no-discovery", "--duration", "0.2", "--learn-file", str(learned)])
    out = capsys.readouterr().out
    assert code == 0 and f"mapping {learned}" in out, out
