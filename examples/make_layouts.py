"""Write examples/vqsynth.tosc (TouchOSC) and examples/vqsynth.maxpat (Max) from the server's own
tables: the attribute faders come from the model's attributes and ranges, every address is one
the dispatcher takes (tests/test_examples.py checks). Run after a model or the address table
changes:  .venv/bin/python examples/make_layouts.py [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import uuid
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

from vqsynth.control.mapping import targets_for
from vqsynth.control.osc_addresses import lookup
from vqsynth.model.folder import load_model, resolve_model

HERE = Path(__file__).resolve().parent
NOTES = (60, 62, 64, 65, 67, 69, 71, 72)
DRUM_PADS = ((36, "kick"), (38, "snare"), (42, "closed hat"), (46, "open hat"), (49, "crash"), (51, "ride"))
NOTIFY_PORT = 9001  # where Max's udpreceive (and TouchOSC's receive port) get pushes


def _checked(address: str) -> str:
    assert lookup(address), f"{address} is not in the server's address table"
    return address


# ------------------------------------------------------------------ TouchOSC (lexml v3, zlib)

def _prop(kind, key, value):
    return f"<property type='{kind}'><key><![CDATA[{key}]]></key><value>{value}</value></property>"


def _frame(x, y, w, h):
    return f"<x>{x}</x><y>{y}</y><w>{w}</w><h>{h}</h>"


def _osc(address, args, trigger="x", condition="ANY"):
    """One OSC message of a control: args are (type CONSTANT|VALUE, conversion, value, lo, hi)."""
    parts = "".join(f"<partial><type>{t}</type><conversion>{conv}</conversion><value><![CDATA[{v}]]></value>"
                    f"<scaleMin>{lo}</scaleMin><scaleMax>{hi}</scaleMax></partial>" for t, conv, v, lo, hi in args)
    return ("<osc><enabled>1</enabled><send>1</send><receive>1</receive><feedback>0</feedback>"
            "<connections>00001</connections>"
            f"<triggers><trigger><var><![CDATA[{trigger}]]></var><condition>{condition}</condition></trigger></triggers>"
            f"<path><partial><type>CONSTANT</type><conversion>STRING</conversion><value><![CDATA[{_checked(address)}]]>"
            f"</value><scaleMin>0</scaleMin><scaleMax>1</scaleMax></partial></path>"
            f"<arguments>{parts}</arguments></osc>")


def _node(kind, name, frame, messages="", children=""):
    return (f"<node ID='{uuid.uuid5(uuid.NAMESPACE_URL, name)}' type='{kind}'><properties>"
            f"{_prop('s', 'name', f'<![CDATA[{escape(name)}]]>')}{_prop('r', 'frame', _frame(*frame))}</properties>"
            f"<values><value><key><![CDATA[x]]></key><locked>0</locked><lockedDefaultCurrent>0</lockedDefaultCurrent>"
            f"<default><![CDATA[0]]></default><defaultPull>0</defaultPull></value></values>"
            f"<messages>{messages}</messages><children>{children}</children></node>")


def touchosc(targets) -> bytes:
    controls = []
    targets = {n: t for n, t in targets.items() if not n.startswith("drums.")}  # the drum part has its own
    for k, (name, t) in enumerate(targets.items()):
        x, y = 20 + (k % 12) * 80, 20 + (k // 12) * 330
        controls.append(_node("FADER", name, (x, y, 60, 300), _osc(
            f"/vqsynth/attr/{name}", [("VALUE", "FLOAT", "x", t.range[0], t.range[1])])))
    for k, pitch in enumerate(NOTES):  # press: velocity 100; release: 0, which is the note-off
        controls.append(_node("BUTTON", f"note {pitch}", (20 + k * 80, 680, 70, 70), _osc(
            "/vqsynth/note/on", [("CONSTANT", "INTEGER", pitch, 0, 1), ("VALUE", "INTEGER", "x", 0, 100)])))
    for k in range(4):
        controls.append(_node("BUTTON", f"preset {k}", (680 + k * 80, 680, 70, 70), _osc(
            "/vqsynth/preset", [("CONSTANT", "INTEGER", k, 0, 1)], condition="RISE")))
    controls.append(_node("BUTTON", "feedback on", (20, 770, 150, 50), _osc(
        "/vqsynth/notify", [("CONSTANT", "INTEGER", 1, 0, 1), ("CONSTANT", "FLOAT", 10, 0, 1),
                            ("CONSTANT", "INTEGER", NOTIFY_PORT, 0, 1)], condition="RISE")))
    controls.append(_node("BUTTON", "panic", (200, 770, 150, 50), _osc("/vqsynth/panic", [], condition="RISE")))
    for k, (key, name) in enumerate(DRUM_PADS):  # the kit: a hit on press (drum hits have no release)
        controls.append(_node("BUTTON", f"drum {name}", (20 + k * 80, 850, 70, 70), _osc(
            "/vqsynth/drums/hit", [("CONSTANT", "INTEGER", key, 0, 1), ("CONSTANT", "INTEGER", 110, 0, 1)],
            condition="RISE")))
    controls.append(_node("FADER", "drum variation", (520, 850, 300, 60), _osc(
        "/vqsynth/drums/variation", [("VALUE", "FLOAT", "x", 0, 1)])))
    root = _node("GROUP", "vqsynth", (0, 0, 1000, 940), children="".join(controls))
    xml = f"<?xml version='1.0' encoding='UTF-8'?><lexml version='3'>{root}</lexml>"
    return zlib.compress(xml.encode())


# ------------------------------------------------------------------ Max

def maxpat(targets) -> dict:
    boxes, lines = [], []

    def box(maxclass, text, x, y, w=150, **extra):
        boxes.append({"box": {"id": f"obj-{len(boxes) + 1}", "maxclass": maxclass, "text": text,
                              "patching_rect": [x, y, w, 22], **extra}})
        return f"obj-{len(boxes)}"

    def line(a, b, outlet=0, inlet=0):
        lines.append({"patchline": {"source": [a, outlet], "destination": [b, inlet]}})

    send = box("newobj", "udpsend 127.0.0.1 9000", 20, 560)
    box("comment", "vqsynth from Max: notes from MIDI in, attribute sliders, presets, level and voices "
                   f"pushed back to udpreceive {NOTIFY_PORT}", 20, 10, 600)
    notein = box("newobj", "notein", 20, 50, 80)
    pack = box("newobj", "pack 0 0", 20, 80, 80)
    note = box("newobj", f"prepend {_checked('/vqsynth/note/on')}", 20, 110)
    line(notein, pack, 0, 0), line(notein, pack, 1, 1), line(pack, note), line(note, send)
    for k, (name, t) in enumerate([kv for kv in targets.items() if not kv[0].startswith("drums.")][:8]):
        x = 200 + k * 60
        s = box("slider", "", x, 50, 20, floatoutput=1, size=float(t.range[1] - t.range[0]),
                min=float(t.range[0]), orientation=2)
        boxes[-1]["box"]["patching_rect"] = [x, 50, 20, 140]
        p = box("newobj", f"prepend {_checked('/vqsynth/attr/' + name)}", x, 200 + (k % 2) * 30)
        line(s, p), line(p, send)
    preset = box("newobj", f"prepend {_checked('/vqsynth/preset')}", 20, 300)
    for k in range(4):
        line(box("message", str(k), 20 + k * 40, 270, 30), preset)
    line(preset, send)
    load = box("newobj", "loadbang", 700, 50, 70)
    notify = box("message", f"{_checked('/vqsynth/notify')} 1 10 {NOTIFY_PORT}", 700, 80, 200)
    line(load, notify), line(notify, send)
    line(box("message", _checked("/vqsynth/panic"), 700, 110, 120), send)
    hit = box("newobj", f"prepend {_checked('/vqsynth/drums/hit')}", 700, 170)
    for k, (key, name) in enumerate(DRUM_PADS):  # the kit's pads: GM key and velocity
        line(box("message", f"{key} 110", 700 + k * 55, 140, 50), hit)
    box("comment", "drums: kick snare closed-hat / open-hat crash ride", 700, 200, 300)
    line(hit, send)
    recv = box("newobj", f"udpreceive {NOTIFY_PORT}", 20, 400)
    route = box("newobj", "route /vqsynth/level", 20, 430)
    unpack = box("newobj", "unpack 0. 0", 20, 460, 80)
    line(recv, route), line(route, unpack)
    line(unpack, box("flonum", "", 20, 490, 60))
    line(unpack, box("number", "", 90, 490, 50), 1)
    box("comment", "level dB, voices", 150, 490)
    return {"patcher": {"fileversion": 1, "appversion": {"major": 8, "minor": 5, "revision": 0},
                        "rect": [100, 100, 1000, 620], "boxes": boxes, "lines": lines}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    model = load_model(resolve_model(parser.parse_args().model))
    targets = targets_for(model)
    (HERE / "vqsynth.tosc").write_bytes(touchosc(targets))
    (HERE / "vqsynth.maxpat").write_text(json.dumps(maxpat(targets), indent=1) + "\n")
    print(f"wrote {HERE / 'vqsynth.tosc'} and {HERE / 'vqsynth.maxpat'} for model {model.name}")


if __name__ == "__main__":
    main()
