"""Status polls use the bot's read token; only steering uses the control token.

The runtime here is a strict fake: ``GetStatus`` refuses the control token (as a runtime that
scopes tokens tightly may) and every control call refuses the read token. The real operator
must still report the bot's status and steer it.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from tests.operator.e2e.conftest import NS, Cluster, Operator, bot_manifest
from tests.operator.e2e.test_lifecycle import for_bot
from tradefleet_operator.control import Call
from tradefleet_operator.runtime_client import RuntimeCallError, RuntimeClients
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc

CONTROL, READ = "strict-control-token", "strict-read-token"


class StrictRuntime(pb_grpc.RuntimeServiceServicer):
    """Answers GetStatus to the read token only, control calls to the control token only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.paused = False
        self.calls: list[tuple[str, str]] = []  # (method, token)

    def _check(self, context: Any, method: str, wanted: str) -> None:
        token = dict(context.invocation_metadata()).get("authorization", "")
        with self.lock:
            self.calls.append((method, token.removeprefix("Bearer ")))
        if token != f"Bearer {wanted}":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} needs another token")

    def _snapshot(self) -> pb.StatusSnapshot:
        phase = pb.PHASE_PAUSED if self.paused else pb.PHASE_RUNNING
        return pb.StatusSnapshot(
            bot="strict", mode="paper", phase=phase, paused=self.paused, equity=100.0,
            balance=100.0, currency="USD", broker_connected=True, last_bar_ts=1_700_000_000,
        )  # fmt: skip

    def GetStatus(self, request: Any, context: Any) -> pb.StatusSnapshot:
        self._check(context, "GetStatus", READ)
        return self._snapshot()

    def Pause(self, request: Any, context: Any) -> pb.StatusSnapshot:
        self._check(context, "Pause", CONTROL)
        self.paused = True
        return self._snapshot()

    def Resume(self, request: Any, context: Any) -> pb.StatusSnapshot:
        self._check(context, "Resume", CONTROL)
        self.paused = False
        return self._snapshot()


@pytest.fixture
def strict() -> Iterator[tuple[StrictRuntime, str]]:
    runtime = StrictRuntime()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_RuntimeServiceServicer_to_server(runtime, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield runtime, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_the_client_reads_with_the_read_token_and_steers_with_the_control_token(
    strict: tuple[StrictRuntime, str],
) -> None:
    _, address = strict

    async def run() -> None:
        clients = RuntimeClients(timeout=2.0)
        try:
            assert (await clients.get_status(address, READ)).equity == 100.0
            with pytest.raises(RuntimeCallError) as refused:
                await clients.get_status(address, CONTROL)
            assert refused.value.code == "PERMISSION_DENIED" and not refused.value.unreachable
            paused = await clients.invoke(address, CONTROL, Call("Pause", "test"))
            assert paused.paused
        finally:
            await clients.close()

    asyncio.run(run())


def _status(cluster: Cluster, name: str) -> dict[str, Any]:
    found: dict[str, Any] = (cluster.bot(name) or {}).get("status") or {}
    return found


def test_the_operator_polls_with_the_read_token(
    cluster: Cluster, operator: Operator, strict: tuple[StrictRuntime, str]
) -> None:
    runtime, address = strict
    tokens = {"control.token": CONTROL, "read.token": READ}
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "strict-api-token", "namespace": NS, "labels": for_bot("strict")},
            "type": "Opaque",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in tokens.items()},
        }
    )
    cluster.apply_bot(bot_manifest("strict", address=address))
    status = cluster.wait(
        lambda: (s := _status(cluster, "strict")).get("phase") == "Running" and s,
        message="a Running status read with the read token",
    )
    assert status["equity"] == 100.0 and status["currency"] == "USD"

    cluster.patch_bot("strict", {"spec": {"paused": True}})
    cluster.wait(lambda: _status(cluster, "strict").get("phase") == "Paused", message="paused")
    with runtime.lock:
        calls = list(runtime.calls)
    assert ("Pause", CONTROL) in calls
    assert {token for method, token in calls if method == "GetStatus"} == {READ}
    assert all(token == CONTROL for method, token in calls if method != "GetStatus")


def test_status_stalled_by_a_cached_channel_in_reconnect_backoff() -> None:
    """Issue 19, item 7: status reached .status 32-59 s after a runtime started listening: the
    operator's cached channel to the address kept failing fast inside gRPC's reconnect backoff
    (growing towards 120 s). A call that finds nobody listening drops the channel, so the next
    timer tick dials afresh."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens there

    async def run() -> None:
        clients = RuntimeClients(timeout=0.5)
        try:
            for _ in range(3):
                with pytest.raises(RuntimeCallError) as failed:
                    await clients.get_status(address, "token")
                assert failed.value.unreachable
                assert address not in clients._channels  # dropped: no backoff carried over
        finally:
            await clients.close()

    asyncio.run(run())
