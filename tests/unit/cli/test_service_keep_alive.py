"""A service's HTTP server runs on uvloop and keeps an idle connection open longer than a client's idle expiry.

httpx forgets an idle connection after 5 s; uvicorn's own default closes it after 5 s. With the two
equal, a client that sends just as the server closes gets a connection reset (a CI run failed so).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import eventually_sync

pytestmark = pytest.mark.unit

SERVER = """
import sys
from services.launch import serve
from shared.settings import ServiceSettings

import asyncio

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = type(asyncio.get_running_loop()).__module__.encode() + b" ok"
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})

serve(app, ServiceSettings(), int(sys.argv[1]))
"""

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def connected(port: int) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return None


def answer(conn: socket.socket) -> bytes:
    conn.sendall(REQUEST)
    seen = b""
    while not seen.endswith(b"ok"):
        part = conn.recv(4096)
        if not part:
            return seen  # closed by the server
        seen += part
    return seen


def test_a_connection_idle_for_longer_than_a_clients_expiry_is_still_served_on_uvloop() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    try:
        conn = eventually_sync(lambda: connected(port), within_s=30, what="the server accepts connections")
        with conn:
            first = answer(conn)
            assert first.startswith(b"HTTP/1.1 200")
            assert first.endswith(b"\r\n\r\nuvloop ok"), first  # served on uvloop's event loop
            # Real time must pass here: what is tested is that the server does not close a connection
            # idle past httpx's 5 s expiry, which no clock of the test's own can stand in for.
            time.sleep(6.5)
            assert answer(conn).startswith(b"HTTP/1.1 200"), "the server closed an idle connection at 5 s"
    finally:
        server.terminate()
        server.wait(timeout=10)
