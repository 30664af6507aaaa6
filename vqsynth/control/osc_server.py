"""OSC over UDP: one receiving thread, scheduled bundles, replies and pushes to the sender.

Not python-osc's servers: its threading server handles packets out of order (a note-off can
beat its note-on), socketserver truncates datagrams at 8192 bytes, and its dispatcher sleeps
until a bundle's timetag and drops bad packets silently. Here a packet is read whole (up to
65535 bytes), every message in it is stamped with when it should sound (`t`, time.monotonic()
scale) and handed to the engine, which schedules it; anything wrong is answered with
`/fail <address> <why>` and counted, and the thread never dies of it.
"""

from __future__ import annotations

import errno
import heapq
import ipaddress
import logging
import queue
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

from vqsynth.control.files import FileAccess
from vqsynth.control.lograte import RateLimitedLog
from vqsynth.control.midi import MidiController
from vqsynth.control.osc_addresses import (MAX_SUBSCRIBERS, SUBSCRIPTION_S, Address, Arg, ArgError, Request,
                                           convert, lookup)
from vqsynth.control.osc_packet import OscParseError, build, parse

log = logging.getLogger("vqsynth.control.osc")

MAX_DATAGRAM = 65535
PUSH_BUDGET = 128 * 1024  # bytes a second of pushes to all subscribers together (16 phones at 100/s
#                         of levels is ~50 KB/s): past it pushes wait their turn, nothing floods
MAX_HOSTS_SEEN = 4096  # allow-list verdicts remembered
MAX_ECHO = 256  # characters of a sender's address echoed back in /fail
# what a server sends: answering any of these with /fail is how two servers (or one server and
# itself) ping-pong forever, so an unknown one is counted and dropped, never answered
PER_SENDER_QUEUED = 4096  # events one host may have waiting for their timetag (the engine holds 65,536 in all)
REPLY_EXACT = {"/fail", "/done", "/synced", "/vqsynth/level", "/vqsynth/learned"}
REPLY_PREFIXES = ("/vqsynth/state/",)


def parse_hosts(text: str | None):
    """`--allow-hosts`: comma-separated addresses or networks (192.168.1.20, 10.0.0.0/8) ->
    networks; None or "" -> None (any host that can reach the bind address). ValueError names
    the entry that is neither."""
    if not text:
        return None
    out = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            out.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"--allow-hosts: '{entry[:64]}' is not an address or network "
                             "(like 192.168.1.20 or 192.168.1.0/24)") from None
    return out or None


def is_reply_address(address: str) -> bool:
    return address in REPLY_EXACT or address.endswith(".reply") or address.startswith(REPLY_PREFIXES)


def local_hosts() -> set:
    """Addresses that reach this machine: pushing to one of them on our own port loops."""
    hosts = {"0.0.0.0", "localhost"}
    try:
        hosts |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    return hosts
# Linux tells, with each datagram, how many the kernel dropped because the receive buffer was full
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40 if sys.platform.startswith("linux") else None)


class OscPortInUse(OSError):
    """The UDP port is taken; the message names it and what to do."""


@dataclass
class Subscriber:
    """A /vqsynth/notify client: where its pushes go and how often."""

    to: tuple[str, int]
    interval: float  # seconds between pushes
    due: float = 0.0  # time.monotonic() of its next push
    seen: int = 0  # the state version it last got: it is sent what changed since
    heard: float = 0.0  # time.monotonic() of the last datagram from its host: the lease


class OscServer:
    """OSC in on UDP `host:port` (port 0: any free one, read back from `.port`).

    engine: the Engine; controller: the MidiController shared with MIDI input (default: one
    with the default mapping); max_ahead: bundles timed further ahead than this many seconds
    are refused (a sender whose clock is off would otherwise queue notes for hours).
    """

    def __init__(self, engine, controller: MidiController | None = None, host: str = "0.0.0.0",
                 port: int = 9000, max_ahead: float = 60.0, learn_file=None, files_dir=None,
                 allow_writes: str = "local", state_file=None, allow_hosts=None):
        self.engine = engine
        self.controller = controller or MidiController(engine)
        self.host, self.port = host, port
        self.max_ahead = max_ahead
        self.learn_file = learn_file  # where /vqsynth/learn saves (None: learned bindings live in memory only)
        self.files = FileAccess(files_dir)  # what file commands may read (None: nothing)
        self.follower = None  # the audio input's follower (serve --follow-input), for /vqsynth/follow/*
        self.dump = None  # an EventDump (serve --dump-osc) that sees every message
        self.state_file = state_file  # what /vqsynth/state/save and load use (None: they are off)
        if allow_writes not in ("none", "local", "any"):
            raise ValueError(f"allow_writes {allow_writes!r}: none, local or any")
        self.allow_writes = allow_writes  # who may make the server change files (MIDI learn's saves)
        self.allow_hosts = allow_hosts  # networks that may play it (None: any that reaches the bind address)
        self._allowed: dict[str, bool] = {}  # host -> verdict, at most MAX_HOSTS_SEEN remembered
        self.counters: Counter = Counter()
        self.subscribers: dict[tuple[str, int], Subscriber] = {}
        self.state: dict[tuple, tuple[int, str, list]] = {}  # key -> (version, address, args): the latest only
        self.version = 0
        self._reseed = False  # a new subscriber came: take the whole state from the engine again
        self.sock: socket.socket | None = None
        self.running = False
        self.threads: list[threading.Thread] = []
        self._pushes: queue.SimpleQueue = queue.SimpleQueue()
        self._log = RateLimitedLog(log, "OSC")
        self._local = local_hosts()
        self._queued: dict[str, list] = {}  # host -> due times (monotonic) of its events still waiting
        self._quota_told: set = set()  # hosts told they are over quota, until they are under it again

    def start(self) -> "OscServer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise OscPortInUse(f"OSC port {self.port} ({self.host}) is already in use "
                                   "(another vqsynth, or another OSC program?): choose another port "
                                   "(--osc-port) or stop that program") from None
            raise
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # ride out bursts
        self._kernel_drops = None  # None: this OS cannot count datagrams lost to a full buffer
        if SO_RXQ_OVFL is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
                self._kernel_drops = 0
            except OSError:
                pass
        sock.settimeout(1.0)  # stop() wakes the loop at once; this is the fallback
        self.sock, self.port, self.running = sock, sock.getsockname()[1], True
        self._local = local_hosts() | {self.host}
        self.engine.add_listener(self._on_engine_event)
        self.threads = [threading.Thread(target=self._receive_loop, name="vqsynth-osc-in", daemon=True),
                        threading.Thread(target=self._push_loop, name="vqsynth-osc-push", daemon=True)]
        for th in self.threads:
            th.start()
        self.files.start()
        log.info("OSC in on udp %s:%d", self.host, self.port)
        return self

    def stop(self):
        self.running = False
        self.engine.remove_listener(self._on_engine_event)
        if self.sock is not None:  # wake the receiving thread with an empty datagram
            host = self.sock.getsockname()[0]
            self.sock.sendto(b"", ("127.0.0.1" if host == "0.0.0.0" else host, self.port))
        for th in self.threads:
            th.join(timeout=2.0)
        self.threads = []
        self.files.stop()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------ receiving
    def _receive_loop(self):
        while self.running:
            try:
                if self._kernel_drops is None:
                    dgram, sender = self.sock.recvfrom(MAX_DATAGRAM)
                else:
                    dgram, ancillary, _, sender = self.sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(4))
                    self._note_drops(ancillary)
            except socket.timeout:
                continue
            except OSError as exc:  # e.g. Windows reports an earlier reply's ICMP unreachable here
                self._count("receive errors", str(exc))
                continue
            if not self.running:
                return
            try:
                self.handle_packet(dgram, sender, time.monotonic(), time.time())
            except Exception:  # a bug in a handler must not stop OSC input
                log.exception("OSC packet from %s failed", sender)
                self.counters["errors"] += 1

    def _note_drops(self, ancillary):
        """Datagrams the kernel dropped (receive buffer full: a sender faster than we read)."""
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL and len(data) >= 4:
                total = struct.unpack("=I", data[:4])[0]
                if total > self._kernel_drops:
                    self.counters["dropped"] += total - self._kernel_drops - 1  # _count adds the last one
                    self._kernel_drops = total
                    self._count("dropped", f"{total} datagrams lost so far: the receive buffer was full "
                                           "(a sender faster than vqsynth reads)")

    def may_write(self, sender) -> bool:
        """May this sender make the server change files? 'local': only processes on this machine."""
        if self.allow_writes == "any":
            return True
        return self.allow_writes == "local" and self.is_local(sender[0])

    def is_local(self, host: str) -> bool:
        """A host address of this machine (loopback, or one of its own interfaces)."""
        return host.startswith("127.") or host in self._local

    def may_play(self, host: str) -> bool:
        """Is `host` on the allow-list (or is there none)? This machine always may."""
        if self.allow_hosts is None or self.is_local(host):
            return True
        verdict = self._allowed.get(host)
        if verdict is None:
            try:
                ip = ipaddress.ip_address(host)
                verdict = any(ip in net for net in self.allow_hosts)
            except ValueError:
                verdict = False
            if len(self._allowed) >= MAX_HOSTS_SEEN:  # a spoofing sender cannot grow this without bound
                self._allowed.clear()
            self._allowed[host] = verdict
        return verdict

    def is_own(self, to) -> bool:
        """Is `to` (host, port) this server's own socket? Pushing or answering there loops."""
        host, port = to
        return port == self.port and self.is_local(host)

    def handle_packet(self, dgram: bytes, sender, now: float, wall: float):
        """Parse one datagram and dispatch its messages in order; `now`/`wall`: arrival times."""
        self.counters["packets"] += 1
        if not self.may_play(sender[0]):  # not answered: a refusal would be traffic for a stranger
            self._count("hosts refused", f"{sender[0]}: not in --allow-hosts (dropped, never answered)")
            return
        if self.is_own(sender):
            self._count("own packets", "a datagram from this server's own port (dropped, never answered)")
            return
        for sub in list(self.subscribers.values()):  # any word from a subscriber's host renews its lease
            if sub.to[0] == sender[0]:
                sub.heard = now
        try:
            messages = parse(dgram)
        except OscParseError as exc:
            self.fail(sender, _leading_address(dgram), str(exc), "malformed")
            return
        for m in messages:
            t = now
            if m.timetag is not None:
                t = now + (m.timetag - wall)
                if t > now + self.max_ahead:
                    self.fail(sender, m.address, f"timetag {t - now:.1f} s ahead, more than "
                               f"{self.max_ahead:g} s (is the sender's clock right?)", "too far ahead")
                    continue
                if t < now:
                    self.counters["late"] += 1  # played at once
                    t = now
                elif t > now + 0.05 and not self._within_quota(sender, now, t):
                    continue
            self._dispatch(m.address, m.args, sender, t)

    def _within_quota(self, sender, now, t) -> bool:
        """Room for one more event timed for later from this sender's host? Refusals are counted
        every time and told once (one /fail) until the host is under its quota again."""
        host = sender[0]
        due = self._queued.setdefault(host, [])  # a heap of due times
        while due and due[0] <= now:
            heapq.heappop(due)
        if len(due) >= PER_SENDER_QUEUED:
            why = (f"{PER_SENDER_QUEUED} events from this host already wait for their timetag: later ones "
                   "are dropped until some have played")
            if host in self._quota_told:
                self._count("over quota", f"{host}: {why}")
            else:
                self._quota_told.add(host)
                self.fail(sender, "#bundle", why, "over quota")
            return False
        self._quota_told.discard(host)
        heapq.heappush(due, t)
        return True

    def _dispatch(self, address, args, sender, t):
        self.counters["messages"] += 1
        if self.dump is not None:
            self.dump.put("osc", f"{sender[0]}:{sender[1]} {address} {' '.join(map(repr, args))}")
        found = lookup(address) or self._mapped(address)
        if found is None:
            if is_reply_address(address):
                self._count("replies ignored", f"{address[:MAX_ECHO]}: a reply or a push, not a command "
                                               "(another server's, or this one's come back): not answered")
                return
            self.fail(sender, address, "unknown address (see the README's OSC table)", "unknown address")
            return
        row, path = found
        try:
            values = convert(row, args)
            row.handler(Request(self, sender, address, t), *values, **path)
        except ArgError as exc:
            self.fail(sender, address, str(exc), "bad arguments")
        except ValueError as exc:  # the engine's InputError, or a value the controller refused
            self.fail(sender, address, str(exc), "rejected")
        except Exception as exc:  # a bug: the sender still hears about it, the thread goes on
            log.exception("OSC handler for %s failed", address)
            self.fail(sender, address, f"internal error: {exc!r}", "errors")

    def _mapped(self, address):
        """An address bound in the mapping file: one number in the binding's input range."""
        binding = self.controller.mapping.osc.get(address)
        if binding is None:
            return None
        target = self.controller.targets[binding.target]
        return Address(address, (Arg("value", "number"),),
                       lambda req, v: target.apply(self.engine, binding.value_from_input(v), req.t,
                                              smooth_ms=binding.smooth_ms),
                       f"mapped to {binding.target}"), {}

    # ------------------------------------------------------------ sending
    def send(self, to, address: str, *args) -> int:
        """Send one message; returns the bytes sent (0: not sent, counted)."""
        try:
            dgram = build(address, *args)
        except Exception as exc:  # python-osc's BuildError: a value OSC cannot carry
            self._count("send errors", f"cannot build {address}: {exc}")
            return 0
        sock = self.sock  # None once stopped: a late reply (a learn that timed out at shutdown) is dropped
        if sock is None:
            return 0
        try:
            sock.sendto(dgram, to)
        except OSError as exc:
            self._count("send errors", str(exc))
            return 0
        return len(dgram)

    def fail(self, sender, address: str, why: str, counter: str):
        self._count(counter, f"{address[:MAX_ECHO]}: {why[:MAX_ECHO]}")
        # an address or a reason that echoes a huge argument is cut, so the reply always fits a datagram
        self.send(sender, "/fail", _cut(address, MAX_ECHO), _cut(why, 4 * MAX_ECHO))

    def _count(self, kind: str, detail: str):
        self.counters[kind] += 1
        self._log.warn(kind, detail)

    # ------------------------------------------------------------ subscriptions
    def subscribe(self, client, on: bool, rate: float = 10.0):
        """Start (or retime) or stop pushes to `client`; a new subscriber gets the whole state first.
        Raises ValueError (answered with /fail) for this server's own port, or when MAX_SUBSCRIBERS
        already listen. A subscription lapses after SUBSCRIPTION_S without a datagram from its host."""
        if on:
            if self.is_own(client):
                raise ValueError(f"cannot push to port {client[1]} of {client[0]}: that is this server itself")
            old = self.subscribers.get(client)
            if old is None and len(self.subscribers) >= MAX_SUBSCRIBERS:
                raise ValueError(f"{MAX_SUBSCRIBERS} subscribers already: stop one first (/vqsynth/notify 0)")
            self._reseed = self._reseed or old is None  # changes went unrecorded while nobody listened
            self.subscribers[client] = Subscriber(client, 1.0 / rate, seen=old.seen if old else 0,
                                                  heard=time.monotonic())
        else:
            self.subscribers.pop(client, None)

    def _on_engine_event(self, kind: str, payload: dict):
        """Called on whichever thread changed the engine (the JACK callback included): enqueue only,
        and nothing at all while nobody listens (a flood of attribute moves costs nothing extra)."""
        if self.running and self.subscribers:
            self._pushes.put((kind, payload))

    def _seed_state(self):
        s = self.engine.status()
        for name, value in s["attrs"].items():
            self._remember("attr", {"name": name, "value": value})
        self._remember("volume", {"value": s["volume"]})
        if s["preset"] is not None:
            self._remember("preset", {"index": s["preset"], "name": self.engine.model.presets[s["preset"]]})
        else:
            self._remember("preset", {"index": -1, "name": "(custom z)"})
        self._remember("z", {"values": [float(x) for x in self.engine.z]})

    def _remember(self, kind: str, payload: dict):
        """Keep the latest value of each thing a subscriber sees: an attribute moves the address
        that sets it and every OSC address the mapping binds to it (a TouchOSC fader follows)."""
        if kind in ("attr", "volume"):
            name = payload.get("name", "volume")
            value = float(payload["value"])
            self._store(("attr", name), f"/vqsynth/attr/{name}", [value])
            for address, binding in self.controller.mapping.osc.items():
                x = binding.input_from_value(value) if binding.target == name else None
                if x is not None:
                    self._store(("osc", address), address, [float(x)])
        elif kind == "z":
            self._store((kind,), "/vqsynth/state/z", list(payload["values"]))
        elif kind == "part":  # /vqsynth/state/part/level n volume expression pan, .../preset n index name
            n = payload["part"] + 1
            if "preset" in payload:
                self._store(("part", n, "preset"), "/vqsynth/state/part/preset", [n, payload["preset"], payload["name"]])
            else:
                self._store(("part", n, "level"), "/vqsynth/state/part/level",
                            [n, float(payload["volume"]), float(payload["expression"]), float(payload["pan"])])
        else:
            self._store((kind,), f"/vqsynth/state/{kind}", list(payload.values()))

    def _store(self, key, address, args):
        self.version += 1
        self.state[key] = (self.version, address, args)

    def _push_loop(self):
        """Coalesce changes and push each subscriber what changed since its last push, plus
        `/vqsynth/level db voices`, at the rate it asked for: a CC sweep cannot flood a phone. All
        subscribers together get at most PUSH_BUDGET bytes a second (a token bucket): past it, the
        rest wait for the next round and their changes merge meanwhile."""
        budget, refilled = float(PUSH_BUDGET), time.monotonic()
        while self.running:
            now = time.monotonic()
            wait = min([sub.due for sub in list(self.subscribers.values())], default=now + 0.1) - now
            try:
                kind, payload = self._pushes.get(timeout=min(max(wait, 0.0), 0.1))
                self._remember(kind, payload)
                while True:
                    kind, payload = self._pushes.get_nowait()
                    self._remember(kind, payload)
            except queue.Empty:
                pass
            now = time.monotonic()
            for sub in list(self.subscribers.values()):
                if now - sub.heard > SUBSCRIPTION_S:
                    self.subscribers.pop(sub.to, None)
                    self._count("subscriptions lapsed", f"{sub.to}: nothing heard from its host for "
                                                        f"{SUBSCRIPTION_S:g} s (send /vqsynth/notify again)")
            due = [sub for sub in list(self.subscribers.values()) if sub.due <= now]
            if not due:
                continue
            if self._reseed:
                self._reseed = False
                self._seed_state()
            s = self.engine.status()
            changes = sorted(self.state.values(), key=lambda item: item[0])
            budget, refilled = min(budget + (now - refilled) * PUSH_BUDGET, PUSH_BUDGET), now
            for sub in sorted(due, key=lambda sub: sub.due):  # the longest waiting first
                if budget <= 0:
                    self.counters["pushes deferred"] += 1
                    time.sleep(0.01)  # let the bucket refill rather than spin
                    break
                for version, address, args in changes:
                    if version > sub.seen:
                        budget -= self.send(sub.to, address, *args)
                budget -= self.send(sub.to, "/vqsynth/level", float(s["level_db"]), int(s["voices"]))
                sub.seen, sub.due = self.version, max(sub.due + sub.interval, now)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _leading_address(dgram: bytes) -> str:
    """The address a broken packet seems to be for, to name it in /fail ('' if none)."""
    head = dgram[:128].split(b"\x00", 1)[0]
    text = head.decode("ascii", "replace")
    return text if text.startswith(("/", "#bundle")) else ""
