"""Being found: an OSCQuery description of the address space over HTTP, and Zeroconf adverts.

The JSON tree is built on each request from the same ADDRESSES table the dispatcher uses, the
loaded model's targets and the mapping's OSC bindings, so docs, discovery and code cannot
disagree. Zeroconf announces `_osc._udp` (TouchOSC and friends list the server) and
`_oscjson._tcp` (OSCQuery browsers find the HTTP side). The HTTP server is the standard
library's, in a thread; a failure to advertise is reported and counted, never fatal.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from vqsynth.control.osc_addresses import ADDRESSES, signature

log = logging.getLogger("vqsynth.control.discovery")

OSC_TAG = {"number": "f", "int": "i", "string": "s", "int|string": "s"}
READ, WRITE = 1, 2  # OSCQuery ACCESS bits
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "ACCESS", "VALUE", "RANGE", "DESCRIPTION")
EXTENSIONS = {"ACCESS": True, "VALUE": True, "RANGE": True, "DESCRIPTION": True, "TAGS": False,
              "CLIPMODE": False, "UNIT": False, "CRITICAL": False, "LISTEN": False, "PATH_CHANGED": False}


def namespace(server) -> dict:
    """The OSCQuery tree of everything `server` (an OscServer) answers to."""
    root = {"FULL_PATH": "/", "ACCESS": 0, "DESCRIPTION": "vqsynth", "CONTENTS": {}}
    targets = server.controller.targets
    status = server.engine.status()
    values = dict(status["attrs"], volume=status["volume"])
    for row in ADDRESSES:
        if "<part>" in row.address and "<name>" in row.address:  # a part's own attributes
            for part in range(1, 17):
                for name in server.engine.model.attr_names:
                    target = targets[name]
                    _leaf(root, row.address.replace("<part>", str(part)).replace("<name>", name), TYPE="f",
                          ACCESS=WRITE, RANGE=[{"MIN": target.range[0], "MAX": target.range[1]}],
                          DESCRIPTION=f"part {part}: {target.doc}")
            continue
        if "<name>" in row.address:  # one node per target the model has
            for name, target in targets.items():
                _leaf(root, row.address.replace("<name>", name), TYPE="f", ACCESS=READ | WRITE,
                      VALUE=[values.get(name, target.default)],
                      RANGE=[{"MIN": target.range[0], "MAX": target.range[1]}], DESCRIPTION=target.doc)
            continue
        if "<part>" in row.address:  # one node per part, its value the part's own
            for part in status["parts"]:
                key = row.address.rsplit("/", 1)[1]
                value = part.get(key)
                _leaf(root, row.address.replace("<part>", str(part["part"])), ACCESS=WRITE | (READ if value is not None else 0),
                      TYPE="".join(OSC_TAG[a.kind] for a in row.args), VALUE=[value] if value is not None else None,
                      RANGE=[{"MIN": a.range[0], "MAX": a.range[1]} if a.range else None for a in row.args],
                      DESCRIPTION=row.doc + f" (arguments: {signature(row)})")
            continue
        node = {"ACCESS": WRITE, "DESCRIPTION": row.doc + (f" (arguments: {signature(row)})" if row.args else "")}
        if row.args:
            node["TYPE"] = "".join(OSC_TAG[a.kind] for a in row.args)
            node["RANGE"] = [{"MIN": a.range[0], "MAX": a.range[1]} if a.range else None for a in row.args]
        if row.address == "/vqsynth/preset":  # its value is the current preset; its range, every name
            node.update(ACCESS=READ | WRITE, VALUE=[status["preset"] if status["preset"] is not None else -1],
                        RANGE=[{"MIN": 0, "MAX": max(len(server.engine.model.presets) - 1, 0),
                                "VALS": list(server.engine.model.presets)}])
        _leaf(root, row.address, **node)
    for address, binding in server.controller.mapping.osc.items():
        value = binding.input_from_value(values.get(binding.target, targets[binding.target].default))
        _leaf(root, address, TYPE="f", ACCESS=READ | WRITE, VALUE=[value] if value is not None else None,
              RANGE=[{"MIN": min(binding.input), "MAX": max(binding.input)}],
              DESCRIPTION=f"mapped to {binding.target} (the mapping file)")
    return root


def _leaf(root: dict, path: str, **attributes):
    node = root
    parts = path.strip("/").split("/")
    for i, part in enumerate(parts):
        node = node.setdefault("CONTENTS", {}).setdefault(
            part, {"FULL_PATH": "/" + "/".join(parts[:i + 1]), "ACCESS": 0})
    node.update({k: v for k, v in attributes.items() if v is not None})


def find(root: dict, path: str) -> dict | None:
    node = root
    for part in [p for p in path.split("/") if p]:
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


MAX_CONNECTIONS = 8  # OSCQuery clients served at once; more are closed at once (a slowloris took 1,010 threads)
IDLE_S = 5.0  # a connection that sends nothing (or half a header) for this long is closed
BACKLOG = 64


def host_info(server) -> dict:
    """The server's own description; its name is no machine's host name (HOST_INFO is open to
    anyone who can reach the port)."""
    return {"NAME": f"vqsynth (OSC port {server.port})", "EXTENSIONS": EXTENSIONS, "OSC_IP": server.host,
            "OSC_PORT": server.port, "OSC_TRANSPORT": "UDP"}


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most MAX_CONNECTIONS handler threads, a sane listen backlog,
    and idle and header timeouts (the handler's socket timeout): a client that connects and
    says nothing, or dribbles a header, is closed after IDLE_S, and one over the cap at once."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def __init__(self, address, handler):
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, handler)

    def verify_request(self, request, client_address):
        """Only hosts that may play it (OscServer.may_play) read its description."""
        if self.discovery.osc.may_play(client_address[0]):
            return True
        self.discovery.count("refused: host not allowed")
        return False

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            self.discovery.count("refused: busy")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(BaseHTTPRequestHandler):
    server_version = "vqsynth-oscquery"
    timeout = IDLE_S  # socket timeout: covers the wait for the request line and every header

    def do_GET(self):
        discovery = self.server.discovery
        url = urlsplit(self.path)
        query = url.query.upper()
        if query == "HOST_INFO":
            return self._json(host_info(discovery.osc))
        node = find(namespace(discovery.osc), unquote(url.path))
        if node is None:
            discovery.count("not found")
            return self.send_error(404, "no such OSC address")
        if not query:
            return self._json(node)
        if query not in ATTRIBUTES:
            discovery.count("bad query")
            return self.send_error(400, f"unknown attribute {query} (known: HOST_INFO, {', '.join(ATTRIBUTES)})")
        if query not in node:
            self.send_response(204)  # the spec's answer for an attribute this node does not have
            self.end_headers()
            return
        self._json({query: node[query]})

    def _json(self, body: dict):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # requests are not news; errors are counted instead
        pass


class Discovery:
    """OSCQuery over HTTP on TCP `port` (the OSC port's number by default; any free one if that
    is taken) and, if `advertise`, Zeroconf adverts for both. `osc` is the running OscServer."""

    def __init__(self, osc, port: int | None = None, advertise: bool = True, name: str | None = None):
        self.osc = osc
        self.port = osc.port if port is None else port
        self.advertise = advertise
        self.name = name or f"vqsynth on {socket.gethostname()} port {osc.port}"
        self.counters: dict[str, int] = {}
        self.http: BoundedHTTPServer | None = None
        self.zeroconf = None
        self.advertised = threading.Event()  # set once both services are registered
        self.error: str | None = None  # why advertising failed, if it did
        self._threads: list[threading.Thread] = []

    def count(self, kind: str):
        self.counters[kind] = self.counters.get(kind, 0) + 1

    def start(self) -> "Discovery":
        host = self.osc.host
        try:
            self.http = BoundedHTTPServer((host, self.port), _Handler)
        except OSError:
            self.http = BoundedHTTPServer((host, 0), _Handler)  # taken: any free port, and say which
        self.http.discovery = self
        self.port = self.http.server_address[1]
        self._threads = [threading.Thread(target=self.http.serve_forever, name="vqsynth-oscquery", daemon=True)]
        if self.advertise:  # registering probes the network for a second or two: not on the start path
            self._threads.append(threading.Thread(target=self._register, name="vqsynth-zeroconf", daemon=True))
        for th in self._threads:
            th.start()
        return self

    def _register(self):
        try:
            from zeroconf import IPVersion, ServiceInfo, Zeroconf

            addresses = [socket.inet_aton(a) for a in _ipv4_addresses(self.osc.host)]
            self.zeroconf = Zeroconf(ip_version=IPVersion.V4Only)
            server = socket.gethostname().split(".")[0] + ".local."
            for kind, port in (("_osc._udp.local.", self.osc.port), ("_oscjson._tcp.local.", self.port)):
                info = ServiceInfo(kind, f"{self.name}.{kind}", port=port, addresses=addresses, server=server,
                                   properties={"txtvers": "1"})
                self.zeroconf.register_service(info, allow_name_change=True)
            self.advertised.set()
            log.info("Zeroconf: advertised '%s' (_osc._udp port %d, _oscjson._tcp port %d)",
                     self.name, self.osc.port, self.port)
        except Exception as exc:  # no multicast here, a firewall, a name clash: OSC itself still works
            self.error = f"{type(exc).__name__}: {exc}"
            self.count("advertise errors")
            log.warning("Zeroconf advertisement failed (%s); OSC and OSCQuery still work at their ports", self.error)

    def stop(self):
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        for th in self._threads[1:]:
            th.join(timeout=5.0)
        if self.zeroconf is not None:
            self.zeroconf.unregister_all_services()
            self.zeroconf.close()
            self.zeroconf = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _ipv4_addresses(host: str) -> list[str]:
    """The addresses to advertise: the bound one, or every IPv4 interface when bound to all."""
    if host not in ("0.0.0.0", ""):
        return [host]
    import ifaddr

    found = [ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
             if isinstance(ip.ip, str) and not ip.ip.startswith("127.")]
    return found or ["127.0.0.1"]
