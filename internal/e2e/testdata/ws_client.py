#!/usr/bin/python3
"""A minimal independent nearnet v1 client: Python's websockets (Debian's
10.4, asyncio API), not nearnet's code, speaking PROTOCOL.md in security mode
"none" (plain WebSocket, as `nearnet listen --insecure` serves).

Usage: ws_client.py URL NAME TEXT

Connects to URL with subprotocol nearnet.v1, sends its hello (0x01 + JSON),
reads the server's hello, sends TEXT as a data message (0x02 + bytes) and
waits for it to come back (the server runs with --echo). Base messages
(0x03) and extensions (0x80-0xFF) that arrive meanwhile are skipped, as
PROTOCOL.md sections 5 and 8 allow; any other kind is a protocol error. Prints one JSON
line with what it saw and exits 0, or exits 1 with the reason on stderr.
"""

import asyncio
import json
import re
import secrets
import sys

import websockets

HELLO = 0x01
DATA = 0x02
BASE = 0x03
EXTENSIONS = 0x80
SUBPROTOCOL = "nearnet.v1"


class Failure(Exception):
    pass


stage = "connecting"  # what run is doing, for the error on a timeout


async def run(url, name, text):
    global stage
    peer = secrets.token_hex(16)
    stage = "waiting for the 101 answer to the upgrade (the hello is sent after it)"
    async with websockets.connect(
        url, subprotocols=[SUBPROTOCOL], open_timeout=10, close_timeout=5
    ) as ws:
        if ws.subprotocol != SUBPROTOCOL:
            raise Failure(f"server chose subprotocol {ws.subprotocol!r}, want {SUBPROTOCOL!r}")
        hello = {"version": 1, "peer": peer, "name": name}
        await ws.send(bytes([HELLO]) + json.dumps(hello).encode())

        stage = "waiting for the server's hello"
        first = await ws.recv()
        if not isinstance(first, bytes):
            raise Failure(f"server's first message is text, want binary: {first!r}")
        if first[:1] != bytes([HELLO]):
            raise Failure(f"server's first message is not a hello: {first[:64]!r}")
        server = json.loads(first[1:])
        if server.get("version") != 1:
            raise Failure(f"server hello version {server.get('version')!r}, want 1")
        if not re.fullmatch(r"[0-9a-f]{32}", str(server.get("peer", ""))):
            raise Failure(f"server hello peer {server.get('peer')!r}, want 32 lowercase hex digits")

        await ws.send(bytes([DATA]) + text.encode())
        stage = "waiting for the echo of the data message"
        skipped = []
        while True:
            msg = await ws.recv()
            if not isinstance(msg, bytes):
                raise Failure(f"text message from server: {msg!r}")
            if not msg:
                raise Failure("empty message from server")
            if msg[0] == DATA:
                echo = msg[1:].decode()
                break
            if msg[0] != BASE and msg[0] < EXTENSIONS:
                raise Failure(f"message of kind {msg[0]:#04x} from server: {msg[:64]!r}")
            skipped.append(msg[0])

        print(json.dumps({
            "subprotocol": ws.subprotocol,
            "peer": peer,
            "server_hello": server,
            "echo": echo,
            "skipped_kinds": skipped,
        }), flush=True)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, name, text = sys.argv[1:]
    try:
        asyncio.run(asyncio.wait_for(run(url, name, text), timeout=20))
    except Failure as e:
        print(f"ws_client: {e}", file=sys.stderr)
        return 1
    except asyncio.TimeoutError:
        print(f"ws_client: timed out {stage}", file=sys.stderr)
        return 1
    except Exception as e:  # connection refused, protocol error, closed
        print(f"ws_client: {type(e).__name__} {stage}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
