"""An instrument's state in a file (Surge XT's patches, for an installation's reboot): which
preset, its z, every attribute and the volume, and each of the 16 parts' preset, volume,
expression and pan (a part on a custom z keeps part 1's), and the drum part's kit, variation, class
morph and feature offsets, and the follow part's settings (on, mode, gate, what it follows) when
the server has an audio input. JSON, written whole or not at all.

`serve --state FILE` recalls it at start when it exists and saves it at a clean stop; OSC
`/vqsynth/state/save` and `/vqsynth/state/load` save and recall it while running (saving only
for senders `--allow-writes` permits)."""

from __future__ import annotations

import json
import os
from pathlib import Path

FORMAT = 1


def snapshot(engine, follower=None) -> dict:
    from vqsynth.control.mapping import FOLLOW_KEYS

    s = engine.status()
    return {"format": FORMAT, "model": engine.model.name, "preset": s["preset"],
            "preset_name": engine.model.presets[s["preset"]] if s["preset"] is not None else None,
            "z": [round(float(x), 6) for x in engine.z], "attrs": s["attrs"], "volume": s["volume"],
            "parts": [{k: p[k] for k in ("preset", "volume", "expression", "pan")} for p in s["parts"]],
            **({"drums": drum_snapshot(engine.drums)} if engine.drums is not None else {}),
            **({"follow": {"on": bool(follower.enabled), **{k: getattr(follower.settings, k) for k in FOLLOW_KEYS}}}
               if follower is not None else {})}


def drum_snapshot(d) -> dict:
    return {"kit": d.model.kits[d.kit].name, "variation": round(float(d.variation), 6),
            "morph": {c: round(float(v), 6) for c, v in zip(d.model.classes, d.morph) if v},
            "offsets": {a: round(float(v), 6) for a, v in zip(d.model.attr_names, d.offsets) if v}}


def save(path, engine, follower=None) -> Path:
    """Write the state; with no follower (no audio input this run, or its device missing), the
    follow part's settings already in the file are kept, not lost."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = snapshot(engine, follower)
    if follower is None:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(old, dict) and isinstance(old.get("follow"), dict):
                state["follow"] = old["follow"]
        except (OSError, ValueError):
            pass  # no file yet, or one that is not a state: nothing to keep
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(path, engine, follower=None) -> dict:
    """Recall the state in `path` into `engine` (and the follow part's into `follower`); ValueError
    naming the file and what is wrong. The follow part's settings are checked before anything is
    recalled, as a mapping file's [follow] is."""
    from vqsynth.control.mapping import Mapping, follow_values

    path = Path(path)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"not a vqsynth state file of format {FORMAT}")
        follow = dict(state.get("follow", {}))
        follow_on = follow.pop("on", True)
        if not isinstance(follow_on, bool):
            raise ValueError(f"follow.on: expected true or false, got {follow_on!r}")
        follow = follow_values(Mapping(str(path), 2.0, "clamp"), follow)
        if state.get("preset") is not None:
            engine.set_preset(int(state["preset"]))
        else:
            engine.set_z([float(x) for x in state["z"]])
        for name, value in dict(state.get("attrs", {})).items():
            engine.set_attr(name, float(value))
        if "volume" in state:
            engine.set_volume(float(state["volume"]))
        for c, part in enumerate(list(state.get("parts", []))[:16]):
            if int(part["preset"]) >= 0 and int(part["preset"]) != state.get("preset"):
                engine.set_preset(int(part["preset"]), channel=c)
            engine.part_level(c, volume=float(part["volume"]), expression=float(part["expression"]),
                              pan=float(part["pan"]))
        if "drums" in state and engine.drums is not None:
            d = dict(state["drums"])
            morph, offsets = dict(d.get("morph", {})), dict(d.get("offsets", {}))
            m = engine.drums.model  # the controls not in the file go back to 0
            engine.set_drums(kit=d.get("kit"), variation=d.get("variation"),
                             morph={c: morph.get(c, 0.0) for c in m.classes},
                             offsets={a: offsets.get(a, 0.0) for a in m.attr_names})
        if follower is not None and "follow" in state:
            for k, v in follow.items():
                setattr(follower.settings, k, v)
            follower.enabled = follow_on
    except FileNotFoundError:
        raise ValueError(f"{path}: no such state file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot recall this state ({exc})") from None
    engine.jump_attrs()  # recalled as it was, no glide from the defaults
    return state
