"""Bad input to the gRPC API, as an attacker would send it: every refusal is INVALID_ARGUMENT
(or RESOURCE_EXHAUSTED for a size limit) naming the field, never INTERNAL or UNKNOWN; and
SubmitSignal refuses exactly what the webhook refuses."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.service.fakes import (
    FakeControlPlane,
    no_leaked_server_threads,  # noqa: F401 - autouse fixture
    running_server,
)
from tests.service.webhook_client import GOOD_SIGNAL
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.service import limits
from tradefleet_runtime.service.grpc_server import SERVICE_NAME, GrpcEndpoint
from tradefleet_runtime.service.webhook import Refusal, parse_signal_body

# The fake's params as a params model's JSON Schema would describe them.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "fast": {"type": "integer"},
        "slow": {"type": "integer"},
        "threshold": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "levels": {"type": "array", "items": {"$ref": "#/$defs/Level"}},
    },
    "$defs": {"Level": {"type": "object", "properties": {"at": {"type": "number"}}}},
}


@pytest.fixture
def control() -> FakeControlPlane:
    return FakeControlPlane()


@pytest.fixture
def endpoint(control: FakeControlPlane) -> Iterator[GrpcEndpoint]:
    with running_server(
        control, known_symbols=lambda: ("EURUSD", "X"), params_schema=lambda: SCHEMA
    ) as endpoint:
        yield endpoint


@pytest.fixture
def channel(endpoint: GrpcEndpoint) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{endpoint.port}") as channel:
        yield channel


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.RuntimeServiceStub:
    return pb_grpc.RuntimeServiceStub(channel)


def refused(call: Any, request: Any, field: str) -> grpc.RpcError:
    """Calls ``call(request)``; asserts INVALID_ARGUMENT naming ``field``."""
    with pytest.raises(grpc.RpcError) as error:
        result = call(request, timeout=5)
        for _ in result if isinstance(result, grpc.Call) and hasattr(result, "__iter__") else ():
            pass
    code = error.value.code()
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, error.value.details())
    details = error.value.details() or ""
    assert details.startswith(f"{field}: ") or details.startswith(f"{field}…: "), details
    return error.value


# --- unknown enum values ------------------------------------------------------------------------


def test_unknown_direction_enum_is_invalid_argument(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    request = pb.SubmitSignalRequest(
        symbol="X", direction=7, entry=1.1, stop_loss=1.0, take_profit=1.2
    )
    refused(stub.SubmitSignal, request, "direction")
    assert control.signals == []


@pytest.mark.parametrize("kinds", [[99], [pb.EVENT_KIND_FILL, -3], [pb.EVENT_KIND_UNSPECIFIED]])
def test_unknown_event_kind_is_invalid_argument(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub, kinds: list[int]
) -> None:
    error = refused(stub.StreamEvents, pb.StreamEventsRequest(kinds=kinds), "kinds")
    assert ("tradefleet-field", "kinds") in tuple(error.trailing_metadata() or ())
    assert control.subscribers == 0


def test_too_many_event_kinds_is_invalid_argument(stub: pb_grpc.RuntimeServiceStub) -> None:
    request = pb.StreamEventsRequest(kinds=[pb.EVENT_KIND_FILL] * (limits.MAX_EVENT_KINDS + 1))
    refused(stub.StreamEvents, request, "kinds")


def test_event_queue_beyond_the_limit_is_invalid_argument(
    stub: pb_grpc.RuntimeServiceStub,
) -> None:
    request = pb.StreamEventsRequest(max_queue=limits.MAX_EVENT_QUEUE + 1)
    refused(stub.StreamEvents, request, "max_queue")


# --- UpdateParams: depth, number length, non-finite numbers, booleans ---------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,  # RecursionError in json.loads before
        '{"fast": ' + "[" * 40 + "]" * 40 + "}",
        '{"fast": ' + "9" * 5000 + "}",  # ValueError (int digits limit) before
        '{"threshold": 0.' + "1" * 100 + "}",
    ],
    ids=["deep-brackets", "nested-40", "5000-digit-int", "100-digit-float"],
)
def test_deeply_nested_or_huge_number_json_params_are_invalid_argument(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub, text: str
) -> None:
    before = dict(control.params)
    refused(stub.UpdateParams, pb.UpdateParamsRequest(params_json=text), "params_json")
    assert control.params == before


def test_deeply_nested_struct_params_are_invalid_argument(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    # lists: each level costs protobuf two message levels (a dict costs three), so this stays
    # within protobuf's own limit of 100 and reaches the server's check
    nested: list[Any] = []
    for _ in range(limits.MAX_JSON_DEPTH + 5):
        nested = [nested]
    struct = struct_pb2.Struct()
    struct.update({"fast": nested})
    refused(stub.UpdateParams, pb.UpdateParamsRequest(params_struct=struct), "params_struct")
    assert control.params["fast"] == 12


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ('{"threshold": 1e999}', "params.threshold"),
        ('{"threshold": -1e400}', "params.threshold"),
        ('{"levels": [{"at": 1}, {"at": 1e999}]}', "params.levels.1.at"),
    ],
)
def test_overflowing_json_params_are_refused_by_name(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub, params: str, field: str
) -> None:
    refused(stub.UpdateParams, pb.UpdateParamsRequest(params_json=params), field)
    assert control.params["threshold"] == 0.5


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_struct_params_are_refused_by_name(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub, value: float
) -> None:
    struct = struct_pb2.Struct()
    struct.update({"threshold": value})
    refused(stub.UpdateParams, pb.UpdateParamsRequest(params_struct=struct), "params.threshold")
    assert control.params["threshold"] == 0.5


@pytest.mark.parametrize("name", ["fast", "threshold"])
def test_boolean_for_a_number_param_is_refused(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub, name: str
) -> None:
    """The fake, like pydantic's lax mode, would take ``true`` as 1."""
    request = pb.UpdateParamsRequest(params_json=json.dumps({name: True}))
    refused(stub.UpdateParams, request, f"params.{name}")
    struct = struct_pb2.Struct()
    struct.update({name: False})
    refused(stub.UpdateParams, pb.UpdateParamsRequest(params_struct=struct), f"params.{name}")
    assert control.params == {"fast": 12, "slow": 26, "threshold": 0.5}


def test_boolean_in_a_nested_number_param_is_refused(stub: pb_grpc.RuntimeServiceStub) -> None:
    request = pb.UpdateParamsRequest(params_json='{"levels": [{"at": true}]}')
    refused(stub.UpdateParams, request, "params.levels.0.at")


def test_non_ascii_field_in_a_refusal_still_names_it(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    """The field goes into a trailer, where gRPC takes printable ASCII only."""
    error = refused(stub.UpdateParams, pb.UpdateParamsRequest(params_json='{"größe": 1}'), "größe")
    assert ("tradefleet-field", "gr\\xf6\\xdfe") in tuple(error.trailing_metadata() or ())


def test_huge_field_name_in_a_refusal_is_clipped(stub: pb_grpc.RuntimeServiceStub) -> None:
    name = "k" * 100_000
    error = refused(
        stub.UpdateParams, pb.UpdateParamsRequest(params_json=json.dumps({name: 1})), "k" * 127
    )
    assert len(error.details() or "") <= 500
    assert ("tradefleet-field", "k" * 128) in tuple(error.trailing_metadata() or ())


# --- SubmitSignal validates exactly as the webhook ---------------------------------------------


def _signal_request(**changes: Any) -> pb.SubmitSignalRequest:
    levels = GOOD_SIGNAL["price_levels"]
    fields: dict[str, Any] = {
        "symbol": GOOD_SIGNAL["symbol"],
        "direction": pb.DIRECTION_BUY,
        "entry": levels["entry"],
        "stop_loss": levels["stop_loss"],
        "take_profit": levels["take_profit"],
        "current_price": levels["current_price"],
        "volume": GOOD_SIGNAL["volume"],
        "timeframe": GOOD_SIGNAL["timeframe"],
        "pattern_type": GOOD_SIGNAL["pattern_type"],
        "source": GOOD_SIGNAL["metadata"]["source"],
        "confidence": GOOD_SIGNAL["metadata"]["confidence"],
    }
    fields.update(changes)
    return pb.SubmitSignalRequest(**fields)


def _webhook_body(**changes: Any) -> bytes:
    """The same signal as ``_signal_request(**changes)``, as the webhook's JSON body."""
    body = json.loads(json.dumps(GOOD_SIGNAL))
    for name, value in changes.items():
        if name in ("entry", "stop_loss", "take_profit", "current_price"):
            body["price_levels"][name] = value
        elif name in ("source", "confidence"):
            body["metadata"][name] = value
        else:
            body[name] = value
    return json.dumps(body).encode()


SIGNAL_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "confidence 2.0": ({"confidence": 2.0}, "confidence"),
    "confidence below 0": ({"confidence": -0.1}, "confidence"),
    "smallest subnormal volume": ({"volume": 5e-324}, "volume"),
    "volume 1e308": ({"volume": 1e308}, "volume"),
    "zero volume": ({"volume": 0.0}, "volume"),
    "infinite entry": ({"entry": math.inf}, "entry"),
    "price 1e300": ({"take_profit": 1e300}, "take_profit"),
    "stop above entry for a BUY": ({"stop_loss": 1.09}, "stop_loss"),
    "target below entry for a BUY": ({"take_profit": 1.08}, "take_profit"),
    "negative current price": ({"current_price": -1.0}, "current_price"),
    "symbol with a space": ({"symbol": "EUR USD"}, "symbol"),
    "symbol too long": ({"symbol": "X" * 33}, "symbol"),
    "timeframe with punctuation": ({"timeframe": "5 min"}, "timeframe"),
    "pattern too long": ({"pattern_type": "p" * 65}, "pattern_type"),
    "source too long": ({"source": "s" * 129}, "source"),
}


@pytest.mark.parametrize("case", list(SIGNAL_CASES))
def test_submit_signal_refuses_what_the_webhook_refuses(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub, case: str
) -> None:
    changes, field = SIGNAL_CASES[case]
    with pytest.raises(Refusal) as webhook:
        parse_signal_body(_webhook_body(**changes))
    assert webhook.value.status == 400
    refused(stub.SubmitSignal, _signal_request(**changes), field)
    assert control.signals == []


def test_submit_signal_accepts_what_the_webhook_accepts(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    edges = {"volume": limits.MIN_VOLUME, "confidence": 1.0, "take_profit": limits.MAX_PRICE}
    webhook = parse_signal_body(_webhook_body(**edges))
    assert stub.SubmitSignal(_signal_request(**edges), timeout=5).accepted
    [signal] = control.signals
    expected = webhook.to_signal(signal_id=signal.signal_id, received_at=signal.received_at)
    assert signal == expected


def test_unknown_symbol_is_refused_like_the_webhook(stub: pb_grpc.RuntimeServiceStub) -> None:
    refused(stub.SubmitSignal, _signal_request(symbol="XAUUSD"), "symbol")


def test_signal_id_is_bounded(stub: pb_grpc.RuntimeServiceStub) -> None:
    long_id = "i" * (limits.MAX_SIGNAL_ID_CHARS + 1)
    refused(stub.SubmitSignal, _signal_request(signal_id=long_id), "signal_id")
    refused(stub.SubmitSignal, _signal_request(signal_id="a\nb"), "signal_id")


# --- text, page and message sizes ---------------------------------------------------------------


def test_reason_beyond_the_limit_is_refused(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    reason = "r" * (limits.MAX_REASON_CHARS + 1)
    refused(stub.Pause, pb.PauseRequest(reason=reason), "reason")
    refused(stub.EmergencyStop, pb.EmergencyStopRequest(reason=reason), "reason")
    refused(
        stub.ResetRiskLock, pb.ResetRiskLockRequest(plugin="daily-loss", reason=reason), "reason"
    )
    refused(stub.ResetRiskLock, pb.ResetRiskLockRequest(plugin="p" * 129, reason="x"), "plugin")
    assert control.calls == []


def test_page_token_beyond_the_limit_is_refused(stub: pb_grpc.RuntimeServiceStub) -> None:
    token = "t" * (limits.MAX_PAGE_TOKEN_CHARS + 1)
    refused(stub.ListTrades, pb.ListTradesRequest(page_token=token), "page_token")
    refused(stub.ListTrades, pb.ListTradesRequest(page_size=-1), "page_size")
    refused(stub.ListTrades, pb.ListTradesRequest(page_size=limits.MAX_PAGE_SIZE + 1), "page_size")


def test_message_beyond_the_limit_is_resource_exhausted(
    control: FakeControlPlane, stub: pb_grpc.RuntimeServiceStub
) -> None:
    request = pb.PauseRequest(reason="r" * limits.GRPC_MAX_MESSAGE_BYTES)
    with pytest.raises(grpc.RpcError) as error:
        stub.Pause(request, timeout=5)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert control.calls == []


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("SubmitSignal", b"\x0a\x02\xff\xfe"),  # symbol: invalid UTF-8
        ("Pause", b"\x0a\x03\xc3\x28\x41"),  # reason: invalid UTF-8
        ("UpdateParams", b"\x12\x05\x0a\x03abc"),  # a Struct field that is not a map entry
        ("StreamEvents", b"\x0a\xff"),  # kinds: a length running past the end
        ("GetStatus", b"\x07"),  # a field with an invalid wire type
    ],
)
def test_undecodable_request_is_invalid_argument(
    control: FakeControlPlane, channel: grpc.Channel, method: str, raw: bytes
) -> None:
    """grpcio answers INTERNAL when a request cannot be decoded; ours are INVALID_ARGUMENT."""
    path = f"/{SERVICE_NAME}/{method}"
    if method == "StreamEvents":
        call: Any = channel.unary_stream(path)
    else:
        call = channel.unary_unary(path)
    error = refused(call, raw, "request")
    assert ("tradefleet-field", "request") in tuple(error.trailing_metadata() or ())
    assert control.calls == [] and control.signals == []


def test_event_streams_beyond_the_limit_are_resource_exhausted(
    control: FakeControlPlane,
) -> None:
    """However many worker threads, at most MAX_EVENT_STREAMS subscriptions run at once."""
    with (
        running_server(control, max_workers=4 * limits.MAX_EVENT_STREAMS) as endpoint,
        grpc.insecure_channel(f"127.0.0.1:{endpoint.port}") as channel,
    ):
        stub = pb_grpc.RuntimeServiceStub(channel)
        streams = [stub.StreamEvents(pb.StreamEventsRequest(), timeout=10)]
        for _ in range(limits.MAX_EVENT_STREAMS - 1):
            streams.append(stub.StreamEvents(pb.StreamEventsRequest(), timeout=10))
        for stream in streams:
            stream.initial_metadata()  # each subscription exists
        assert control.subscribers == limits.MAX_EVENT_STREAMS
        extra = stub.StreamEvents(pb.StreamEventsRequest(), timeout=10)
        extra.initial_metadata()
        assert extra.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for stream in streams:
            stream.cancel()
