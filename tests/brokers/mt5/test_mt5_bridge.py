"""The MT5 bridge (``tradefleet mt5-bridge`` + its client) in front of the emulated terminal:
the client is the package to the plugin (same structures, constants, errors), the bridge
refuses calls without its token and takes a rotated one without a restart, the account's
secrets appear in no log or error, and a bridge that dies mid-order leaves the journal equal
to the terminal once the plugin has reconciled. (The order, fault, restart and engine suites
also run through an in-process bridge: the ``transport`` fixture.)"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.brokers.mt5.harness import (
    BRIDGE_TOKEN,
    PLANTED_LOGIN,
    PLANTED_PASSWORD,
    PLANTED_SERVER,
    UPSTREAM_ENV,
    Bridge,
    Mt5Harness,
    fills,
    live_engine,
    minute_bar,
    planted_terminal,
    settle_and_pump,
    write_credentials,
)
from tests.brokers.mt5.test_mt5_engine import _journal_equals_terminal
from tests.runtime.helpers import Scripted
from tests.service.test_auth import certificates  # noqa: F401  (the openssl-made CA and cert)
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.mt5_link import IPC_LOST, forget_bridge
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams
from tradefleet_runtime.api.v1 import mt5_bridge_pb2 as pb
from tradefleet_runtime.api.v1 import mt5_bridge_pb2_grpc as pb_grpc
from tradefleet_runtime.mt5_bridge import codec
from tradefleet_runtime.mt5_bridge.client import BridgeTerminal
from tradefleet_runtime.mt5_bridge.command import main as bridge_main
from tradefleet_runtime.mt5_bridge.server import build_bridge_server, constants_of
from tradefleet_runtime.sdk import BrokerContext, OrderStatus, PluginError, Side
from tradefleet_runtime.service.auth import TlsFiles, TokenAuth

ROOT = Path(__file__).resolve().parents[3]
SECRETS = (PLANTED_PASSWORD, PLANTED_SERVER, str(PLANTED_LOGIN))


@pytest.fixture
def bridge() -> Iterator[Bridge]:
    running = Bridge.start(MT5Terminal(margin_mode="hedging"))
    yield running
    running.stop()


def _market_buy(term: Any, volume: float = 0.1, comment: str = "tf-bridge-1") -> dict[str, Any]:
    return {
        "action": term.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": volume,
        "type": term.ORDER_TYPE_BUY,
        "price": term.symbol_info_tick("EURUSD").ask,
        "deviation": 10,
        "magic": 4242,
        "comment": comment,
        "type_filling": term.ORDER_FILLING_FOK,
    }


# --- the client is the package ----------------------------------------------------------------


def _same(direct: Any, through: Any) -> None:
    assert type(through).__name__ == type(direct).__name__
    assert through == direct
    if hasattr(direct, "_asdict"):
        assert through._asdict() == direct._asdict()


def test_answers_are_the_packages_structures(bridge: Bridge) -> None:
    term, client = bridge.endpoint.servicer.terminal, bridge.client
    assert client.initialize() is True
    for function, args in (
        ("version", ()),
        ("terminal_info", ()),
        ("account_info", ()),
        ("symbol_info", ("EURUSD",)),
        ("symbol_info_tick", ("EURUSD",)),
        ("symbols_total", ()),
        ("symbol_select", ("GBPUSD", True)),
    ):
        _same(getattr(term, function)(*args), getattr(client, function)(*args))
    symbols = client.symbols_get()
    assert isinstance(symbols, tuple) and [s.name for s in symbols] == [
        s.name for s in term.symbols_get()
    ]
    result = client.order_send(_market_buy(client))
    assert type(result).__name__ == "OrderSendResult" and result.retcode == 10009
    assert type(result.request).__name__ == "TradeRequest"
    assert result.request.comment == "tf-bridge-1" and result.request._asdict()["magic"] == 4242
    (position,) = client.positions_get(symbol="EURUSD")
    _same(term.positions_get(symbol="EURUSD")[0], position)
    _same(term.history_orders_get(0, 2**31 - 1), client.history_orders_get(0, 2**31 - 1))
    _same(term.history_deals_get(0, 2**31 - 1), client.history_deals_get(0, 2**31 - 1))
    _same(
        term.history_deals_get(position=position.ticket),
        client.history_deals_get(position=position.ticket),
    )
    rates = client.copy_rates_from_pos("EURUSD", client.TIMEFRAME_M1, 0, 10)
    direct = term.copy_rates_from_pos("EURUSD", term.TIMEFRAME_M1, 0, 10)
    assert rates.dtype == direct.dtype and np.array_equal(rates, direct)
    assert rates["close"][-1] == direct["close"][-1]


def test_the_bridge_serves_exactly_the_packages_functions() -> None:
    from tests.venues.mt5 import API_FUNCTIONS  # pinned to the real wheel's signatures
    from tradefleet_runtime.mt5_bridge.functions import FUNCTIONS

    assert set(API_FUNCTIONS) == FUNCTIONS


def test_errors_and_constants_are_the_terminals(bridge: Bridge) -> None:
    term, client = bridge.endpoint.servicer.terminal, bridge.client
    client.initialize()
    assert client.symbol_info("NOT-A-SYMBOL") is None
    term.symbol_info("NOT-A-SYMBOL")
    assert client.last_error() == term.last_error()
    assert client.constants() == constants_of(term)
    assert client.ORDER_TYPE_SELL == term.ORDER_TYPE_SELL
    assert client.TRADE_RETCODE_REQUOTE == 10004
    with pytest.raises(AttributeError):
        _ = client.NOT_A_CONSTANT
    with pytest.raises(TypeError, match="not a MetaTrader5 function"):
        client.call("__class__")


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_values)
def test_values_cross_the_wire_unchanged(value: Any) -> None:
    back = codec.decode(codec.encode(value))
    assert back == value and type(back) is type(value)


@pytest.mark.parametrize(
    "record",
    [
        pb.Mt5Record(type="not a name", fields=["a"], values=[codec.encode(1)]),
        pb.Mt5Record(type="T", fields=["a", "a"], values=[codec.encode(1), codec.encode(2)]),
        pb.Mt5Record(type="T", fields=["1x"], values=[codec.encode(1)]),
        pb.Mt5Record(type="T", fields=["a"], values=[]),
    ],
)
def test_a_malformed_argument_is_invalid_not_internal(bridge: Bridge, record: Any) -> None:
    with grpc.insecure_channel(bridge.client.address) as channel:
        stub = pb_grpc.Mt5BridgeServiceStub(channel)
        request = pb.Mt5CallRequest(function="order_check", args=[pb.Mt5Value(record_value=record)])
        with pytest.raises(grpc.RpcError) as refused:
            stub.Call(request, metadata=(("authorization", f"Bearer {BRIDGE_TOKEN}"),))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith("order_check: mt5 bridge:")
    assert bridge.endpoint.servicer.calls == 0


# --- tokens -----------------------------------------------------------------------------------


def test_calls_without_a_valid_token_are_refused_and_leak_nothing(bridge: Bridge) -> None:
    term = bridge.endpoint.servicer.terminal
    with grpc.insecure_channel(bridge.client.address) as channel:
        stub = pb_grpc.Mt5BridgeServiceStub(channel)
        for metadata in (
            (),
            (("authorization", "Bearer not-the-token"),),
            (("authorization", f"Basic {BRIDGE_TOKEN}"),),
            (("authorization", f"Bearer {BRIDGE_TOKEN[:-1]}"),),
        ):
            for call, request in (
                (stub.Call, pb.Mt5CallRequest(function="account_info")),
                (stub.Constants, pb.Mt5ConstantsRequest()),
            ):
                with pytest.raises(grpc.RpcError) as refused:
                    call(request, metadata=metadata, timeout=5)  # type: ignore[operator]
                assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
                details = refused.value.details() or ""
                assert BRIDGE_TOKEN[:8] not in details and "not-the-token" not in details
    assert term.calls == {}  # nothing reached the terminal
    assert bridge.endpoint.servicer.calls == 0


def test_the_client_with_a_wrong_token_sees_a_lost_terminal(bridge: Bridge, tmp_path: Path) -> None:
    wrong = tmp_path / "token"
    wrong.write_text("stale-token\n")
    client = BridgeTerminal(bridge.client.address, token_file=wrong, timeout_s=5)
    try:
        assert client.account_info() is None
        code, message = client.last_error()
        assert code in IPC_LOST and "UNAUTHENTICATED" in message and "stale" not in message
        with pytest.raises(ConnectionError):
            client.constants()
    finally:
        client.close()


def test_the_token_rotates_without_a_restart(tmp_path: Path) -> None:
    term = MT5Terminal(margin_mode="netting")
    running = Bridge.start(term)
    mine = tmp_path / "mt5-bridge.token"
    mine.write_text(BRIDGE_TOKEN)
    client = BridgeTerminal(running.client.address, token_file=mine, timeout_s=5)

    def rotate(path: Path, token: str) -> None:  # as a Secret update: a new file swapped in
        fresh = path.with_name(path.name + ".new")
        fresh.write_text(token + "\n")
        os.replace(fresh, path)

    try:
        assert client.initialize() is True
        rotate(running.token_file, "rotated-token-2")  # the bridge's Secret changes first
        assert client.account_info() is None and client.last_error()[0] in IPC_LOST
        rotate(mine, "rotated-token-2")  # then the bot's copy: no restart on either side
        assert client.account_info() is not None
        result = client.order_send(_market_buy(client))
        assert result.retcode == 10009
        assert running.endpoint.servicer.calls == 4  # the same server process all along
    finally:
        client.close()
        running.stop()


def test_a_broker_trades_on_across_a_rotation(tmp_path: Path) -> None:
    harness = Mt5Harness.netting(transport="bridge").connect()
    assert harness.bridge is not None
    try:
        first = harness.order()
        assert len(fills(harness.submit(first))) == 1
        for path in (harness.bridge.token_file,):  # client and bridge share the file here
            path.write_text("rotated-token-3\n")
        second = harness.order(Side.SELL)
        assert len(fills(harness.submit(second))) == 1
        assert len(harness.history_orders()) == 2
    finally:
        harness.close()


def test_tls_as_the_runtime_api_and_the_ca_from_the_credentials_folder(
    certificates: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "control.token").write_text(BRIDGE_TOKEN)
    term = MT5Terminal(margin_mode="netting", symbols=None)
    endpoint = build_bridge_server(
        term,
        address="127.0.0.1:0",
        auth=TokenAuth(auth),
        tls=TlsFiles(cert=certificates / "tls.crt", key=certificates / "tls.key"),
    ).start()
    address = f"127.0.0.1:{endpoint.port}"
    folder = write_credentials(tmp_path / "creds")
    (folder / "mt5-bridge.token").write_text(BRIDGE_TOKEN)
    shutil.copy(certificates / "ca.crt", folder / "ca.crt")
    plain = BridgeTerminal(address, token_file=folder / "mt5-bridge.token", timeout_s=3)
    broker = None
    try:
        assert plain.account_info() is None and plain.last_error()[0] in IPC_LOST
        broker = _connected_broker(endpoint.port, folder, bridge_ca_file="ca.crt")
        order = Mt5Harness(venue=None, broker=broker).order()
        broker.submit(order)
        broker.settle(timeout=30.0)
        assert len(fills(list(broker.drain_events()))) == 1
        assert len([d for d in term.history_deals_get(0, 2**31 - 1) if d.symbol]) == 1
    finally:
        plain.close()
        if broker is not None:
            broker.close()
        forget_bridge(address)
        endpoint.stop(0)


# --- secrets ----------------------------------------------------------------------------------


def _assert_secret_free(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a planted secret leaked: {text[:200]!r}"


def test_login_and_password_appear_in_no_log_or_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    term = planted_terminal()
    folder = write_credentials(tmp_path / "creds", PLANTED_LOGIN, PLANTED_PASSWORD, PLANTED_SERVER)
    errors: list[str] = []
    harness = Mt5Harness.build(
        "hedging", venue=term, credentials_dir=folder, transport="bridge"
    ).connect()
    assert harness.bridge is not None
    try:
        assert term.calls["initialize"] == 1  # logged in through the bridge
        assert len(fills(harness.submit(harness.order()))) == 1
        # the account moves on (a password changed at the broker): the reconnect is refused
        term._password = "changed-at-the-broker"
        term.faults.disconnect("ipc")
        harness.broker.submit(harness.order())
        with pytest.raises(PluginError) as refused:
            harness.broker.settle()
        errors.append(str(refused.value))
        errors += [repr(e) for e in harness.broker.drain_events()]
        errors.append(repr(harness.broker.params))
        # the terminal choking on an argument: the bridge names the function, not the values
        with grpc.insecure_channel(harness.bridge.client.address) as channel:
            stub = pb_grpc.Mt5BridgeServiceStub(channel)
            bad = pb.Mt5CallRequest(
                function="initialize",
                kwargs=codec.encode_entries(
                    {"login": str(PLANTED_LOGIN), "password": PLANTED_PASSWORD, "x": PLANTED_SERVER}
                ),
            )
            with pytest.raises(grpc.RpcError) as choked:
                stub.Call(bad, metadata=(("authorization", f"Bearer {BRIDGE_TOKEN}"),), timeout=5)
            assert choked.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            errors.append(choked.value.details() or "")
            # a refused login's words are cleaned of what it was given
            login = pb.Mt5CallRequest(
                function="login",
                args=[codec.encode(PLANTED_LOGIN)],
                kwargs=codec.encode_entries({"password": "wrong", "server": PLANTED_SERVER}),
            )
            answer = stub.Call(login, metadata=(("authorization", f"Bearer {BRIDGE_TOKEN}"),))
            errors.append(answer.error_message)
        errors.append(str(harness.bridge.client.last_error()))
    finally:
        harness.close()
    assert "initialize" in errors[-3]
    _assert_secret_free(caplog.text, *errors)


# --- a bridge subprocess on loopback --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tradefleet() -> list[str]:
    script = Path(sys.executable).with_name("tradefleet")
    if script.exists():
        return [str(script)]
    found = shutil.which("tradefleet")
    if found is None:
        pytest.skip("the tradefleet command is not installed")
    return [found]


def _start_bridge(auth: Path, port: int, terminal: str, **env_vars: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_vars}
    process = subprocess.Popen(
        [
            *_tradefleet(),
            "--log-level",
            "debug",
            "mt5-bridge",
            "--listen",
            f"127.0.0.1:{port}",
            "--auth-dir",
            str(auth),
            "--terminal",
            terminal,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # printed once serving
    assert f"listening on 127.0.0.1:{port}" in line, process.stderr.read() if process.stderr else ""
    return process


def _connected_broker(port: int, folder: Path, **params: Any) -> Mt5Broker:
    broker = Mt5Broker(
        Mt5BrokerParams(
            bridge_address=f"127.0.0.1:{port}",
            poll_interval_s=60.0,
            backoff_s=0.05,
            max_backoff_s=0.2,
            bridge_timeout_s=10.0,
            **params,
        )
    )
    broker.connect(
        BrokerContext(
            bot_name="default/eurusd-bridge",
            mode="live",
            symbols=("EURUSD",),
            currency="USD",
            initial_capital=10_000.0,
            credentials_dir=folder,
            wake=lambda: None,
        )
    )
    return broker


def test_a_bridge_subprocess_serves_the_broker_through_its_params(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "control.token").write_text(BRIDGE_TOKEN)
    folder = write_credentials(tmp_path / "creds", PLANTED_LOGIN, PLANTED_PASSWORD, PLANTED_SERVER)
    (folder / "mt5-bridge.token").write_text(BRIDGE_TOKEN + "\n")
    port = _free_port()
    process = _start_bridge(auth, port, "tests.brokers.mt5.harness:planted_terminal")
    broker = None
    try:
        broker = _connected_broker(port, folder)
        order = Mt5Harness(venue=None, broker=broker).order(quantity=20_000.0)
        assert broker.submit(order).status is OrderStatus.PENDING
        broker.settle(timeout=30.0)
        (fill,) = fills(list(broker.drain_events()))
        assert fill.client_order_id == order.client_order_id and fill.quantity == 20_000.0
        terminal = broker._terminal  # the bridge client, as the plugin loaded it
        assert isinstance(terminal, BridgeTerminal)
        deals = [d for d in terminal.history_deals_get(0, 2**31 - 1) if d.symbol]
        assert [(d.comment, d.volume) for d in deals] == [(order.client_order_id, 0.2)]
        assert broker.position_reports()[0].quantity == 20_000.0
    finally:
        if broker is not None:
            broker.close()
        forget_bridge(f"127.0.0.1:{port}")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "mt5 bridge call order_send" in err  # DEBUG names the calls ...
    _assert_secret_free(out, err)  # ... and never their arguments


def test_the_bridge_command_refuses_to_serve_without_a_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bridge_main(["--listen", "127.0.0.1:0", "--terminal", "tests.venues.mt5"]) == 2
    assert "--auth-dir is required" in capsys.readouterr().err
    assert bridge_main(["--insecure-no-auth", "--terminal", "MetaTrader5"]) == 2
    assert "only on Windows" in capsys.readouterr().err


# --- a bridge killed mid-order ----------------------------------------------------------------


class _DiesMidOrder:
    """The terminal behind a bridge that dies with an order's answer in hand: the order is at
    the terminal, the bot never hears of it."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal
        self.bridge: Bridge | None = None
        self.armed = False
        self.died = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        answer = self.terminal.order_send(request)
        if self.armed and self.bridge is not None:
            self.armed = False
            self.bridge.endpoint.server.stop(0)  # every call in flight is cut off
            self.died.set()
        return answer


@pytest.mark.parametrize("margin_mode", ["netting", "hedging"])
def test_a_bridge_killed_mid_order_ends_with_journal_equal_to_terminal(margin_mode: str) -> None:
    dying = _DiesMidOrder(MT5Terminal(margin_mode=margin_mode, symbols=None))
    venue = Mt5Harness.build(margin_mode, venue=dying, transport="bridge")
    assert venue.bridge is not None
    dying.bridge = venue.bridge
    # real waits while the bridge is away (the harness's own waits return at once)
    venue.broker._sleep = lambda seconds: (time.sleep(seconds), venue.terminal.advance(seconds))
    venue.symbols = ("EURUSD",)
    venue.connect()
    try:
        strategy = Scripted(
            {
                0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0),
                1: lambda ctx, bar: ctx.close("EURUSD"),
            }
        )
        engine, journal = live_engine(venue, strategy)
        dying.armed = True
        engine.run([minute_bar(0, 1.1)])
        assert dying.died.wait(30)
        assert len(venue.history_orders()) == 1  # executed at the terminal, answer lost
        port = venue.bridge.endpoint.port
        venue.bridge.endpoint.stop(0)
        venue.bridge = Bridge.start(dying, port=port)  # the bridge comes back on its address
        settle_and_pump(engine, venue)
        assert list(dict(journal.order_statuses()).values()) == ["filled"]
        assert engine.portfolio.position("EURUSD").quantity == 10_000.0  # 0.1 lot
        assert len(venue.history_orders()) == 1  # reconciled, never sent again
        # Whether the broker counted a reconnect depends on when it noticed the bridge was gone
        # (gRPC may redial before its next call fails): one order, filled once, is the point.
        engine.run([minute_bar(1, 1.1)])
        settle_and_pump(engine, venue)
        assert engine.portfolio.position("EURUSD").quantity == 0.0
        assert venue.terminal.positions_get() == ()
        _journal_equals_terminal(journal, venue)
    finally:
        venue.close()


class _HeldMidOrder:
    """The terminal behind the bridge: executes an order, then holds its answer until the test
    has killed the bridge process that asked."""

    def __init__(self, terminal: MT5Terminal) -> None:
        self.terminal = terminal
        self.armed = False
        self.executed = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)

    def order_send(self, request: dict[str, Any]) -> Any:
        answer = self.terminal.order_send(request)
        if self.armed:
            self.armed = False
            self.executed.set()
            self.release.wait(30)
        return answer


def test_a_bridge_process_killed_mid_order_then_restarted(tmp_path: Path) -> None:
    """SIGKILL of a real ``tradefleet mt5-bridge`` process while an order is at the terminal:
    after a new bridge process starts on the same address, the broker reconciles, and the
    journal equals the terminal (one order, one deal)."""
    term = MT5Terminal(margin_mode="netting", symbols=None)
    held = _HeldMidOrder(term)
    upstream = Bridge.start(held)  # the terminal's side, in this process: it outlives the kill
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "control.token").write_text(BRIDGE_TOKEN)
    folder = write_credentials(tmp_path / "creds")
    (folder / "mt5-bridge.token").write_text(BRIDGE_TOKEN)
    relay = {
        UPSTREAM_ENV: upstream.client.address,
        UPSTREAM_ENV + "_TOKEN": str(upstream.token_file),
    }
    terminal = "tests.brokers.mt5.harness:relay_terminal"
    port = _free_port()
    process = _start_bridge(auth, port, terminal, **relay)
    broker = None
    try:
        broker = _connected_broker(port, folder)
        venue = Mt5Harness(venue=term, broker=broker)
        strategy = Scripted(
            {
                0: lambda ctx, bar: ctx.buy("EURUSD", 10_000.0),
                1: lambda ctx, bar: ctx.close("EURUSD"),
            }
        )
        engine, journal = live_engine(venue, strategy)
        held.armed = True
        engine.run([minute_bar(0, 1.1)])
        assert held.executed.wait(30)
        process.kill()  # SIGKILL: no goodbye, the answer is lost with the process
        process.wait(30)
        held.release.set()
        assert len(venue.history_orders()) == 1
        process = _start_bridge(auth, port, terminal, **relay)
        settle_and_pump(engine, venue)
        assert list(dict(journal.order_statuses()).values()) == ["filled"]
        assert engine.portfolio.position("EURUSD").quantity == 10_000.0  # 0.1 lot
        assert len(venue.history_orders()) == 1  # reconciled, never sent again
        # Whether the broker counted a reconnect depends on when it noticed the bridge was gone
        # (gRPC may redial before its next call fails): one order, filled once, is the point.
        engine.run([minute_bar(1, 1.1)])
        settle_and_pump(engine, venue)
        assert engine.portfolio.position("EURUSD").quantity == 0.0
        assert term.positions_get() == ()
        _journal_equals_terminal(journal, venue)
    finally:
        held.release.set()
        if broker is not None:
            broker.close()
        forget_bridge(f"127.0.0.1:{port}")
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        upstream.stop()


# --- params and the example manifest ----------------------------------------------------------


def test_the_example_manifest_names_a_bridge_and_validates() -> None:
    from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry
    from tradefleet_runtime.spec import load_manifest
    from tradefleet_runtime.spec.model import live_mode_problems

    manifest = load_manifest(ROOT / "examples" / "mt5" / "eurusd-mt5-bridge.yaml")
    spec = manifest.spec
    assert live_mode_problems(manifest.metadata.name, spec) == []
    assert spec.broker.credentials_secret is not None
    registry = PluginRegistry.discover()
    broker, errors = registry.check(PluginKind.BROKER, "mt5", spec.broker.params, ["broker"])
    assert errors == [] and isinstance(broker, Mt5BrokerParams)
    assert broker.bridge_address == "mt5-bridge.trading.svc:50061"
    assert broker.bridge_token_file == "mt5-bridge.token" and broker.bridge_tls
    feed, errors = registry.check(PluginKind.DATA_FEED, "mt5", spec.data.params, ["data"])
    assert errors == [] and feed is not None
    assert feed.bridge_address == broker.bridge_address  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"bridge_address": "no-port"}, "bridge_address", "host:port"),
        ({"bridge_address": "h:99999"}, "bridge_address", "host:port"),
        ({"bridge_address": "h:1", "bridge_token_file": "../token"}, "bridge_token_file", "not a"),
        ({"bridge_address": "h:1", "bridge_ca_file": "/etc/ca.crt"}, "bridge_ca_file", "not a"),
        ({"bridge_address": "h:1", "terminal": "tests.venues.mt5:MT5Terminal"}, "", "terminal"),
    ],
)
def test_bridge_params_are_checked_naming_the_field(
    params: dict[str, Any], field: str, words: str
) -> None:
    from tradefleet_runtime.plugins.registry import PluginKind, PluginRegistry

    registry = PluginRegistry.discover()
    _, errors = registry.check(PluginKind.BROKER, "mt5", params, ["broker"])
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"broker.params.{field}".rstrip("."))
    assert words in str(errors[0])


def test_the_example_bridge_deployment_is_valid_and_keeps_one_terminal() -> None:
    import yaml

    from tests.packaging.packaging_tools import KUBERNETES_VALIDATE, run

    path = ROOT / "examples" / "mt5" / "mt5-bridge.yaml"
    deployment, service = yaml.safe_load_all(path.read_text())
    result = run([*KUBERNETES_VALIDATE, "--strict", "-k", "1.30.0", str(path)])
    assert result.returncode == 0 and "ERROR" not in result.stdout, result.stdout + result.stderr
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    (container,) = spec["template"]["spec"]["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/run/tradefleet/bridge-auth"] == "token"  # start.sh's --auth-dir
    assert "env" not in container  # no account in the bridge's pod
    port = service["spec"]["ports"][0]["port"]
    bot = yaml.safe_load((ROOT / "examples" / "mt5" / "eurusd-mt5-bridge.yaml").read_text())
    address = bot["spec"]["broker"]["params"]["bridge_address"]
    assert address == f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port}"
