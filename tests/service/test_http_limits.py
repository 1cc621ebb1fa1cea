"""The HTTP server's connection limits over REAL sockets: slow headers, a stalled body, too many
connections, idle keep-alive; and that ordinary (and slow-to-answer) requests still work."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import prometheus_client
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.service.webhook_client import WEBHOOK_PATH, sign, signal_body
from tradefleet_runtime.service.api import Signal, SignalResult
from tradefleet_runtime.service.http_server import HttpLimits, HttpServer
from tradefleet_runtime.service.webhook import WebhookConfig, add_webhook_routes

KEY = b"http-limits-key-5d1e-0123456789abcdef"
TIMEOUT = 1.0  # header, body and keep-alive timeouts of the server under test
SLACK = 1.5  # the test's allowance for scheduling on a busy machine


def _app(keys_dir: Path) -> web.Application:
    app = web.Application()

    async def submit(signal: Signal) -> SignalResult:
        return SignalResult(True, "", "order-1")

    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(TIMEOUT * 1.5)  # longer than every timeout: handlers are not cut
        return web.Response(text="slow but fine")

    async def ok(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    add_webhook_routes(
        app,
        config=WebhookConfig(keys_dir=keys_dir),
        submit=submit,
        known_symbols=lambda: ("EURUSD",),
        requests_total=prometheus_client.Counter(
            "tradefleet_webhook_requests", "test", ["bot", "outcome"], registry=CollectorRegistry()
        ),
        bot="b",
    )
    app.router.add_get("/ok", ok)
    app.router.add_get("/slow", slow)
    return app


def _server(tmp_path: Path, **limits: float) -> HttpServer:
    (tmp_path / "default").write_bytes(KEY)
    settings = {
        "header_timeout_s": TIMEOUT,
        "body_timeout_s": TIMEOUT,
        "keepalive_timeout_s": TIMEOUT,
        **limits,
    }
    return HttpServer(_app(tmp_path), "127.0.0.1", 0, HttpLimits(**settings))  # type: ignore[arg-type]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HttpServer]:
    # a long keep-alive, so the header and body timeouts alone must cut slow clients (aiohttp's
    # keep-alive timer also runs from the connection's start)
    http = _server(tmp_path, keepalive_timeout_s=60.0)
    http.start()
    try:
        yield http
    finally:
        http.stop()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes ``sock`` (EOF or reset) within ``seconds``; data it sends
    (an error response) is read and skipped."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            return False
        except OSError:  # ECONNRESET: closed by abort
            return True
    return False


def _dribble(sock: socket.socket, data: bytes, interval: float, give_up: float) -> float | None:
    """Send ``data`` one byte every ``interval`` seconds; the seconds until the server closed the
    connection, or None if it was still open after ``give_up`` seconds."""
    started = time.monotonic()
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        if _closed_within(sock, interval):
            return time.monotonic() - started
        if time.monotonic() - started > give_up:
            return None
    return None


def test_slow_header_client_is_disconnected(server: HttpServer) -> None:
    """Headers at one byte a second never finish: the server drops the client at the header
    timeout, although every byte arrives well within any per-read timeout."""
    head = f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: bot\r\nX-Tradefleet-Key-Id: default\r\n"
    with _connect(server.port) as sock:
        closed_after = _dribble(sock, head.encode(), interval=1.0, give_up=TIMEOUT + 4 * SLACK)
    assert closed_after is not None, "a slow-header client was still connected"
    assert closed_after <= TIMEOUT + SLACK


def test_slow_header_client_is_disconnected_even_when_bytes_keep_coming(
    server: HttpServer,
) -> None:
    """The header timeout runs from the first byte: trickling bytes faster does not reset it."""
    head = "GET /ok HTTP/1.1\r\n" + "X-Padding: " + "a" * 200
    with _connect(server.port) as sock:
        closed_after = _dribble(sock, head.encode(), interval=0.1, give_up=TIMEOUT + 4 * SLACK)
    assert closed_after is not None and closed_after <= TIMEOUT + SLACK


def test_stalled_body_client_is_disconnected(server: HttpServer) -> None:
    """Complete headers announcing 500 bytes, 20 of them sent, then silence."""
    body = signal_body()
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 100}\r\n"
    )
    headers = "".join(f"{name}: {value}\r\n" for name, value in sign(KEY, body, 1).items())
    with _connect(server.port) as sock:
        sock.sendall((head + headers + "\r\n").encode() + body[:20])
        started = time.monotonic()
        assert _closed_within(sock, TIMEOUT + 4 * SLACK), "a stalled-body client stayed connected"
        assert time.monotonic() - started <= TIMEOUT + SLACK


def test_stalled_chunked_body_client_is_disconnected(server: HttpServer) -> None:
    head = f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: bot\r\nTransfer-Encoding: chunked\r\n\r\n"
    with _connect(server.port) as sock:
        sock.sendall(head.encode() + b'10\r\n{"symbol": "EUR')  # a chunk, then nothing
        started = time.monotonic()
        assert _closed_within(sock, TIMEOUT + 4 * SLACK)
        assert time.monotonic() - started <= TIMEOUT + SLACK


def test_silent_connection_is_disconnected(server: HttpServer) -> None:
    """Connect and send nothing at all: closed at the header timeout."""
    with _connect(server.port) as sock:
        started = time.monotonic()
        assert _closed_within(sock, TIMEOUT + 4 * SLACK)
        assert time.monotonic() - started <= TIMEOUT + SLACK


def test_idle_keep_alive_connection_is_closed(tmp_path: Path) -> None:
    server = _server(tmp_path, header_timeout_s=60.0)
    server.start()
    try:
        _check_closed_when_idle(server)
    finally:
        server.stop()


def _check_closed_when_idle(server: HttpServer) -> None:
    with _connect(server.port) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: bot\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert _closed_within(sock, TIMEOUT + 4 * SLACK)
        assert time.monotonic() - started <= TIMEOUT + SLACK


def test_requests_beyond_the_connection_limit_are_refused(tmp_path: Path) -> None:
    http = _server(tmp_path, max_connections=2, header_timeout_s=30.0)
    http.start()
    try:
        first, second = _connect(http.port), _connect(http.port)
        deadline = time.monotonic() + 5
        while http.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with _connect(http.port) as third:
            third.settimeout(5)
            reply = third.recv(4096)
            assert reply.startswith(b"HTTP/1.1 503") and b"too many connections" in reply
            assert _closed_within(third, 5)
        first.close()
        while http.connections > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        connection = http_client(http.port)
        connection.request("GET", "/ok")
        assert connection.getresponse().status == 200  # a slot is free again
        connection.close()
        second.close()
    finally:
        http.stop()


def http_client(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=5)


def test_ordinary_requests_keep_working_with_keep_alive(server: HttpServer) -> None:
    """Two requests on one connection, a signed webhook call, and a handler slower than every
    timeout: none of them is cut."""
    connection = http_client(server.port)
    for _ in range(2):
        connection.request("GET", "/ok")
        response = connection.getresponse()
        assert response.status == 200 and response.read() == b"ok"
    connection.request("GET", "/slow")
    assert connection.getresponse().read() == b"slow but fine"
    body = signal_body()
    connection.request("POST", WEBHOOK_PATH, body=body, headers=sign(KEY, body, int(time.time())))
    response = connection.getresponse()
    assert response.status == 202, response.read()
    assert json.loads(response.read())["accepted"] is True
    connection.close()


def test_limits_must_be_sane() -> None:
    with pytest.raises(ValueError, match="header_timeout_s"):
        HttpLimits(header_timeout_s=0)
    with pytest.raises(ValueError, match="max_connections"):
        HttpLimits(max_connections=0)


@pytest.mark.parametrize(
    "head",
    [
        "GET /ok HTTP/1.1\r\nX-Long: " + "a" * 9000 + "\r\n\r\n",
        "GET /ok HTTP/1.1\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(100)) + "\r\n",
        "GET /" + "p" * 9000 + " HTTP/1.1\r\n\r\n",
    ],
    ids=["long-header-line", "too-many-headers", "long-request-line"],
)
def test_oversized_headers_are_refused(server: HttpServer, head: str) -> None:
    with _connect(server.port) as sock:
        sock.sendall(head.encode())
        sock.settimeout(5)
        assert sock.recv(4096).split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
        assert _closed_within(sock, 5)
