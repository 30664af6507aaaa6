"""Discovery: the OSCQuery JSON over real HTTP agrees with the dispatcher, and a real `vqsynth
serve` is found through real mDNS by zeroconf's own browser, then queried at what it advertised."""

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from rig import LiveEngine, OscProbe
from vqsynth.control.discovery import Discovery
from vqsynth.control.osc_addresses import ADDRESSES, lookup
from vqsynth.control.osc_server import OscServer


@pytest.fixture
def served(test_model):
    live = LiveEngine(test_model)
    with OscServer(live.engine, host="127.0.0.1", port=0) as osc, Discovery(osc, port=0, advertise=False) as disc:
        yield live.engine, osc, disc
    live.close()


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, (json.loads(r.read()) if r.status == 200 else None)


def leaves(node):
    """Every node a message can be sent to: the ones with a TYPE (a method may also hold children,
    as /vqsynth/tokens holds /vqsynth/tokens/wav) and the bare ends of the tree."""
    if "TYPE" in node or "CONTENTS" not in node:
        yield node
    for child in node.get("CONTENTS", {}).values():
        yield from leaves(child)


def test_root_query_is_the_whole_address_space_from_the_dispatcher_table(served):
    engine, osc, disc = served
    status, root = get(disc.port, "/")
    assert status == 200 and root["FULL_PATH"] == "/"
    paths = {n["FULL_PATH"]: n for n in leaves(root)}
    for row in ADDRESSES:
        if "<name>" not in row.address:
            for n in (1, 16) if "<part>" in row.address else (None,):
                path = row.address.replace("<part>", str(n))
                assert path in paths, path
                assert paths[path]["DESCRIPTION"].startswith(row.doc)
    assert paths["/vqsynth/part/3/volume"]["VALUE"] == [100.0] and paths["/vqsynth/part/3/pan"]["ACCESS"] == 3
    note_on = paths["/vqsynth/note/on"]
    assert note_on["TYPE"] == "ffi" and note_on["ACCESS"] == 2 and note_on["RANGE"][0] == {"MIN": 0, "MAX": 127}
    brightness = paths["/vqsynth/attr/brightness"]
    assert brightness["ACCESS"] == 3 and brightness["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}]
    assert {f"/vqsynth/attr/{n}" for n in engine.model.attr_names} | {"/vqsynth/attr/volume"} <= set(paths)
    assert paths["/1/fader1"]["DESCRIPTION"] == "mapped to brightness (the mapping file)"
    # every address the description offers is one the dispatcher takes: send each a valid message
    probe = OscProbe(osc.port)
    try:
        for path, node in paths.items():
            assert lookup(path) or path in osc.controller.mapping.osc, path
            args = [float(r["MIN"]) if r else 1 for r in node.get("RANGE", [])]
            if path in ("/vqsynth/preset", "/vqsynth/tokens", "/vqsynth/sync"):
                args = [0]  # a string/int slot, a token, an id: the smallest valid value
            probe.send_message(path, args)
        replies = probe.sync()
        assert not [r for r in replies if r[0] == "/fail" and "unknown address" in r[1][1]], replies
    finally:
        probe.close()
        engine.panic()


def test_values_follow_the_instrument_and_attribute_queries(served):
    engine, osc, disc = served
    engine.set_attr("warmth", 0.25)
    assert get(disc.port, "/vqsynth/attr/warmth?VALUE") == (200, {"VALUE": [0.25]})
    assert get(disc.port, "/vqsynth/attr/warmth?RANGE")[1] == {"RANGE": [{"MIN": 0.0, "MAX": 1.0}]}
    assert get(disc.port, "/vqsynth/panic?VALUE")[0] == 204  # a command has no value
    status, info = get(disc.port, "/?HOST_INFO")
    assert info["OSC_PORT"] == osc.port and info["OSC_TRANSPORT"] == "UDP" and info["EXTENSIONS"]["VALUE"]
    for bad, code in (("/vqsynth/nope", 404), ("/vqsynth?COLOUR", 400)):
        with pytest.raises(urllib.error.HTTPError) as err:
            get(disc.port, bad)
        assert err.value.code == code
    assert disc.counters == {"not found": 1, "bad query": 1}


@pytest.mark.rig
def test_a_running_server_is_found_by_zeroconf_and_describes_itself(test_model_dir):
    from zeroconf import IPVersion, ServiceBrowser, Zeroconf

    from test_server_rig import start_server, stop_server

    proc, ready = start_server(test_model_dir, "--audio", "null", "--no-midi", "--osc-host", "0.0.0.0")  # open to the LAN
    assert "OSC udp 0.0.0.0:" in ready
    osc_port = int(re.search(r"OSC udp [\d.]+:(\d+)", ready).group(1))
    http_port = int(re.search(r"OSCQuery http://[\d.]+:(\d+)", ready).group(1))
    zc = Zeroconf(ip_version=IPVersion.V4Only)
    found, seen = {}, threading.Event()

    class Listener:
        def add_service(self, zc, kind, name):
            info = zc.get_service_info(kind, name, timeout=3000)
            if info is not None and "vqsynth" in name:
                found.setdefault(kind, []).append(info)
                seen.set()

        update_service = add_service

        def remove_service(self, zc, kind, name):
            pass

    browsers = [ServiceBrowser(zc, kind, Listener()) for kind in ("_osc._udp.local.", "_oscjson._tcp.local.")]
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            mine = {k: [i for i in list(v) if i.port in (osc_port, http_port)] for k, v in list(found.items())}
            if all(mine.get(k) for k in ("_osc._udp.local.", "_oscjson._tcp.local.")):
                break
            seen.wait(0.5)
        assert mine.get("_osc._udp.local.") and mine.get("_oscjson._tcp.local."), found
        assert mine["_osc._udp.local."][0].port == osc_port
        advert = mine["_oscjson._tcp.local."][0]
        address = socket.inet_ntoa(advert.addresses[0])
        with urllib.request.urlopen(f"http://{address}:{advert.port}/?HOST_INFO", timeout=5) as r:
            assert json.loads(r.read())["OSC_PORT"] == osc_port  # the advert leads to the server itself
    finally:
        for b in browsers:
            b.cancel()
        zc.close()
        out = stop_server(proc)
    assert "Traceback" not in out and "advertisement failed" not in out, out


def test_oscquery_serves_a_bounded_number_of_clients_and_closes_idle_ones(served, monkeypatch):
    """Finding 7: one thread per TCP connection with no cap and no timeout (slowloris)."""
    from vqsynth.control import discovery as D

    engine, osc, disc = served
    monkeypatch.setattr(D._Handler, "timeout", 0.5)
    idle = []
    try:
        for _ in range(D.MAX_CONNECTIONS + 4):  # connect and say nothing, or half a header
            s = socket.create_connection(("127.0.0.1", disc.port))
            s.sendall(b"GET /vqsynth HTTP/1.1\r\nHost: x\r\n")
            idle.append(s)
        deadline = time.monotonic() + 5
        while disc.counters.get("refused: busy", 0) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert disc.counters.get("refused: busy", 0) >= 4
        for s in idle:  # every idle one is closed by the server (recv returns b"" or the socket resets)
            s.settimeout(5.0)
            try:
                while s.recv(4096):  # a 408 or nothing, then the close
                    pass
            except ConnectionResetError:
                pass  # a TimeoutError here would mean the server kept the idle connection open
        time.sleep(0.2)
        assert get(disc.port, "/?HOST_INFO")[0] == 200  # and a real client is served again
    finally:
        for s in idle:
            s.close()


def test_host_info_names_no_host(served):
    _, osc, disc = served
    _, info = get(disc.port, "/?HOST_INFO")
    assert socket.gethostname() not in json.dumps(info) and str(osc.port) in info["NAME"]


def test_oscquery_serves_only_hosts_that_may_play(served):
    from vqsynth.control.osc_server import parse_hosts

    engine, osc, disc = served
    osc.allow_hosts = parse_hosts("198.51.100.0/24")
    assert get(disc.port, "/")[0] == 200  # this machine always may
    assert disc.http.verify_request(None, ("198.51.100.20", 40000))
    assert not disc.http.verify_request(None, ("203.0.113.5", 40000))
    assert disc.counters["refused: host not allowed"] == 1
