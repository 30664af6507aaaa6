"""The shipped examples against a real server: the Pure Data patch runs in real Pd (headless),
the TouchOSC and Max files are checked against the server's own address table."""

import json
import shutil
import subprocess
import time
import zlib
from pathlib import Path
from xml.etree import ElementTree

import pytest

from rig import LiveEngine
from vqsynth.control.osc_addresses import lookup
from vqsynth.control.osc_server import OscServer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.rig
@pytest.mark.skipif(shutil.which("pd") is None, reason="puredata-core not installed")
def test_pd_patch_plays_a_note_and_shows_the_status_reply(test_model):
    live = LiveEngine(test_model)
    engine = live.engine
    pd = None
    try:
        with OscServer(engine, host="127.0.0.1", port=0) as server:
            pd = subprocess.Popen(["pd", "-nogui", "-nosound", "-nomidi", "-stderr", "-open",
                                   str(EXAMPLES / "vqsynth.pd"),
                                   "-send", f"vqsynth-connect 127.0.0.1 {server.port}",
                                   "-send", "vqsynth-note 60 100"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            seen, status, deadline = [], None, time.monotonic() + 20
            while time.monotonic() < deadline:
                line = pd.stderr.readline()
                if not line:
                    break
                seen.append(line)
                if line.startswith("vqsynth-status:"):  # five numbers, then the preset's index and name
                    status = [float(x) for x in line.split(":", 1)[1].split()[:6]]
                    if status[0] >= 1 and engine.status()["level_db"] > -60:
                        break
            assert status is not None, "".join(seen)  # a /status.reply reached the patch
            assert status[0] >= 1 and status[3] == 48000, status  # it saw the voice its own note started
            assert engine.counters["notes"] == 1 and engine.status()["level_db"] > -60  # and it sounds
            assert server.counters["bad arguments"] == 0 and server.counters["unknown address"] == 0
    finally:
        if pd is not None:
            pd.kill()
            pd.wait()
        live.close()


def test_touchosc_layout_addresses_are_the_servers(test_model):
    root = ElementTree.fromstring(zlib.decompress((EXAMPLES / "vqsynth.tosc").read_bytes()))
    paths = [p.text for p in root.iter("value") if p.text and p.text.startswith("/")]
    assert len(paths) >= 10
    unknown = [p for p in paths if lookup(p) is None]
    assert unknown == [], unknown
    attrs = {p.rsplit("/", 1)[1] for p in paths if p.startswith("/vqsynth/attr/")}
    assert attrs <= set(test_model.attr_names) | {"volume"}


def test_max_patch_addresses_are_the_servers():
    patch = json.loads((EXAMPLES / "vqsynth.maxpat").read_text())
    texts = [box["box"].get("text", "") for box in patch["patcher"]["boxes"]]
    sent = [w for t in texts if not t.startswith("route") for w in t.split() if w.startswith("/vqsynth")]
    assert len(sent) >= 5 and [a for a in sent if lookup(a) is None] == []
    received = [w for t in texts if t.startswith("route") for w in t.split()[1:]]
    assert received and all(f"`{a} " in lookup("/vqsynth/subscribe")[0].doc for a in received)  # what /notify pushes
    assert any(t.startswith("udpsend") for t in texts) and any(t.startswith("udpreceive") for t in texts)


def test_pd_patch_addresses_are_the_servers():
    """Every oscformat of the Pd patch (notes, attributes, presets, status, drum pads) is a table address."""
    lines = (EXAMPLES / "vqsynth.pd").read_text().splitlines()
    sent = ["/" + "/".join(line.rstrip(";").split()[5:]) for line in lines if " oscformat " in line]
    assert "/vqsynth/drums/hit" in sent and len(sent) >= 8
    assert [a for a in sent if lookup(a) is None] == []
