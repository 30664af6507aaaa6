"""A stranger's datagram cannot start a packet loop or an endless stream of pushes
(issue: what a stranger on the network can do, findings 1 and 5). Real UDP on loopback."""

import time

import numpy as np

import pytest

from osc_fixtures import first_reply
from rig import OscProbe
from vqsynth.control import osc_server
from vqsynth.control.osc_server import OscServer


def test_notify_to_the_servers_own_port_is_refused_and_starts_no_loop(server, probe):
    probe.send_message("/vqsynth/notify", [1, 10, server.port])
    reply = probe.next_reply()
    assert reply[0] == "/fail" and "this server itself" in reply[1][1]
    probe.sync()
    before = server.counters["packets"]
    time.sleep(0.5)
    assert server.subscribers == {}
    assert server.counters["packets"] - before < 5  # the loop was ~16,000 packets a second


@pytest.mark.parametrize("address", ["/fail", "/done", "/synced", "/status.reply", "/counters.reply",
                                     "/vqsynth/state/preset", "/vqsynth/level", "/vqsynth/learned"])
def test_a_reply_or_push_that_comes_back_is_never_answered(server, probe, address):
    """Two servers told about each other answered each other's /fail forever."""
    probe.send_message(address, ["/vqsynth/x", "unknown address"])
    assert probe.sync() == []  # nothing came back before /synced
    assert server.counters["replies ignored"] == 1


def test_a_datagram_from_the_servers_own_port_is_dropped(server):
    server.sock.sendto(b"/nonsense\x00\x00\x00,\x00\x00\x00", ("127.0.0.1", server.port))
    deadline = time.monotonic() + 2.0
    while server.counters["own packets"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.counters["own packets"] == 1 and server.counters["unknown address"] == 0


def test_subscribers_are_bounded(server, monkeypatch):
    monkeypatch.setattr(osc_server, "MAX_SUBSCRIBERS", 3)
    probes = [OscProbe(server.port) for _ in range(4)]
    try:
        for p in probes[:3]:
            p.send_message("/vqsynth/notify", [1, 10])
            assert p.next_reply() == ("/done", ["/vqsynth/notify"])
        probes[3].send_message("/vqsynth/notify", [1, 10])
        while (reply := probes[3].next_reply())[0] != "/fail":
            pass
        assert "subscribers already" in reply[1][1] and len(server.subscribers) == 3
    finally:
        for p in probes:
            p.close()


def test_a_subscription_lapses_when_its_host_falls_silent_and_lives_while_it_talks(server, probe, monkeypatch):
    monkeypatch.setattr(osc_server, "SUBSCRIPTION_S", 0.6)
    probe.send_message("/vqsynth/notify", [1, 20])
    for _ in range(4):  # talking renews the lease
        time.sleep(0.3)
        probe.send_message("/vqsynth/status", [])
    assert len(server.subscribers) == 1
    time.sleep(1.2)
    assert server.subscribers == {} and server.counters["subscriptions lapsed"] == 1


def test_midi_learn_from_osc_needs_the_write_permission(live):
    """Finding 4: a stranger re-armed learn and rewrote the performer's mapping file."""
    for policy, want in (("none", "/fail"), ("local", "/done"), ("any", "/done")):
        server, (address, args) = first_reply(live, "/vqsynth/learn", ["brightness"], allow_writes=policy)
        assert address == want, (policy, address, args)
        if want == "/fail":
            assert "--allow-writes" in args[1]
        assert server.may_write(("203.0.113.9", 5000)) == (policy == "any")  # a host elsewhere (TEST-NET-3)
    with pytest.raises(ValueError):
        OscServer(live, allow_writes="everyone")


def test_one_host_cannot_fill_the_scheduler(server, probe, monkeypatch):
    """Finding 6: a million timed note-ons from one sender. Each host has its own quota; the
    refusal is counted every time and told once."""
    from test_control_osc import bundle  # python-osc's bundles

    monkeypatch.setattr(osc_server, "PER_SENDER_QUEUED", 50)
    later = time.time() + 30.0
    for k in range(60):
        probe.send_raw(bundle(later + k * 0.01, ("/vqsynth/note/on", [60, 100])))
    replies = probe.sync()
    fails = [r for r in replies if r[0] == "/fail"]
    assert len(fails) == 1 and "already wait for their timetag" in fails[0][1][1]
    assert server.counters["over quota"] == 10
    assert len(server.engine.scheduled) == 50


def test_saving_the_state_needs_the_write_permission_and_a_state_file(live, tmp_path):
    _, (address, args) = first_reply(live, "/vqsynth/state/save", allow_writes="none", state_file=tmp_path / "s.json")
    assert address == "/fail" and "--allow-writes" in args[1]
    _, (address, args) = first_reply(live, "/vqsynth/state/load")
    assert address == "/fail" and "--state FILE" in args[1]
    assert not (tmp_path / "s.json").exists()


def test_only_allowed_hosts_may_play_and_strangers_are_not_answered(live):
    """`--allow-hosts 203.0.113.8/29`: a host in it plays, one outside is dropped unanswered (a
    refusal would be traffic for a stranger) and counted; this machine always may."""
    from pythonosc.osc_message_builder import OscMessageBuilder

    from vqsynth.control.osc_server import parse_hosts

    b = OscMessageBuilder("/vqsynth/note/on")
    b.add_arg(60), b.add_arg(100)
    note = b.build().dgram
    server = OscServer(live, host="127.0.0.1", port=0, allow_hosts=parse_hosts("203.0.113.8/29, 198.51.100.7"))
    server.start()
    try:
        now, wall = time.monotonic(), time.time()
        server.handle_packet(note, ("203.0.113.99", 5000), now, wall)  # outside the list
        assert server.counters["hosts refused"] == 1 and live.counters["notes"] == 0
        assert server.counters["send errors"] == 0  # nothing was sent to it
        for host in ("203.0.113.9", "198.51.100.7", "127.0.0.1"):
            server.handle_packet(note, (host, 5000), now, wall)
        assert live.counters["notes"] == 3 and server.counters["hosts refused"] == 1
    finally:
        server.stop()
    assert parse_hosts("") is None
    with pytest.raises(ValueError, match="not an address or network"):
        parse_hosts("192.168.1.0/24,my-laptop")


def test_pushes_to_all_subscribers_together_stay_within_the_budget(server, monkeypatch):
    """Many subscribers at the highest rate and a storm of changes: the bytes pushed in total
    never pass the budget (plus one round), whatever they ask; an upper bound, no throughput."""
    monkeypatch.setattr(osc_server, "PUSH_BUDGET", 4000)
    sent = []
    real_send = server.send

    def counting_send(to, address, *args):
        n = real_send(to, address, *args)
        if address != "/done":
            sent.append((time.monotonic(), n))
        return n

    monkeypatch.setattr(server, "send", counting_send)
    probes = [OscProbe(server.port) for _ in range(8)]
    try:
        for p in probes:
            p.send_message("/vqsynth/notify", [1, 100])
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:
            server.engine.set_attr("brightness", float(np.random.random()))
            time.sleep(0.002)
        t1 = time.monotonic()
    finally:
        for p in probes:
            p.close()
    pushed = sum(n for t, n in sent if t0 <= t <= t1)
    assert server.counters["pushes deferred"] > 0
    # the bucket holds one second's budget and refills at the budget: at most 2 s x budget + a full
    # bucket + one subscriber's round beyond it (the round that crosses zero finishes)
    assert pushed <= 4000 * 2 + 4000 + 4000, pushed
