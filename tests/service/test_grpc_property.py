"""Arbitrary requests to EVERY RuntimeService RPC, through a real channel to a real server over
the real :class:`BotController` (a paper ``external-signal`` bot with a journal on disk).

Whatever a caller sends: never ``INTERNAL`` or ``UNKNOWN``; and a refused call (any status but
OK) changes nothing in the journal (row counts of orders, order updates, fills, events and risk
decisions, read through a connection of the test's own).

The bot handles its first bar and then waits an hour of wall clock for the next, serving
commands all the while, so its phase is Running and the journal moves only when a call does.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.serve_process import signal_bot_manifest
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.service.grpc_server import build_grpc_server
from tradefleet_runtime.service.serve import strategy_params_schema
from tradefleet_runtime.service.webhook_routes import signal_symbols
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

SERVICE = pb.DESCRIPTOR.services_by_name["RuntimeService"]
TABLES = ("orders", "order_updates", "fills", "events", "risk_decisions")
FORBIDDEN = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
# A few seconds per RPC on a shared two-core machine.
BOUNDED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=False,
)


@dataclass
class Bot:
    controller: BotController
    stub: pb_grpc.RuntimeServiceStub
    journal_path: Path

    def counts(self) -> dict[str, int]:
        with sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True) as db:
            return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    folder = tmp_path_factory.mktemp("property-bot")
    manifest_path = folder / "bot.yaml"
    manifest_path.write_text(signal_bot_manifest("property-bot"))
    registry = PluginRegistry.discover()
    assembled = assemble(load_manifest(manifest_path), registry, folder, str(manifest_path))
    journal_path = folder / "journal.sqlite"
    journal = Journal(journal_path)
    controller = BotController(assembled, journal, registry, speed=1.0)
    endpoint = build_grpc_server(
        controller,
        address="127.0.0.1:0",
        auth=None,
        poll_interval=0.05,
        known_symbols=signal_symbols(controller),
        params_schema=strategy_params_schema(controller),
    )
    endpoint.server.start()
    controller.start()
    deadline = time.monotonic() + 30
    while not (controller.get_status().phase is Phase.RUNNING and controller.get_status().bars):
        assert time.monotonic() < deadline, "the bot did not start"
        time.sleep(0.02)
    channel = grpc.insecure_channel(f"127.0.0.1:{endpoint.port}")
    try:
        yield Bot(controller, pb_grpc.RuntimeServiceStub(channel), journal_path)
    finally:
        channel.close()
        endpoint.stop(grace=0.5)
        controller.stop()
        controller.wait(10)
        journal.close()


def call(bot: Bot, method: str, request: Any) -> grpc.StatusCode:
    """One call; its status code (streams: after the subscription, then cancelled)."""
    rpc = getattr(bot.stub, method)
    if method == "StreamEvents":
        stream = rpc(request, timeout=5)
        stream.initial_metadata()  # the subscription exists, or the call already failed
        stream.cancel()
        code: grpc.StatusCode = stream.code()
        return code
    try:
        rpc(request, timeout=10)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def check(bot: Bot, method: str, request: Any) -> grpc.StatusCode:
    before = bot.counts()
    code = call(bot, method, request)
    assert code not in FORBIDDEN, f"{method}({request!r}) -> {code}"
    if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
        assert bot.counts() == before, f"refused {method}({request!r}) changed the journal"
    return code


# --- arbitrary messages from the descriptors ---------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
_texts = (
    st.text(max_size=24)
    | st.sampled_from(["", " ", "EURUSD", "fixed-fractional", "0", "-1", "1_0", "9" * 70])
    | st.integers(1, 3000).map(lambda n: "x" * n)
)
_doubles = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 5e-324, 1e308, 2.0, 1.05, math.inf, -math.inf, math.nan]
)
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}


def _field_values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _texts
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _doubles
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [value.number for value in field.enum_type.values]
        return st.sampled_from(known) | st.integers(-(2**31), 2**31 - 1)
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.integers(low, high) | st.sampled_from([0, 1, 1000, 1001])
    if kind == FieldDescriptor.TYPE_MESSAGE and field.message_type.full_name.endswith("Struct"):
        return st.dictionaries(st.text(max_size=8), _json_values, max_size=4)
    raise AssertionError(f"no strategy for {field.full_name}")  # pragma: no cover


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def messages(descriptor: Descriptor) -> st.SearchStrategy[Any]:
    """Any message of this type: each field present or not, with any value of its type."""
    message_class = getattr(pb, descriptor.name)
    optional = {
        field.name: st.lists(_field_values(field), max_size=20)
        if _is_repeated(field)
        else _field_values(field)
        for field in descriptor.fields
    }

    def build(values: dict[str, Any]) -> Any:
        message = message_class()
        for name, value in values.items():
            target = getattr(message, name)
            if isinstance(value, list):
                target.extend(value)
            elif isinstance(value, dict):
                target.update(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries({}, optional=optional).map(build)


def _nearly_valid_signal() -> st.SearchStrategy[pb.SubmitSignalRequest]:
    """Signals that pass or nearly pass validation, so they reach the bot's strategy and risk
    chain (the last EURUSD price is about 1.05)."""

    @st.composite
    def build(draw: st.DrawFn) -> pb.SubmitSignalRequest:
        entry = draw(st.floats(1.0, 1.1) | st.sampled_from([1e-12, 1e12, 5e-324]))
        sign = draw(st.sampled_from([1, -1]))
        risk = draw(st.floats(1e-6, 0.5) | st.sampled_from([0.0, -0.01, 1e300]))
        reward = draw(st.floats(1e-6, 0.5))
        direction = pb.DIRECTION_BUY if sign == 1 else pb.DIRECTION_SELL
        request = pb.SubmitSignalRequest(
            symbol=draw(st.sampled_from(["EURUSD", "EURUSD", "GBPUSD", "eurusd"])),
            direction=draw(st.sampled_from([direction] * 4 + [0, 3, -1, 2**31 - 1])),
            entry=entry,
            stop_loss=entry - sign * risk,
            take_profit=entry + sign * reward,
            signal_id=draw(st.sampled_from(["", "sig-1", "x" * 300])),
        )
        if draw(st.booleans()):
            request.volume = draw(st.sampled_from([1e-9, 0.01, 1.0, 1e9, 5e-324, 1e308]))
        if draw(st.booleans()):
            request.confidence = draw(st.floats(-0.5, 2.0))
        if draw(st.booleans()):
            request.current_price = draw(st.floats(0.5, 1.5))
        return request

    return build()


_param_names = st.sampled_from(
    [
        "max_signal_age_s",
        "max_entry_deviation_pct",
        "min_confidence",
        "entry_order",
        "allow_pyramiding",
        "reverse_on_opposite",
        "bogus",
    ]
)
_params_json = (
    st.dictionaries(_param_names, _json_values, max_size=4).map(json.dumps)
    | _json_values.map(json.dumps)
    | st.text(max_size=40)
    | st.sampled_from(['{"min_confidence": 1e999}', '{"max_signal_age_s": NaN}', "[" * 5000])
)


def requests(method: str) -> st.SearchStrategy[Any]:
    strategy = messages(SERVICE.methods_by_name[method].input_type)
    if method == "SubmitSignal":
        return strategy | _nearly_valid_signal()
    if method == "UpdateParams":
        return strategy | _params_json.map(lambda text: pb.UpdateParamsRequest(params_json=text))
    return strategy


def _property_test(method: str) -> Callable[[Bot], None]:
    @BOUNDED
    @given(request=requests(method))
    def test(bot: Bot, request: Any) -> None:
        check(bot, method, request)

    return test


# One test per RPC (named for it), so a failure names the RPC and each stays a few seconds.
test_get_status_never_fails_internally = _property_test("GetStatus")
test_list_positions_never_fails_internally = _property_test("ListPositions")
test_list_orders_never_fails_internally = _property_test("ListOrders")
test_list_trades_never_fails_internally = _property_test("ListTrades")
test_pause_never_fails_internally = _property_test("Pause")
test_resume_never_fails_internally = _property_test("Resume")
test_emergency_stop_never_fails_internally = _property_test("EmergencyStop")
test_reset_risk_lock_never_fails_internally = _property_test("ResetRiskLock")
test_submit_signal_never_fails_internally = _property_test("SubmitSignal")
test_update_params_never_fails_internally = _property_test("UpdateParams")
test_stream_events_never_fails_internally = _property_test("StreamEvents")


def test_every_rpc_has_a_property_test() -> None:
    covered = {
        name.removeprefix("test_").removesuffix("_never_fails_internally").replace("_", "")
        for name in globals()
        if name.endswith("_never_fails_internally")
    }
    assert covered == {method.name.lower() for method in SERVICE.methods}


# --- the defects, against the real controller --------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ('{"max_signal_age_s": 1e999}', "params.max_signal_age_s"),
        ('{"max_entry_deviation_pct": true}', "params.max_entry_deviation_pct"),
        ('{"min_confidence": false}', "params.min_confidence"),
        ('{"max_signal_age_s": Infinity}', "params_json"),
        ('{"max_signal_age_s": NaN}', "params_json"),
    ],
)
def test_update_params_refuses_infinity_nan_and_booleans_for_numbers(
    bot: Bot, params: str, field: str
) -> None:
    """The params model (lax pydantic) would take ``true`` as 1.0 and 1e999 as inf."""
    before = bot.counts()
    with pytest.raises(grpc.RpcError) as error:
        bot.stub.UpdateParams(pb.UpdateParamsRequest(params_json=params), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.value.details() or "").startswith(f"{field}: ")
    assert bot.counts() == before


def test_a_boolean_param_still_takes_a_boolean(bot: Bot) -> None:
    status = bot.stub.UpdateParams(
        pb.UpdateParamsRequest(params_json='{"allow_pyramiding": true}'), timeout=10
    )
    assert status.bot == "property-bot"
