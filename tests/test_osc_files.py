"""What /vqsynth/tokens/wav may read: regular audio files under `serve --files DIR`, checked
before decoding, read on a worker, every refusal in the same words (finding 2 and 3)."""

import os
import threading

import numpy as np
import pytest
import soundfile as sf

from osc_fixtures import first_reply
from rig import OscProbe, sparse_wav
from vqsynth.control.files import REFUSED
from vqsynth.control.osc_server import OscServer


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "files"
    d.mkdir()
    sf.write(d / "ok.wav", 0.3 * np.sin(np.arange(8000) / 5.0), 16000)
    return d


def _ask(live, folder, path):
    with OscServer(live, host="127.0.0.1", port=0, files_dir=folder) as server:
        probe = OscProbe(server.port)
        try:
            probe.send_message("/vqsynth/tokens/wav", [path])
            reply = probe.next_reply(timeout=5.0)
            assert probe.sync(timeout=5.0) == []  # the OSC thread answered sync: it never hung
            return reply
        finally:
            probe.close()


def test_file_commands_are_off_unless_a_folder_is_given(live, folder):
    _, (address, args) = first_reply(live, "/vqsynth/tokens/wav", [str(folder / "ok.wav")])
    assert address == "/fail" and "--files" in args[1]


def test_a_file_in_the_folder_is_read(live, folder):
    assert _ask(live, folder, "ok.wav")[0] == "/done"


def _fifo(folder):
    path = folder / "fifo.wav"
    os.mkfifo(path)
    return str(path)


def _sparse_header(folder):
    return str(sparse_wav(folder / "huge.wav"))


@pytest.mark.parametrize("make", [
    lambda d: "/etc/hostname",                       # exists, readable, outside the folder
    lambda d: "/no/such/file.wav",                   # missing
    lambda d: "-",                                   # libsndfile would read the server's stdin
    lambda d: "/proc/self/fd/1",
    lambda d: str(d / ".." / ".." / "etc" / "passwd"),
    _fifo,                                           # nobody writes it: reading would hang
    _sparse_header,
    lambda d: str(d),                                # the folder itself
])
def test_every_refusal_says_the_same_and_nothing_hangs(live, folder, make):
    address, args = _ask(live, folder, make(folder))
    assert address == "/fail" and args[1] == REFUSED


def test_decoding_runs_on_the_worker_not_the_osc_thread(live, folder, monkeypatch):
    seen = []
    real = live.model.encode_file
    monkeypatch.setattr(live.model, "encode_file", lambda p: (seen.append(threading.current_thread().name), real(p))[1])
    assert _ask(live, folder, "ok.wav")[0] == "/done"
    assert seen == ["vqsynth-files"]
