"""End to end: a real ``tradefleet serve`` process driven through a real gRPC channel."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.e2e.serve_process import (
    ServeProcess,
    control,
    read_only,
    running,
    signal_bot_manifest,
)
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

RESTING_BUY = {
    "symbol": "EURUSD",
    "direction": pb.DIRECTION_BUY,
    "entry": 1.025,  # about 2.5% below January 2017's prices: the limit order rests
    "stop_loss": 1.015,
    "take_profit": 1.06,
    "pattern_type": "M5_BOS",
    "source": "e2e",
    "confidence": 0.9,
}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServeProcess]:
    yield from running(tmp_path, signal_bot_manifest(), speed=600)


def _collect_events(
    serve: ServeProcess, sink: list[pb.RuntimeEvent], stop: threading.Event
) -> None:
    stream = serve.stub().StreamEvents(pb.StreamEventsRequest(max_queue=100), metadata=read_only())
    try:
        for event in stream:
            sink.append(event)
            if stop.is_set():
                break
    except grpc.RpcError:
        pass
    finally:
        stream.cancel()


def test_every_rpc_through_a_real_channel(serve: ServeProcess) -> None:
    stub = serve.stub()
    status = serve.wait_for(lambda s: s.phase == pb.PHASE_RUNNING and s.bars >= 1)
    assert status.bot == "signal-bot" and status.mode == "paper"
    assert {p.name for p in status.plugins} >= {
        "external-signal",
        "paper",
        "csv",
        "fixed-fractional",
    }
    assert len(status.config_hash) == 16
    assert [r.name for r in status.risk] == ["fixed-fractional"]

    events: list[pb.RuntimeEvent] = []
    stop = threading.Event()
    collector = threading.Thread(target=_collect_events, args=(serve, events, stop), daemon=True)
    collector.start()
    time.sleep(0.3)

    accepted = stub.SubmitSignal(pb.SubmitSignalRequest(**RESTING_BUY), metadata=control())
    assert accepted.accepted, accepted.reason
    assert accepted.client_order_id.startswith("tf")
    orders = stub.ListOrders(pb.ListOrdersRequest(), metadata=read_only()).orders
    assert [(o.client_order_id, o.status, o.order_type) for o in orders] == [
        (accepted.client_order_id, "open", "limit")
    ]

    paused = stub.Pause(pb.PauseRequest(reason="lunch", actor="e2e"), metadata=control())
    assert paused.paused and paused.phase == pb.PHASE_PAUSED
    refused = stub.SubmitSignal(pb.SubmitSignalRequest(**RESTING_BUY), metadata=control())
    assert not refused.accepted and "paused" in refused.reason
    resumed = stub.Resume(pb.ResumeRequest(reason="back", actor="e2e"), metadata=control())
    assert not resumed.paused and resumed.phase == pb.PHASE_RUNNING

    with pytest.raises(grpc.RpcError) as bad_params:
        stub.UpdateParams(
            pb.UpdateParamsRequest(params_json='{"max_entry_deviation_pct": -1}', actor="e2e"),
            metadata=control(),
        )
    assert bad_params.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_entry_deviation_pct" in bad_params.value.details()
    new_params = json.dumps({"entry_order": "limit", "max_entry_deviation_pct": 4})
    stub.UpdateParams(
        pb.UpdateParamsRequest(params_json=new_params, actor="e2e"), metadata=control()
    )

    with pytest.raises(grpc.RpcError) as unknown_plugin:
        stub.ResetRiskLock(pb.ResetRiskLockRequest(plugin="nope", reason="x"), metadata=control())
    assert unknown_plugin.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as no_lock:  # a sizer holds no lock: nothing to reset
        stub.ResetRiskLock(
            pb.ResetRiskLockRequest(plugin="fixed-fractional", reason="new day", actor="e2e"),
            metadata=control(),
        )
    assert no_lock.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "fixed-fractional holds no lock" in (no_lock.value.details() or "")

    halted = stub.EmergencyStop(
        pb.EmergencyStopRequest(reason="drill", actor="e2e"), metadata=control()
    )
    assert halted.halted and halted.phase == pb.PHASE_HALTED and "drill" in halted.halt_reason
    assert stub.ListOrders(pb.ListOrdersRequest(), metadata=control()).orders == []
    closed = stub.ListOrders(pb.ListOrdersRequest(include_closed=True), metadata=control()).orders
    assert [o.status for o in closed] == ["cancelled"]
    again = stub.EmergencyStop(pb.EmergencyStopRequest(reason="again"), metadata=control())
    assert again.halted and "drill" in again.halt_reason  # idempotent: nothing changed
    blocked = stub.SubmitSignal(pb.SubmitSignalRequest(**RESTING_BUY), metadata=control())
    assert not blocked.accepted and "halted" in blocked.reason

    assert stub.ListPositions(pb.ListPositionsRequest(), metadata=read_only()).positions == []
    trades = stub.ListTrades(pb.ListTradesRequest(page_size=10), metadata=read_only())
    assert list(trades.trades) == [] and trades.next_page_token == ""

    time.sleep(0.5)
    stop.set()
    stub.Resume(pb.ResumeRequest(reason="end of drill"), metadata=control())
    collector.join(5)
    kinds = {e.kind for e in events}
    assert {pb.EVENT_KIND_ORDER, pb.EVENT_KIND_SIGNAL, pb.EVENT_KIND_STATE} <= kinds
    messages = [e.message for e in events]
    assert sum("emergency stop" in m for m in messages) == 1

    with sqlite3.connect(serve.journal) as db:
        halts = db.execute("SELECT data FROM events WHERE kind = 'halted'").fetchall()
        resets = db.execute("SELECT data FROM events WHERE kind = 'risk_lock_reset'").fetchall()
    assert len(halts) == 1 and resets == []
    halt = json.loads(halts[0][0])
    assert halt["reason"] == "drill"
    assert halt["who"].startswith("e2e (grpc, control token")  # who, how and from where
    assert serve.terminate() == 0


def test_health_and_reflection_need_no_token(serve: ServeProcess) -> None:
    health = health_pb2_grpc.HealthStub(serve.channel())
    answer = health.Check(health_pb2.HealthCheckRequest(service="tradefleet.v1.RuntimeService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(serve.channel())
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert "tradefleet.v1.RuntimeService" in names
    with pytest.raises(grpc.RpcError) as refused:
        serve.stub().GetStatus(pb.GetStatusRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as read_only_control:
        serve.stub().Pause(pb.PauseRequest(reason="x"), metadata=read_only())
    assert read_only_control.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_emergency_stop_survives_kill_9_and_restart(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, signal_bot_manifest(), speed=600).start()
    try:
        serve.wait_for(lambda s: s.bars >= 1)
        order = serve.stub().SubmitSignal(pb.SubmitSignalRequest(**RESTING_BUY), metadata=control())
        assert order.accepted
        serve.stub().EmergencyStop(pb.EmergencyStopRequest(reason="risk off"), metadata=control())
    finally:
        serve.kill()  # SIGKILL: no shutdown code runs
    restarted = ServeProcess(
        tmp_path, signal_bot_manifest(), speed=600, journal=serve.journal
    ).start()
    try:
        status = restarted.wait_for(lambda s: s.phase != pb.PHASE_STARTING)
        assert status.halted and status.phase == pb.PHASE_HALTED
        assert "risk off" in status.halt_reason
        refused = restarted.stub().SubmitSignal(
            pb.SubmitSignalRequest(**RESTING_BUY), metadata=control()
        )
        assert not refused.accepted and "halted" in refused.reason
        resumed = restarted.stub().Resume(pb.ResumeRequest(reason="all clear"), metadata=control())
        assert not resumed.halted
        assert (
            restarted.stub()
            .SubmitSignal(pb.SubmitSignalRequest(**RESTING_BUY), metadata=control())
            .accepted
        )
        assert restarted.terminate() == 0
    finally:
        restarted.kill()
