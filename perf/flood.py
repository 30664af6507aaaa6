"""Floods against the running server in the JACK rig: OSC at 10,000 messages a second and MIDI
note-on/off storms, at once, then all-notes-off. Counts what was handled, what was dropped (and
whether the server counted it), underruns, hanging voices, memory; perf/soak.py uses the same rig
for long, musical playing.

The server runs as a user runs it (`python -m vqsynth serve --audio jack`, MIDI read in its JACK
callback) against a private `jackd -d dummy`. A JACK client of our own writes the MIDI storm
inside its process callback (sample-accurate, no thread in between) and listens to the server's
output: periods with sound, silent stretches, anything non-finite. OSC comes from a separate
process, paced every millisecond. The server's own counters come back over OSC
(/vqsynth/counters); its memory from /proc.

    nice -n 10 .venv/bin/python perf/flood.py --seconds 60 --osc-rate 10000 --midi-rate 3000 \\
        --json perf/results/flood.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))
from faults import Server, counters, jack_env  # noqa: E402
from rig import OscProbe, jack_name  # noqa: E402
from vqsynth.engine.backends import CycleWatch  # noqa: E402


# ------------------------------------------------------------------ jackd with its log in a file

class Jackd:
    """`jackd -d dummy` whose output goes to a file (a long run must not fill a pipe)."""

    def __init__(self, name=None, rate=48000, period=128):
        import jack

        self.name = name or jack_name("vqs-flood")
        self.log = tempfile.NamedTemporaryFile("w+", prefix="jackd-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(["jackd", "-n", self.name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                jack.Client("vqs-probe", servername=self.name, no_start_server=True).close()
                return
            except jack.JackOpenError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jackd did not start: {Path(self.log.name).read_text()[-500:]}")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


# ------------------------------------------------------------------ the MIDI side, inside JACK

class Player:
    """A JACK client: plays a MIDI schedule into vqsynth from its process callback and listens to
    vqsynth's output. `schedule(period_index) -> [(offset, bytes), ...]` runs in the callback."""

    def __init__(self, server, schedule, name="player", silence=1e-5):
        import jack

        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.out = self.client.midi_outports.register("midi_out")
        self.inp = self.client.inports.register("in")
        self.schedule = schedule
        self.silence = silence
        self.period = 0
        self.sent = self.not_sent = 0
        self.loud = self.quiet = self.nonfinite = 0
        self.quiet_run = self.longest_quiet = 0
        self.expect_sound = False  # set by the caller while something must be sounding
        self.expect_from = 0  # ... from this period on
        self.quiet_while_expected = 0
        self.peak = 0.0
        self.xruns = 0
        self.errors = 0
        self.watch = CycleWatch(self.client)  # vqsynth runs after us in each cycle: our lateness is its too
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    def _xrun(self, delay):
        self.xruns += 1

    def _process(self, frames):
        cycle, entered = self.watch.enter()
        try:
            self._play(frames)
        finally:
            self.watch.leave(frames, cycle, entered)

    def _play(self, frames):
        try:
            self.out.clear_buffer()
            for offset, data in self.schedule(self.period):
                try:
                    self.out.write_midi_event(offset, data)
                    self.sent += 1
                except Exception:  # the port's buffer is full for this period
                    self.not_sent += 1
            self.period += 1
            x = self.inp.get_array()
            peak = float(np.abs(x).max())
            if not np.isfinite(peak):
                self.nonfinite += 1
                return
            self.peak = max(self.peak, peak)
            if peak > self.silence:
                self.loud += 1
                self.quiet_run = 0
            else:
                self.quiet += 1
                self.quiet_run += 1
                self.longest_quiet = max(self.longest_quiet, self.quiet_run)
                if self.expect_sound and self.period >= self.expect_from:
                    self.quiet_while_expected += 1
        except Exception:
            self.errors += 1

    def connect(self, client="vqsynth"):
        self.client.connect(self.out.name, f"{client}:midi_in")
        self.client.connect(f"{client}:out_1", self.inp.name)

    def close(self):
        self.client.deactivate()
        self.client.close()



def _drain(sock):
    """Read every reply waiting on a non-blocking socket: (replies, of which /fail)."""
    replies = fails = 0
    while True:
        try:
            reply = sock.recv(65536)
        except BlockingIOError:
            return replies, fails
        replies += 1
        fails += reply.startswith(b"/fail")

def storm(rate, periods_per_second, seed=0, channels=1):
    """Note-on/off storm: `rate` MIDI messages a second, each note released 4 periods later."""
    rng = np.random.default_rng(seed)
    per_period = max(rate / periods_per_second, 0.0)
    pending = {}  # period -> note-offs due
    state = {"debt": 0.0, "on": True}

    def schedule(period):
        state["debt"] += per_period
        events = []
        events += [(0, note) for note in pending.pop(period, [])]  # paid for with their note-ons
        while state["debt"] >= 2 and state["on"]:  # a note-on now and its note-off later
            ch = int(rng.integers(0, channels))
            pitch, vel = int(rng.integers(24, 106)), int(rng.integers(30, 127))
            events.append((int(rng.integers(0, 128)), bytes([0x90 | ch, pitch, vel])))
            pending.setdefault(period + 4, []).append(bytes([0x80 | ch, pitch, 0]))
            state["debt"] -= 2
        if not state["on"]:  # finishing: let every pending note-off out
            for due in sorted(k for k in pending if k <= period + 8):
                events += [(0, n) for n in pending.pop(due)]
        events.sort(key=lambda e: e[0])
        return events
    schedule.state = state
    schedule.pending = pending
    return schedule


# ------------------------------------------------------------------ the OSC side, in its own process

def _osc_messages(seed, n=4096):
    from fuzz_targets import osc_message

    rng = np.random.default_rng(seed)
    out, held = [], []
    for _ in range(n):
        r = rng.random()
        if r < 0.4:
            if held and (len(held) > 6 or rng.random() < 0.5):
                out.append(osc_message("/vqsynth/note/off", held.pop(0)))
            else:
                p = int(rng.integers(36, 96))
                held.append(p)
                out.append(osc_message("/vqsynth/note/on", p, int(rng.integers(40, 127))))
        elif r < 0.7:
            out.append(osc_message(f"/vqsynth/attr/{rng.choice(['brightness', 'warmth', 'roughness'])}",
                                   float(rng.random())))
        elif r < 0.9:
            out.append(osc_message("/vqsynth/cc", int(rng.choice([74, 1, 71, 77])), int(rng.integers(0, 128))))
        else:
            out.append(osc_message("/vqsynth/bend", float(rng.uniform(-1, 1))))
    out += [osc_message("/vqsynth/note/off", p) for p in held]
    return out


def osc_sender(port, rate, seconds, seed, results):
    """Child process: send `rate` OSC messages a second for `seconds`, paced every millisecond;
    read every reply (a /fail would mean a good message was refused)."""
    msgs = _osc_messages(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    target = ("127.0.0.1", port)
    sent = fails = replies = send_errors = 0
    start = time.perf_counter()
    i = 0
    late_ms = 0
    while True:
        now = time.perf_counter() - start
        if now >= seconds:
            break
        due = int(now * rate)
        if due - sent > rate * 0.05:  # more than 50 ms behind: the sender cannot keep up; count it
            late_ms += 1
        while sent < due:
            try:
                sock.sendto(msgs[i % len(msgs)], target)
                sent += 1
                i += 1
            except BlockingIOError:
                send_errors += 1
                break
        r, f = _drain(sock)
        replies, fails = replies + r, fails + f
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    # let replies arrive, then say what was sent
    time.sleep(0.2)
    r, f = _drain(sock)
    replies, fails = replies + r, fails + f
    # the last message of the cycle may leave a note held: release them all
    for p in range(128):
        sock.sendto(_osc_release(p), target)
    results.put({"sent": sent, "seconds": round(elapsed, 2), "rate": round(sent / elapsed), "fails": fails,
                 "replies": replies, "send_errors": send_errors, "behind_ms": late_ms, "releases": 128})


def _osc_release(p):
    from fuzz_targets import osc_message

    return osc_message("/vqsynth/note/off", p)


# ------------------------------------------------------------------ memory

class Memory:
    """Samples a process's resident memory once a second."""

    def __init__(self, pid, every=1.0):
        import psutil

        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []
        self.every = every
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                self.samples.append((time.monotonic() - self.t0, self.proc.memory_info().rss / 2**20))
            except Exception:
                return
            time.sleep(self.every)

    def stop(self):
        self.running = False
        self.thread.join(2)

    def summary(self, skip=5.0):
        """Start/end/max RSS in MiB (start = after `skip` s of warm-up) and the slope, MiB/minute."""
        s = [(t, m) for t, m in self.samples if t >= skip] or self.samples
        t = np.array([x[0] for x in s])
        m = np.array([x[1] for x in s])
        slope = float(np.polyfit(t, m, 1)[0] * 60) if len(s) > 2 and np.ptp(t) > 0 else 0.0
        half = s[len(s) // 2:]
        slope2 = float(np.polyfit([x[0] for x in half], [x[1] for x in half], 1)[0] * 60) if len(half) > 2 else 0.0
        return {"rss_start_mb": round(float(m[0]), 1), "rss_end_mb": round(float(m[-1]), 1),
                "rss_max_mb": round(float(m.max()), 1), "rss_slope_mb_per_min": round(slope, 2),
                "rss_slope_second_half_mb_per_min": round(slope2, 2), "samples": len(s)}


# ------------------------------------------------------------------ a witness in a process of its own

def _witness(server, seconds, results, follow=None):
    """Child process: a JACK client whose callback copies a block out of a ring, as an audio
    process fed by shared memory would, counted by the same CycleWatch as vqsynth's callback.
    Nothing else in this process wants the GIL. Connected to nothing it runs as soon as the
    cycle starts; with `follow` (a MIDI output port) it reads that port, so JACK runs it after
    that port's client, in the place vqsynth has in the rig."""
    import jack

    client = jack.Client("witness", servername=server, no_start_server=True)
    port = client.outports.register("out")
    midi_in = client.midi_inports.register("midi_in") if follow else None
    ring = np.zeros(48000, dtype=np.float32)
    watch = CycleWatch(client)
    state = {"periods": 0, "midi": 0}

    def process(frames):
        cycle, entered = watch.enter()
        if midi_in is not None:
            for _ in midi_in.incoming_midi_events():
                state["midi"] += 1
        i = (state["periods"] * frames) % (ring.shape[0] - frames)
        port.get_array()[:] = ring[i:i + frames]
        state["periods"] += 1
        watch.leave(frames, cycle, entered)

    client.set_process_callback(process)
    client.activate()
    if follow:
        client.connect(follow, midi_in)
    results.put("ready")
    time.sleep(seconds)
    client.deactivate()
    client.close()
    results.put({"periods": state["periods"], "late_callbacks": watch.late,
                 "late_callbacks_entered_late": watch.waited, "follows": follow, "midi_events": state["midi"]})


class Witness:
    """Starts `_witness` beside the server for `seconds`; `result()` has its counts."""

    def __init__(self, server, seconds, follow=None):
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.proc = ctx.Process(target=_witness, args=(server, seconds, self.results, follow), daemon=True)
        self.proc.start()
        if self.results.get(timeout=30) != "ready":
            raise RuntimeError("the witness client did not start")

    def result(self, timeout):
        out = self.results.get(timeout=timeout)
        self.proc.join(5)
        return out


class NativeWitness:
    """perf/witness.c, built here with cc: the same witness with no Python in it (None without cc)."""

    def __init__(self, server, seconds):
        exe = Path(tempfile.mkdtemp(prefix="vqs-witness-")) / "witness"
        subprocess.run(["cc", "-O2", "-o", str(exe), str(HERE / "witness.c"), "-l:libjack.so.0"], check=True)
        self.proc = subprocess.Popen([str(exe), server, str(seconds)], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the native witness did not start")

    @classmethod
    def start(cls, server, seconds):
        return cls(server, seconds) if shutil.which("cc") else None

    def result(self, timeout):
        out, _ = self.proc.communicate(timeout=timeout)
        periods, late, waited = (int(x) for x in out.split())
        return {"periods": periods, "late_callbacks": late, "late_callbacks_entered_late": waited}


# ------------------------------------------------------------------ all notes off, then count voices

def release_everything(player, port, timeout=5.0):
    """Pedal up and all-notes-off on every channel (MIDI and OSC), then wait for silence."""
    events = []
    for ch in range(16):
        events += [(0, bytes([0xB0 | ch, 64, 0])), (0, bytes([0xB0 | ch, 123, 0]))]
    done = {"sent": False}
    previous = player.schedule

    def schedule(period):
        if not done["sent"]:
            done["sent"] = True
            return events
        return []
    player.schedule = schedule
    probe = OscProbe(port)
    try:
        for ch in range(1, 17):
            probe.send_message("/vqsynth/cc", [64, 0, ch])
            probe.send_message("/vqsynth/cc", [123, 0, ch])
        probe.sync(timeout=5.0)
        t0 = time.monotonic()
        voices = probe.status()["voices"]
        while voices and time.monotonic() - t0 < timeout:
            time.sleep(0.05)
            voices = probe.status()["voices"]
        return {"voices_after_all_notes_off": voices, "silence_after_s": round(time.monotonic() - t0, 2)}
    finally:
        probe.close()
        player.schedule = previous


# ------------------------------------------------------------------ one run

DRAIN_TIMEOUT = 30.0  # seconds the server may take to read what a storm left in its receive buffer


def wait_for_backlog(port) -> int:
    """Ask /vqsynth/status until the server answers; returns how many were sent. The storm leaves
    the receive buffer full (2 MB), so a query sent now may be dropped by the kernel (and counted as
    dropped) or wait seconds behind the backlog; once one is answered, a query after it is read."""
    probe = OscProbe(port)
    sent, deadline = 0, time.monotonic() + DRAIN_TIMEOUT
    try:
        while True:
            sent += 1
            try:
                probe.ask("/vqsynth/status", reply="/status.reply", timeout=1.0)
                return sent
            except AssertionError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server answered none of {sent} status queries in "
                                         f"{DRAIN_TIMEOUT:.0f} s after the storm") from None
    finally:
        probe.close()


def run(model_dir, seconds=10.0, osc_rate=10000, midi_rate=3000, period=128, seed=0, midi_schedule=None,
        osc_process=None, extra_args=(), on_second=None, server_nice=None, progress=None, witness=False) -> dict:
    """Start jackd + the server, play for `seconds`, release everything, collect the figures."""
    jackd = Jackd(period=period)
    server = Server(model_dir, "--audio", "jack", *extra_args, env=jack_env(jackd.name), nice=server_nice)
    out_nice = os.getpriority(os.PRIO_PROCESS, server.proc.pid)
    memory = Memory(server.proc.pid)
    out = {"seconds": seconds, "osc_rate_target": osc_rate, "midi_rate_target": midi_rate, "period": period,
           "server_nice": out_nice, "harness_nice": os.getpriority(os.PRIO_PROCESS, 0)}
    player = None
    try:
        periods_per_second = 48000 / period
        schedule = midi_schedule or storm(midi_rate, periods_per_second, seed)
        player = Player(jackd.name, lambda p: [])
        player.connect()
        time.sleep(0.3)
        before = counters(server.port)
        watcher = Witness(jackd.name, seconds, follow=player.out.name) if witness else None
        native = NativeWitness.start(jackd.name, seconds) if witness else None
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        sender = None
        if osc_rate > 0:
            sender = ctx.Process(target=osc_process or osc_sender, args=(server.port, osc_rate, seconds, seed, results))
            sender.start()
        player.schedule = schedule
        player.expect_from = player.period + int(periods_per_second)  # a second to get going
        player.expect_sound = midi_schedule is not None  # the soak keeps a note sounding throughout
        t0 = time.monotonic()
        timeline = []
        queries = 0  # our own /vqsynth/counters queries while playing (progress files)
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            s = osc_status(server.port)
            timeline.append({"t": round(time.monotonic() - t0, 1), "voices": s and s["voices"],
                             "cpu_load": s and round(s["cpu_load"], 2),
                             "underruns": s and s["underruns"], "rss_mb": memory.samples[-1][1] if memory.samples else None,
                             "load1": round(os.getloadavg()[0], 2)})  # the machine is shared: say how busy it was
            if on_second:
                on_second(timeline[-1])
            if progress and len(timeline) % 10 == 0:  # a run cut short still leaves its figures so far
                now = counters(server.port)
                queries += 1
                Path(progress).write_text(json.dumps({**out, "partial": True, "memory": memory.summary(),
                                                      "counters_so_far": {k: now[k] - before.get(k, 0) for k in now},
                                                      "audio_so_far": {"periods": player.period, "quiet_while_playing":
                                                                       player.quiet_while_expected,
                                                                       "nonfinite": player.nonfinite},
                                                      "timeline": timeline}, indent=1) + "\n")
        player.expect_sound = False
        if hasattr(schedule, "state"):
            schedule.state["on"] = False  # stop starting notes; the pending note-offs go out
        osc = results.get(timeout=60) if sender else {}
        if sender:
            sender.join(10)
        if watcher is not None:
            out["witness"] = watcher.result(timeout=60)
        if native is not None:
            out["witness_native"] = native.result(timeout=60)
        time.sleep(0.3)
        midi_sent = player.sent
        polls = len(timeline) + queries
        asked = time.monotonic()
        polls += wait_for_backlog(server.port)
        out["backlog_drained_s"] = round(time.monotonic() - asked, 2)
        mid = counters(server.port)  # one more packet and message: the query itself
        moved = {k: mid.get(k, 0) - before.get(k, 0) for k in mid}
        sent_osc = osc.get("sent", 0) + osc.get("releases", 0)
        out["osc"] = {**osc, "handled": moved.get("osc.messages", 0) - polls - 1,
                      "dropped_counted": moved.get("osc.dropped", 0),
                      "refused": sum(v for k, v in moved.items() if k.startswith("osc.") and k not in
                                     ("osc.messages", "osc.packets", "osc.dropped", "osc.late")),
                      # every datagram sent is either read (packets) or counted as dropped: nothing silent
                      "unaccounted": sent_osc + polls + 1 - moved.get("osc.packets", 0) - moved.get("osc.dropped", 0)}
        if osc:
            out["osc"]["handled_rate"] = round((out["osc"]["handled"] - osc["releases"]) / osc["seconds"])
        out["midi"] = {"sent": midi_sent, "not_sent_port_full": player.not_sent,
                       "handled": moved.get("midi.messages", 0), "malformed": moved.get("midi.malformed", 0),
                       "dropped_counted": moved.get("midi.dropped", 0),
                       "unaccounted": midi_sent - moved.get("midi.messages", 0) - moved.get("midi.dropped", 0),
                       "handled_rate": round(moved.get("midi.messages", 0) / seconds)}
        out.update(release_everything(player, server.port))
        memory.stop()
        out["engine"] = {k: 0 for k in ("callback_errors", "render_errors", "nonfinite", "underruns")}  # zeros are not sent
        out["engine"].update({k.split(".", 1)[1]: v for k, v in moved.items() if k.startswith("engine.")})
        out["engine"]["gc_longest_us"] = mid.get("engine.gc_longest_us", 0)  # a maximum, not a count
        out["audio"] = {"periods": player.period, "loud": player.loud, "quiet": player.quiet,
                        "longest_quiet_ms": round(player.longest_quiet * period / 48, 1),
                        "quiet_while_playing": player.quiet_while_expected, "nonfinite": player.nonfinite,
                        "peak": round(player.peak, 3), "player_xruns": player.xruns, "player_errors": player.errors,
                        "player_late_callbacks": player.watch.late, "player_late_callbacks_entered_late": player.watch.waited}
        out["underruns"] = out["engine"].get("underruns", 0)
        out["memory"] = memory.summary()
        out["voices_max"] = max((x["voices"] or 0) for x in timeline) if timeline else None
        out["machine_load1_mean"] = round(float(np.mean([x["load1"] for x in timeline])), 2) if timeline else None
        out["cpus"] = os.cpu_count()
        out["timeline"] = timeline
        player.close()
        player = None
        rc = server.stop()
        out["server_returncode"] = rc
        out["server_traceback"] = "Traceback" in server.output()
        out["server_tail"] = server.output()[-1500:]
        return out
    finally:
        memory.running = False
        if player is not None:
            player.close()
        server.kill()
        jackd.stop()


def osc_status(port):
    from faults import osc_status as status

    return status(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--osc-rate", type=int, default=10000, help="OSC messages a second")
    ap.add_argument("--midi-rate", type=int, default=3000, help="MIDI messages a second (note-on/off pairs)")
    ap.add_argument("--period", type=int, default=128, help="JACK period in frames")
    ap.add_argument("--model", default=None, help="model folder (default: a random-weight test model made here)")
    ap.add_argument("--server-nice", type=int, default=None,
                    help="niceness of the server under test (default: this script's)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    model_dir = args.model
    if model_dir is None:
        from vqsynth.train.export import make_test_model

        model_dir = make_test_model(Path(tempfile.mkdtemp(prefix="vqs-flood-")) / "test-random")
    extra = [] if args.period == 128 else ["--block-size", str(args.period)]
    out = run(model_dir, args.seconds, args.osc_rate, args.midi_rate, args.period, extra_args=extra,
              on_second=lambda s: print(json.dumps(s), flush=True), server_nice=args.server_nice)
    out["command"] = " ".join(["perf/flood.py", *sys.argv[1:]])
    report(out, args.json)


def report(out: dict, json_path=None):
    """Print the figures (not the per-second timeline) and keep all of it in `json_path`."""
    print(json.dumps({k: v for k, v in out.items() if k not in ("timeline", "server_tail")}, indent=1))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
