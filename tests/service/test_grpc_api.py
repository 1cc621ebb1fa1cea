"""RuntimeService over a real server and channel, against the in-memory control plane."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.service.fakes import (
    FakeControlPlane,
    no_leaked_server_threads,  # noqa: F401 - autouse fixture
    running_server,
)
from tradefleet_runtime import cli
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.service.api import (
    Direction,
    EventKind,
    Phase,
    Signal,
    SignalConflict,
    SignalResult,
)
from tradefleet_runtime.service.auth import TokenAuth
from tradefleet_runtime.service.client import ApiError, RuntimeClient
from tradefleet_runtime.service.grpc_server import SERVICE_NAME, GrpcEndpoint


@pytest.fixture
def control() -> FakeControlPlane:
    return FakeControlPlane()


@pytest.fixture
def endpoint(control: FakeControlPlane) -> Iterator[GrpcEndpoint]:
    with running_server(control, max_streams=2) as endpoint:
        yield endpoint


@pytest.fixture
def channel(endpoint: GrpcEndpoint) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{endpoint.port}") as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.RuntimeServiceStub:
    return pb_grpc.RuntimeServiceStub(channel)


@pytest.fixture
def client(endpoint: GrpcEndpoint) -> Iterator[RuntimeClient]:
    with RuntimeClient(f"127.0.0.1:{endpoint.port}", timeout=5, actor="tester") as client:
        yield client


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_get_status_carries_every_field(stub: pb_grpc.RuntimeServiceStub) -> None:
    status = stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    assert status.bot == "btc-ema" and status.mode == "paper"
    assert status.phase == pb.PHASE_RUNNING
    assert (status.equity, status.balance, status.currency) == (10_250.5, 9_000.0, "USDT")
    assert (status.pnl_today, status.pnl_total, status.drawdown_pct) == (50.25, 250.5, 1.5)
    assert (status.open_positions, status.open_orders, status.bars) == (1, 2, 1234)
    assert status.last_bar_ts == 1_700_000_000 and status.config_hash == "abc123"
    assert status.broker_connected and status.reconciled and not status.halted
    assert [(p.kind, p.name, p.version) for p in status.plugins] == [
        ("strategy", "ema-cross", "1.0.0"),
        ("risk", "daily-loss", "0.2.0"),
        ("broker", "paper", "1.0.0"),
    ]
    assert [(r.name, r.locked, r.reason) for r in status.risk] == [
        ("fixed-size", False, ""),
        ("daily-loss", True, "loss limit hit"),
    ]
    slippage, win_rate = status.quality
    assert slippage.HasField("cp") and (slippage.cp, slippage.cpk) == (1.5, 1.1)
    assert not win_rate.HasField("cp") and not win_rate.HasField("cpk")


def test_client_status_round_trips_to_the_same_snapshot(
    control: FakeControlPlane, client: RuntimeClient
) -> None:
    assert client.get_status() == control.get_status()


def test_list_positions_and_orders(control: FakeControlPlane, client: RuntimeClient) -> None:
    assert client.list_positions() == control.list_positions()
    working = client.list_orders()
    assert [o.client_order_id for o in working] == ["e-1", "s-1"]
    everything = client.list_orders(include_closed=True)
    assert everything == control.list_orders(include_closed=True)
    market = next(o for o in everything if o.client_order_id == "e-0")
    assert market.price is None and market.parent_id is None
    assert next(o for o in everything if o.client_order_id == "s-1").parent_id == "e-0"


def test_list_trades_pages(control: FakeControlPlane, client: RuntimeClient) -> None:
    first = client.list_trades(page_size=3)
    assert [t.seq for t in first.trades] == [1, 2, 3] and first.next_page_token
    second = client.list_trades(page_size=3, page_token=first.next_page_token)
    assert [t.seq for t in second.trades] == [4, 5, 6]
    assert list(client.iter_trades(page_size=3)) == control.trades
    with pytest.raises(ApiError) as bad_token:
        client.list_trades(page_token="garbage")
    assert bad_token.value.code == "INVALID_ARGUMENT" and bad_token.value.field == "page_token"
    with pytest.raises(ApiError) as too_big:
        client.list_trades(page_size=5000)
    assert too_big.value.field == "page_size"


def test_default_page_size(stub: pb_grpc.RuntimeServiceStub) -> None:
    page = stub.ListTrades(pb.ListTradesRequest(), timeout=5)
    assert len(page.trades) == 7 and page.next_page_token == ""


def test_pause_resume_and_who(control: FakeControlPlane, client: RuntimeClient) -> None:
    paused = client.pause("maintenance")
    assert paused.phase is Phase.PAUSED and paused.pause_reason == "maintenance"
    resumed = client.resume("done")
    assert resumed.phase is Phase.RUNNING and not resumed.paused
    method, who, reason = control.calls[0]
    assert (method, reason) == ("pause", "maintenance")
    assert who.startswith("tester (grpc, no auth, ") and "127.0.0.1" in who


def test_emergency_stop_is_idempotent_and_resume_clears_it(
    control: FakeControlPlane, client: RuntimeClient
) -> None:
    halted = client.emergency_stop("venue outage", flatten=True)
    assert halted.halted and halted.phase is Phase.HALTED and halted.halt_reason == "venue outage"
    assert halted.open_positions == 0 and client.list_positions() == []
    assert [o.client_order_id for o in client.list_orders()] == ["s-1"]  # entry cancelled
    again = client.emergency_stop("second press")
    assert again == halted  # nothing changed
    assert client.resume("all clear").phase is Phase.RUNNING


def test_reset_risk_lock(client: RuntimeClient) -> None:
    status = client.reset_risk_lock("daily-loss", "reviewed")
    assert not any(r.locked for r in status.risk)
    with pytest.raises(ApiError) as unknown:
        client.reset_risk_lock("nope", "x")
    assert unknown.value.code == "INVALID_ARGUMENT" and unknown.value.field == "plugin"
    assert unknown.value.message.startswith("plugin: ")


def test_reset_risk_lock_needs_a_plugin(stub: pb_grpc.RuntimeServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.ResetRiskLock(pb.ResetRiskLockRequest(reason="x"), timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith("plugin:")


def test_submit_signal(control: FakeControlPlane, client: RuntimeClient) -> None:
    signal = Signal(
        symbol="BTC/USDT",
        direction=Direction.SELL,
        entry=25_000.0,
        stop_loss=25_500.0,
        take_profit=24_000.0,
        volume=0.02,
        timeframe="1h",
        pattern_type="double-top",
        source="scanner",
        confidence=0.8,
    )
    result = client.submit_signal(signal)
    assert result.accepted and result.client_order_id == "sig-1"
    received = control.signals[0]
    assert received.direction is Direction.SELL and received.volume == 0.02
    assert received.current_price is None and received.confidence == 0.8
    assert received.signal_id and received.received_at > 0  # set by the front end
    client.pause("quiet")
    refused = client.submit_signal(signal)
    assert not refused.accepted and "paused" in refused.reason


def test_a_signal_id_reused_for_another_signal_is_already_exists(
    control: FakeControlPlane, client: RuntimeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def conflict(signal: Signal) -> SignalResult:
        raise SignalConflict(signal.signal_id)

    monkeypatch.setattr(control, "submit_signal", conflict)
    signal = Signal("BTC/USDT", Direction.BUY, 100.0, 90.0, 120.0, signal_id="tv:alert-7")
    with pytest.raises(ApiError) as refused:
        client.submit_signal(signal)
    assert refused.value.code == "ALREADY_EXISTS" and refused.value.field == "signal_id"
    assert "tv:alert-7" in refused.value.message


LEVELS: dict[str, Any] = {
    "symbol": "X",
    "direction": pb.DIRECTION_BUY,
    "entry": 1.1,
    "stop_loss": 1.0,
    "take_profit": 1.2,
}


def test_submit_signal_validation(stub: pb_grpc.RuntimeServiceStub) -> None:
    cases = [
        (pb.SubmitSignalRequest(direction=pb.DIRECTION_BUY), "symbol"),
        (pb.SubmitSignalRequest(symbol="X"), "direction"),
        (pb.SubmitSignalRequest(**LEVELS, volume=-1), "volume"),
        (pb.SubmitSignalRequest(**{**LEVELS, "entry": float("nan")}), "entry"),
        (pb.SubmitSignalRequest(**{**LEVELS, "stop_loss": 1.2}), "stop_loss"),
        (pb.SubmitSignalRequest(**LEVELS, confidence=1.5), "confidence"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.RpcError) as error:
            stub.SubmitSignal(request, timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (error.value.details() or "").startswith(f"{field}: ")
        assert ("tradefleet-field", field) in tuple(error.value.trailing_metadata() or ())


def test_update_params_json_and_struct(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    status = stub.UpdateParams(pb.UpdateParamsRequest(params_json='{"fast": 5}'), timeout=5)
    assert control.params["fast"] == 5 and status.config_hash != "abc123"
    struct = struct_pb2.Struct()
    struct.update({"slow": 40, "threshold": 0.75})
    stub.UpdateParams(pb.UpdateParamsRequest(params_struct=struct), timeout=5)
    assert control.params["slow"] == 40 and isinstance(control.params["slow"], int)
    assert control.params["threshold"] == 0.75


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.UpdateParamsRequest(params_json='{"fast": 50}'), "fast"),
        (pb.UpdateParamsRequest(params_json='{"bogus": 1}'), "bogus"),
        (pb.UpdateParamsRequest(params_json='{"fast": 1.5}'), "fast"),
        (pb.UpdateParamsRequest(params_json="[1, 2]"), "params_json"),
        (pb.UpdateParamsRequest(params_json="{not json"), "params_json"),
        (pb.UpdateParamsRequest(), "params"),
    ],
)
def test_update_params_refusals_name_the_field(
    control: FakeControlPlane,
    stub: pb_grpc.RuntimeServiceStub,
    request_: pb.UpdateParamsRequest,
    field: str,
) -> None:
    before = dict(control.params)
    with pytest.raises(grpc.RpcError) as error:
        stub.UpdateParams(request_, timeout=5)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(f"{field}: ")
    assert control.params == before


def test_client_update_params(control: FakeControlPlane, client: RuntimeClient) -> None:
    client.update_params({"fast": 7, "threshold": 1})
    assert control.params["fast"] == 7
    with pytest.raises(ApiError) as error:
        client.update_params({"slow": "x"})
    assert error.value.field == "slow"


def test_unexpected_exception_is_internal_and_hides_details(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(control, "get_status", broken)
    with pytest.raises(grpc.RpcError) as error:
        stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    assert error.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (error.value.details() or "")


# --- StreamEvents ---------------------------------------------------------------------------


def test_stream_events_and_client_cancel_releases_the_subscription(
    control: FakeControlPlane, client: RuntimeClient
) -> None:
    stream = client.events()
    received = []
    wait_until(lambda: control.subscribers == 1)
    control.publish(
        EventKind.FILL, "filled", {"price": 25_000.5, "qty": 2, "id": "e-1", "ok": True}
    )
    control.publish(EventKind.ORDER, "sent")
    for event in stream:
        received.append(event)
        if len(received) == 2:
            break
    fill, order = received
    assert fill.kind is EventKind.FILL and fill.ts == control.ts
    assert fill.data == {"price": 25_000.5, "qty": 2, "id": "e-1", "ok": True}
    assert isinstance(fill.data["qty"], int) and isinstance(fill.data["ok"], bool)
    assert order.kind is EventKind.ORDER and order.seq > fill.seq
    stream.cancel()
    wait_until(lambda: control.subscribers == 0)


def test_stream_events_filters_kinds_but_always_sends_dropped(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    request = pb.StreamEventsRequest(kinds=[pb.EVENT_KIND_FILL], max_queue=2)
    call = stub.StreamEvents(request, timeout=10)
    call.initial_metadata()  # sent once the subscription exists
    assert control.subscribers == 1
    # the fake's queue holds 2; the rest of a burst is dropped and counted
    for i in range(5):
        control.publish(EventKind.FILL if i % 2 == 0 else EventKind.ORDER, f"event {i}")
    kinds = []
    for event in call:  # the fake, like the real hub, reports the drop before the queue
        kinds.append(event.kind)
        if event.kind == pb.EVENT_KIND_DROPPED:
            assert event.data["count"].int_value == 3
        if len(kinds) == 2:
            break
    # the queued ORDER was filtered out; DROPPED always comes through
    assert sorted(kinds) == [pb.EVENT_KIND_FILL, pb.EVENT_KIND_DROPPED]
    call.cancel()
    wait_until(lambda: control.subscribers == 0)


def test_slow_stream_never_blocks_the_publisher(
    control: FakeControlPlane, client: RuntimeClient
) -> None:
    stream = client.events(max_queue=10)
    wait_until(lambda: control.subscribers == 1)
    started = time.monotonic()
    for i in range(10_000):
        control.publish(EventKind.ORDER, f"o{i}")
    assert time.monotonic() - started < 2.0
    first = next(iter(stream))
    assert first.kind is EventKind.ORDER or first.kind is EventKind.DROPPED
    stream.cancel()
    wait_until(lambda: control.subscribers == 0)


def test_stream_ends_when_the_subscription_closes(
    control: FakeControlPlane, client: RuntimeClient
) -> None:
    stream = client.events()
    wait_until(lambda: control.subscribers == 1)
    with control._lock:
        subscription = control._subscribers[0]
    subscription.close()  # e.g. the bot stopped
    assert list(stream) == []


def test_stream_limit_is_resource_exhausted(
    control: FakeControlPlane, client: RuntimeClient
) -> None:
    streams = [client.events(), client.events()]
    wait_until(lambda: control.subscribers == 2)
    with pytest.raises(ApiError) as error:
        list(client.events(timeout=5))
    assert error.value.code == "RESOURCE_EXHAUSTED"
    for stream in streams:
        stream.cancel()
    wait_until(lambda: control.subscribers == 0)
    # the slots are free again
    third = client.events()
    wait_until(lambda: control.subscribers == 1)
    third.cancel()
    wait_until(lambda: control.subscribers == 0)


def test_server_stop_ends_open_streams(control: FakeControlPlane) -> None:
    with running_server(control) as endpoint:
        client = RuntimeClient(f"127.0.0.1:{endpoint.port}", timeout=5)
        stream = client.events()
        wait_until(lambda: control.subscribers == 1)
        errors: list[BaseException] = []

        def consume() -> None:
            try:
                list(stream)
            except ApiError as error:
                errors.append(error)

        reader = threading.Thread(target=consume)
        reader.start()
    reader.join(5)
    assert not reader.is_alive()
    assert control.subscribers == 0
    client.close()


def test_stream_over_the_runtime_event_hub() -> None:
    """The servicer with the runtime's own EventHub subscriptions (bounded, closable)."""
    from tradefleet_runtime.service.events import EventHub

    hub = EventHub()

    class HubPlane(FakeControlPlane):
        def subscribe_events(self, max_queue: int = 1000, recent: int = 0, kinds: Any = ()) -> Any:
            return hub.subscribe(max_queue, recent, kinds)

    with (
        running_server(HubPlane()) as endpoint,
        RuntimeClient(f"127.0.0.1:{endpoint.port}", timeout=5) as client,
    ):
        stream = client.events(max_queue=1)
        wait_until(lambda: hub.subscribers == 1)
        hub.publish(1, EventKind.FILL, "first", {"qty": 1})
        hub.publish(2, EventKind.FILL, "second")  # does not fit: dropped and counted
        events = iter(stream)
        received = [next(events), next(events)]
        assert sorted(e.kind.value for e in received) == ["dropped", "fill"]
        stream.cancel()
        wait_until(lambda: hub.subscribers == 0)


# --- health and reflection ------------------------------------------------------------------


def test_health_without_token(endpoint: GrpcEndpoint, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    endpoint.set_serving(False)
    response = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= names


def test_json_params_survive_integers(control: FakeControlPlane, client: RuntimeClient) -> None:
    client.update_params(json.loads('{"slow": 30}'))
    assert control.params["slow"] == 30


# --- the control CLI (tradefleet status|positions|...|stop) ------------------------------------

CLI_CONTROL = "cli-control-token"
CLI_READ = "cli-read-token"


@pytest.fixture
def cli_tokens(tmp_path: Path) -> Path:
    (tmp_path / "control.token").write_text(CLI_CONTROL)
    (tmp_path / "read.token").write_text(CLI_READ)
    (tmp_path / "mine").write_text(CLI_CONTROL + "\n")
    return tmp_path


@pytest.fixture
def cli_endpoint(control: FakeControlPlane, cli_tokens: Path) -> Iterator[GrpcEndpoint]:
    with running_server(control, auth=TokenAuth(cli_tokens)) as endpoint:
        yield endpoint


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue()


@pytest.fixture
def cli_address(cli_endpoint: GrpcEndpoint, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TRADEFLEET_TOKEN", CLI_READ)
    return f"127.0.0.1:{cli_endpoint.port}"


def test_cli_status_json(cli_address: str) -> None:
    code, out = run_cli("status", cli_address, "--json")
    assert code == 0
    status = json.loads(out)
    assert status["bot"] == "btc-ema" and status["phase"] == "Running"
    assert status["plugins"][0] == {"kind": "strategy", "name": "ema-cross", "version": "1.0.0"}
    assert status["quality"][1]["cp"] is None and status["quality"][0]["cpk"] == 1.1
    assert status["risk"][1] == {
        "name": "daily-loss",
        "version": "0.2.0",
        "locked": True,
        "reason": "loss limit hit",
        "tier": 0,
    }


def test_cli_positions_json(cli_address: str, control: FakeControlPlane) -> None:
    code, out = run_cli("positions", cli_address, "--json")
    assert code == 0
    (position,) = json.loads(out)
    assert position["symbol"] == "BTC/USDT" and position["quantity"] == 0.05
    assert position["opened_ts"] == control.positions[0].opened_ts


def test_cli_orders_and_trades_json(cli_address: str) -> None:
    code, out = run_cli("orders", cli_address, "--json", "--all")
    assert code == 0 and len(json.loads(out)) == 3
    code, out = run_cli("trades", cli_address, "--json", "--page-size", "5")
    page = json.loads(out)
    assert code == 0 and len(page["trades"]) == 5 and page["next_page_token"]
    code, out = run_cli("trades", cli_address, "--json", "--page-token", page["next_page_token"])
    assert [t["seq"] for t in json.loads(out)["trades"]] == [6, 7]
    code, out = run_cli("trades", cli_address, "--json", "--all", "--page-size", "2")
    assert [t["seq"] for t in json.loads(out)["trades"]] == list(range(1, 8))


def test_cli_tables_by_default(cli_address: str) -> None:
    for command in ("status", "positions", "orders", "trades"):
        code, out = run_cli(command, cli_address)
        assert code == 0, command
        assert "BTC/USDT" in out or "btc-ema" in out
    code, out = run_cli("status", cli_address)
    assert "daily-loss" in out and "LOCKED" in out and "slippage_bps" in out


def test_cli_tables_off_a_terminal_keep_every_id_whole(
    cli_address: str, control: FakeControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Piped or written to a file, a table is as wide as its rows: at rich's default of 80
    columns an order's id was cut (``tf831…``), and a person could not copy it."""
    monkeypatch.delenv("COLUMNS", raising=False)
    long_id = "tf8316c1d0a7e-btc-ema-1700000000-0123456789abcdef-sl"
    control.orders[0] = replace(control.orders[0], client_order_id=long_id)
    code, out = run_cli("orders", cli_address, "--all")
    assert code == 0 and long_id in out


def test_cli_status_says_what_a_starting_bot_waits_for(
    cli_address: str, control: FakeControlPlane
) -> None:
    waiting = "waiting for the venue: exchange binanceusdm: connecting failed (503)"
    control.status = dataclasses.replace(
        control.status, phase=Phase.STARTING, broker_connected=False, starting_reason=waiting
    )
    code, out = run_cli("status", cli_address, "--json")
    assert code == 0 and json.loads(out)["starting_reason"] == waiting
    code, out = run_cli("status", cli_address)
    assert code == 0
    assert "DISCONNECTED" in out and "waiting for the venue" in " ".join(out.split())


def test_cli_stop_with_control_token_file(
    cli_address: str, cli_tokens: Path, control: FakeControlPlane
) -> None:
    code, out = run_cli(
        "stop",
        cli_address,
        "--reason",
        "venue [down]",
        "--flatten",
        "--token-file",
        str(cli_tokens / "mine"),
        "--actor",
        "alice",
        "--json",
    )
    assert code == 0
    status = json.loads(out)
    assert status["halted"] and status["phase"] == "Halted"
    assert status["halt_reason"] == "venue [down]" and status["open_positions"] == 0
    method, who, reason = control.calls[0]
    assert reason == "venue [down]"
    assert method == "emergency_stop" and who.startswith("alice (grpc, control token")
    code, out = run_cli(
        "resume", cli_address, "--reason", "ok", "--token-file", str(cli_tokens / "mine")
    )
    assert code == 0 and "Running" in out


def test_cli_control_command_with_read_token_is_refused(
    cli_address: str, capsys: pytest.CaptureFixture[str], control: FakeControlPlane
) -> None:
    code, _ = run_cli("pause", cli_address, "--reason", "x")
    assert code == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert control.calls == []


def test_cli_reset_risk_refusal_names_the_field(
    cli_address: str, cli_tokens: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = ["--token-file", str(cli_tokens / "mine")]
    code, _ = run_cli("reset-risk", cli_address, "nope", "--reason", "x", *token)
    assert code == 1
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "plugin" in err
    code, out = run_cli("reset-risk", cli_address, "daily-loss", "--reason", "x", "--json", *token)
    assert code == 0 and not any(r["locked"] for r in json.loads(out)["risk"])


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (f"{CLI_CONTROL}\nsecond line\n".encode(), "holds 2 lines"),
        (f"{CLI_CONTROL}\u00c4\n".encode(), "not ASCII"),
        (CLI_CONTROL.encode() + b"\xff\n", "not ASCII"),
        (f"{CLI_CONTROL} {CLI_CONTROL}\n".encode(), "a space"),
    ],
)
def test_cli_refuses_a_token_file_grpc_cannot_send_before_any_call(
    cli_address: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    control: FakeControlPlane,
    content: bytes,
    problem: str,
) -> None:
    bad = tmp_path / "bad.token"
    bad.write_bytes(content)
    code, out = run_cli("pause", cli_address, "--reason", "x", "--token-file", str(bad))
    err = "".join(capsys.readouterr().err.split())  # as rich may wrap it
    assert code == 2 and out == ""
    assert str(bad) in err and problem.replace(" ", "") in err
    assert "INTERNAL" not in err and CLI_CONTROL not in err  # never the token
    assert control.calls == []


def test_cli_missing_token_is_unauthenticated(
    cli_endpoint: GrpcEndpoint, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TRADEFLEET_TOKEN", raising=False)
    code, _ = run_cli("status", f"127.0.0.1:{cli_endpoint.port}")
    assert code == 1 and "UNAUTHENTICATED" in capsys.readouterr().err


def test_cli_events_json_lines(cli_address: str, control: FakeControlPlane) -> None:
    def publish() -> None:
        deadline = time.monotonic() + 5
        while control.subscribers == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        control.publish(EventKind.ORDER, "ignored by the filter")
        control.publish(EventKind.FILL, "filled", {"price": 1.5})
        control.publish(EventKind.FILL, "filled again", {"price": 1.6})

    publisher = threading.Thread(target=publish)
    publisher.start()
    code, out = run_cli("events", cli_address, "--json", "--kind", "fill", "--count", "2")
    publisher.join()
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["kind"] for e in events] == ["fill", "fill"]
    assert events[0]["data"] == {"price": 1.5}
    deadline = time.monotonic() + 3
    while control.subscribers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert control.subscribers == 0


def test_cli_events_duration_ends_quietly(cli_address: str) -> None:
    code, out = run_cli("events", cli_address, "--duration", "0.3")
    assert code == 0 and out == ""


def test_cli_unreachable_bot(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("status", "127.0.0.1:1", "--timeout", "0.5")
    err = capsys.readouterr().err
    assert code == 1 and ("UNAVAILABLE" in err or "DEADLINE_EXCEEDED" in err)
