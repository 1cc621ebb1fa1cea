"""End to end: a real ``tradefleet serve`` cuts slow HTTP clients at the timeouts its options
set, caps its connections, and refuses bad gRPC input as INVALID_ARGUMENT."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.e2e.serve_process import (
    TRADEFLEET,
    ServeProcess,
    control,
    running,
    signal_bot_manifest,
)
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

TIMEOUT = 1.0
SLACK = 1.5


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    options = [
        "--http-header-timeout", str(TIMEOUT), "--http-body-timeout", str(TIMEOUT),
        "--http-max-connections", "3",
    ]  # fmt: skip
    yield from running(tmp_path, signal_bot_manifest(), speed=600, extra=options)


def test_serve_disconnects_slow_webhook_clients_and_caps_connections(serve: ServeProcess) -> None:
    port = serve.http_port
    slow_header = socket.create_connection(("127.0.0.1", port), timeout=5)
    slow_header.sendall(b"POST /webhook/signal HTTP/1.1\r\nHost: b")
    slow_body = socket.create_connection(("127.0.0.1", port), timeout=5)
    slow_body.sendall(
        b'POST /webhook/signal HTTP/1.1\r\nHost: b\r\nContent-Length: 400\r\n\r\n{"sym'
    )
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as fourth:
        assert fourth.recv(4096).startswith(b"HTTP/1.1 503")
    started = time.monotonic()
    for sock in (slow_header, slow_body, idle):
        assert _closed_within(sock, TIMEOUT + 4 * SLACK)
        sock.close()
    assert time.monotonic() - started <= TIMEOUT + SLACK
    # the bot is unharmed: its gRPC API answers and refuses an unknown enum properly
    stub = serve.stub()
    assert stub.GetStatus(pb.GetStatusRequest(), metadata=control()).bot == "signal-bot"
    with pytest.raises(grpc.RpcError) as error:
        request = pb.StreamEventsRequest(kinds=[42])
        list(stub.StreamEvents(request, metadata=control(), timeout=5))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("kinds: ")


def test_serve_refuses_a_bad_limit_option(tmp_path: Path) -> None:
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(signal_bot_manifest())
    result = subprocess.run(
        [TRADEFLEET, "serve", str(manifest), "--insecure-no-auth", "--http-header-timeout", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert result.returncode == 2
    assert "refused: --http-header-timeout must be positive" in result.stderr
    assert not (tmp_path / "journals").exists()  # refused before anything was opened
