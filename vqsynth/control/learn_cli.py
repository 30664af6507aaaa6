"""`vqsynth learn PARAMETER`: MIDI learn on a running server, from the terminal.

Sends /vqsynth/learn over OSC, then waits for the server to say which CC it bound (move a knob
on the controller meanwhile); the server saves it to the user's mapping file.
"""

from __future__ import annotations

import socket

from pythonosc.osc_message import OscMessage

from vqsynth.control.osc_packet import build


def add_arguments(parser):
    parser.add_argument("parameter", help="an attribute (brightness, ...) or volume; `off` cancels")
    parser.add_argument("--host", default="127.0.0.1", help="the server's address [127.0.0.1]")
    parser.add_argument("--port", type=int, default=9000, help="the server's OSC port [9000]")
    parser.add_argument("--timeout", type=float, default=65.0, help="seconds to wait for a CC [65]")


def run(args):
    from vqsynth.cli import UserError

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(args.timeout)
    try:
        sock.sendto(build("/vqsynth/learn", args.parameter), (args.host, args.port))
        while True:
            try:
                reply = OscMessage(sock.recv(65535))
            except TimeoutError:
                raise UserError(f"no answer from {args.host}:{args.port} in {args.timeout:g} s "
                                "(is `vqsynth serve` running there?)") from None
            except ConnectionRefusedError:
                raise UserError(f"nothing listens on udp {args.host}:{args.port} (start `vqsynth serve`)") from None
            if reply.address == "/fail":
                raise UserError(reply.params[1])
            if reply.address == "/done" and args.parameter == "off":
                print("learn cancelled")
                return 0
            if reply.address == "/done":
                print(f"move a control on your MIDI controller to bind it to {args.parameter} ...", flush=True)
            elif reply.address == "/vqsynth/learned":
                target, cc, channel, path = reply.params
                print(f"{target} <- CC {cc} (it came on channel {channel}); saved to {path}")
                return 0
    finally:
        sock.close()
