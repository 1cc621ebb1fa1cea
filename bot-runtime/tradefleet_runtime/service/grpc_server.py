"""The bot's gRPC server: ``tradefleet.v1.RuntimeService`` over a :class:`ControlPlane`.

:func:`build_grpc_server` makes the server (not started) with the runtime service, the standard
``grpc.health.v1`` health service and server reflection. The servicer only translates between
protobuf messages and the dataclasses of :mod:`tradefleet_runtime.service.api`; the control plane
does the work on the engine's thread.

Errors: :class:`~tradefleet_runtime.service.api.ControlError` becomes ``INVALID_ARGUMENT`` with
the message ``"<field>: <message>"`` (and the field in the ``tradefleet-field`` trailing
metadata), or, for a good request the bot cannot take now, ``FAILED_PRECONDITION`` (``NotNow``:
stopped, still starting) or ``UNAVAILABLE`` (``NoAnswer``: the engine did not answer in time);
any other exception is logged and becomes ``INTERNAL``. No input from a caller may
cause ``INTERNAL`` or ``UNKNOWN``: unknown enum numbers, undecodable requests (field
``request``), JSON beyond :mod:`~tradefleet_runtime.service.limits`, non-finite numbers and
booleans for numbers in params, and texts beyond their limits are all ``INVALID_ARGUMENT``; a
request over ``max_message_bytes`` is ``RESOURCE_EXHAUSTED`` (from gRPC itself).
``SubmitSignal`` checks its fields with :func:`~tradefleet_runtime.service.api.validate_signal`,
the webhook's own check.

``StreamEvents`` holds one worker thread per stream, so at most ``max_streams`` streams run at
once (``RESOURCE_EXHAUSTED`` beyond); it polls its bounded :class:`EventSubscription` with a
timeout, so a slow client never blocks the engine, and it closes the subscription as soon as the
client cancels (through ``context.add_callback``) or the server stops.

The module also holds the proto → dataclass conversions the client uses.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent import futures
from typing import Any, NamedTuple, NoReturn, ParamSpec, TypeVar

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped, unused-ignore]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped, unused-ignore]

from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.service import limits
from tradefleet_runtime.service.api import (
    CloseRetrying,
    CloseStuck,
    ControlError,
    ControlPlane,
    Direction,
    EventKind,
    OrderView,
    Phase,
    PluginInfo,
    PositionView,
    QualityFigure,
    RiskPluginState,
    RuntimeEvent,
    Signal,
    SignalInvalid,
    SignalResult,
    StatusSnapshot,
    TradePage,
    TradeView,
    validate_signal,
)
from tradefleet_runtime.service.auth import TlsFiles, TokenAuth

log = logging.getLogger(__name__)

_SERVICE = pb.DESCRIPTOR.services_by_name["RuntimeService"]
SERVICE_NAME: str = _SERVICE.full_name
# kept here for callers that imported them before limits.py existed
DEFAULT_PAGE_SIZE = limits.DEFAULT_PAGE_SIZE
MAX_PAGE_SIZE = limits.MAX_PAGE_SIZE
DEFAULT_EVENT_QUEUE = limits.DEFAULT_EVENT_QUEUE
MAX_EVENT_QUEUE = limits.MAX_EVENT_QUEUE
FIELD_METADATA = "tradefleet-field"
_MAX_ERROR_CHARS = 500

# Enum numbers → names, built from the generated enums. A number outside these (proto3 keeps
# unknown enum values as plain ints) is refused; ``pb.Direction.Name`` would raise ValueError.
_DIRECTIONS: Mapping[int, Direction] = {
    pb.DIRECTION_BUY: Direction.BUY,
    pb.DIRECTION_SELL: Direction.SELL,
}
_EVENT_KINDS: Mapping[int, EventKind] = {
    number: EventKind[name.removeprefix("EVENT_KIND_")]
    for name, number in pb.EventKind.items()
    if name.removeprefix("EVENT_KIND_") in EventKind.__members__
}

_P = ParamSpec("_P")
_R = TypeVar("_R")


# --- dataclass → proto ------------------------------------------------------------------------


def status_to_proto(status: StatusSnapshot) -> pb.StatusSnapshot:
    return pb.StatusSnapshot(
        bot=status.bot,
        mode=status.mode,
        phase="PHASE_" + Phase(status.phase).name,
        equity=status.equity,
        balance=status.balance,
        currency=status.currency,
        pnl_today=status.pnl_today,
        pnl_total=status.pnl_total,
        drawdown_pct=status.drawdown_pct,
        open_positions=status.open_positions,
        open_orders=status.open_orders,
        halted=status.halted,
        halt_reason=status.halt_reason,
        paused=status.paused,
        pause_reason=status.pause_reason,
        last_bar_ts=status.last_bar_ts,
        config_hash=status.config_hash,
        plugins=[
            pb.PluginInfo(kind=p.kind, name=p.name, version=p.version) for p in status.plugins
        ],
        risk=[
            pb.RiskPluginState(
                name=r.name, version=r.version, locked=r.locked, reason=r.reason, tier=r.tier
            )
            for r in status.risk
        ],
        quality=[
            pb.QualityFigure(
                name=q.name, samples=q.samples, mean=q.mean, stddev=q.stddev, cp=q.cp, cpk=q.cpk
            )
            for q in status.quality
        ],
        broker_connected=status.broker_connected,
        reconciled=status.reconciled,
        bars=status.bars,
        starting_reason=status.starting_reason,
        last_known=status.last_known,
        closes_stuck=[
            pb.CloseStuck(symbol=c.symbol, code=c.code, position=c.position)
            for c in status.closes_stuck
        ],
        closes_retrying=[
            pb.CloseRetrying(
                symbol=c.symbol,
                code=c.code,
                position=c.position,
                refusals=c.refusals,
                since_ts=c.since_ts,
            )
            for c in status.closes_retrying
        ],
    )


def position_to_proto(position: PositionView) -> pb.Position:
    return pb.Position(
        symbol=position.symbol,
        quantity=position.quantity,
        average_price=position.average_price,
        mark=position.mark,
        unrealized_pnl=position.unrealized_pnl,
        realized_pnl=position.realized_pnl,
        opened_ts=position.opened_ts,
    )


def order_to_proto(order: OrderView) -> pb.Order:
    return pb.Order(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        quantity=order.quantity,
        filled=order.filled,
        price=order.price,
        status=order.status,
        reduce_only=order.reduce_only,
        parent_id=order.parent_id,
        created_ts=order.created_ts,
        tag=order.tag,
        stop_loss=order.stop_loss,
        take_profit=order.take_profit,
        reference_price=order.reference_price,
        fees=order.fees,
        average_fill_price=order.average_fill_price,
        venue_order_id=order.venue_order_id,
        status_reason=order.status_reason,
    )


def trade_to_proto(trade: TradeView) -> pb.Trade:
    return pb.Trade(
        seq=trade.seq,
        symbol=trade.symbol,
        direction=trade.direction,
        quantity=trade.quantity,
        entry_ts=trade.entry_ts,
        exit_ts=trade.exit_ts,
        entry_price=trade.entry_price,
        exit_price=trade.exit_price,
        net_pnl=trade.net_pnl,
        fees=trade.fees,
        entry_reason=trade.entry_reason,
        exit_reason=trade.exit_reason,
        entry_order_id=trade.entry_order_id,
        exit_order_id=trade.exit_order_id,
        funding=trade.funding,
    )


def _value_to_proto(value: str | float | int | bool) -> pb.EventValue:
    if isinstance(value, bool):
        return pb.EventValue(bool_value=value)
    if isinstance(value, int):
        return pb.EventValue(int_value=value)
    if isinstance(value, float):
        return pb.EventValue(double_value=value)
    return pb.EventValue(string_value=str(value))


def event_to_proto(event: RuntimeEvent) -> pb.RuntimeEvent:
    return pb.RuntimeEvent(
        seq=event.seq,
        ts=event.ts,
        kind="EVENT_KIND_" + EventKind(event.kind).name,
        message=event.message,
        data={key: _value_to_proto(value) for key, value in event.data.items()},
    )


# --- proto → dataclass ------------------------------------------------------------------------


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def _enum_name(enum: Any, number: int, prefix: str) -> str:
    """The name of a proto enum's ``number`` without its prefix; "" for a number this
    release does not know (a newer runtime's or client's value: proto3 enums are open, so
    the number arrives as it was sent, and ``Name`` raises on it)."""
    try:
        name: str = enum.Name(number)
    except ValueError:
        return ""
    return name.removeprefix(prefix)


def status_from_proto(message: pb.StatusSnapshot) -> StatusSnapshot:
    phase_name = _enum_name(pb.Phase, message.phase, "PHASE_")
    return StatusSnapshot(
        bot=message.bot,
        mode=message.mode,
        phase=Phase[phase_name] if phase_name in Phase.__members__ else Phase.FAILED,
        equity=message.equity,
        balance=message.balance,
        currency=message.currency,
        pnl_today=message.pnl_today,
        pnl_total=message.pnl_total,
        drawdown_pct=message.drawdown_pct,
        open_positions=message.open_positions,
        open_orders=message.open_orders,
        halted=message.halted,
        halt_reason=message.halt_reason,
        paused=message.paused,
        pause_reason=message.pause_reason,
        last_bar_ts=message.last_bar_ts,
        config_hash=message.config_hash,
        plugins=tuple(PluginInfo(p.kind, p.name, p.version) for p in message.plugins),
        risk=tuple(
            RiskPluginState(r.name, r.version, r.locked, r.reason, r.tier) for r in message.risk
        ),
        quality=tuple(
            QualityFigure(
                name=q.name,
                samples=q.samples,
                mean=q.mean,
                stddev=q.stddev,
                cp=_optional(q, "cp"),
                cpk=_optional(q, "cpk"),
            )
            for q in message.quality
        ),
        broker_connected=message.broker_connected,
        reconciled=message.reconciled,
        bars=message.bars,
        starting_reason=message.starting_reason,
        last_known=message.last_known,
        closes_stuck=tuple(CloseStuck(c.symbol, c.code, c.position) for c in message.closes_stuck),
        closes_retrying=tuple(
            CloseRetrying(c.symbol, c.code, c.position, c.refusals, c.since_ts)
            for c in message.closes_retrying
        ),
    )


def position_from_proto(message: pb.Position) -> PositionView:
    return PositionView(
        symbol=message.symbol,
        quantity=message.quantity,
        average_price=message.average_price,
        mark=message.mark,
        unrealized_pnl=message.unrealized_pnl,
        realized_pnl=message.realized_pnl,
        opened_ts=message.opened_ts,
    )


def order_from_proto(message: pb.Order) -> OrderView:
    return OrderView(
        client_order_id=message.client_order_id,
        symbol=message.symbol,
        side=message.side,
        order_type=message.order_type,
        quantity=message.quantity,
        filled=message.filled,
        price=_optional(message, "price"),
        status=message.status,
        reduce_only=message.reduce_only,
        parent_id=_optional(message, "parent_id"),
        created_ts=message.created_ts,
        tag=message.tag,
        stop_loss=_optional(message, "stop_loss"),
        take_profit=_optional(message, "take_profit"),
        reference_price=_optional(message, "reference_price"),
        fees=message.fees,
        average_fill_price=_optional(message, "average_fill_price"),
        venue_order_id=_optional(message, "venue_order_id"),
        status_reason=message.status_reason,
    )


def trade_from_proto(message: pb.Trade) -> TradeView:
    return TradeView(
        seq=message.seq,
        symbol=message.symbol,
        direction=message.direction,
        quantity=message.quantity,
        entry_ts=message.entry_ts,
        exit_ts=message.exit_ts,
        entry_price=message.entry_price,
        exit_price=message.exit_price,
        net_pnl=message.net_pnl,
        fees=message.fees,
        entry_reason=message.entry_reason,
        exit_reason=message.exit_reason,
        entry_order_id=_optional(message, "entry_order_id"),
        exit_order_id=_optional(message, "exit_order_id"),
        funding=message.funding,
    )


def trade_page_from_proto(message: pb.ListTradesResponse) -> TradePage:
    return TradePage(
        trades=tuple(trade_from_proto(t) for t in message.trades),
        next_page_token=message.next_page_token,
    )


def _value_from_proto(value: pb.EventValue) -> str | float | int | bool:
    which = value.WhichOneof("value")
    if which is None:
        return ""
    result: str | float | int | bool = getattr(value, which)
    return result


def event_from_proto(message: pb.RuntimeEvent) -> RuntimeEvent:
    kind_name = _enum_name(pb.EventKind, message.kind, "EVENT_KIND_")
    data = {key: _value_from_proto(value) for key, value in message.data.items()}
    if kind_name in EventKind.__members__:
        kind = EventKind[kind_name]
    else:
        # A kind a newer runtime sends: kept, with its message, as a state event that says
        # its number, rather than ending the stream with a ValueError.
        kind = EventKind.STATE
        data["unknown_kind"] = message.kind
    return RuntimeEvent(
        seq=message.seq, ts=message.ts, kind=kind, message=message.message, data=data
    )


def signal_result_from_proto(message: pb.SignalResult) -> SignalResult:
    return SignalResult(
        accepted=message.accepted, reason=message.reason, client_order_id=message.client_order_id
    )


# What the webhook calls a field, as the SubmitSignalRequest field it comes from.
_SIGNAL_FIELDS: Mapping[tuple[str, ...], str] = {
    ("price_levels", "entry"): "entry",
    ("price_levels", "stop_loss"): "stop_loss",
    ("price_levels", "take_profit"): "take_profit",
    ("price_levels", "current_price"): "current_price",
    ("metadata", "source"): "source",
    ("metadata", "confidence"): "confidence",
}


def _signal_fields(message: pb.SubmitSignalRequest, direction: Direction) -> dict[str, object]:
    """The request in the webhook's JSON shape, for :func:`validate_signal`."""
    levels: dict[str, object] = {
        "entry": message.entry,
        "stop_loss": message.stop_loss,
        "take_profit": message.take_profit,
    }
    if message.HasField("current_price"):
        levels["current_price"] = message.current_price
    metadata: dict[str, object] = {"source": message.source}
    if message.HasField("confidence"):
        metadata["confidence"] = message.confidence
    fields: dict[str, object] = {
        "symbol": message.symbol,
        "direction": direction.value,
        "price_levels": levels,
        "timeframe": message.timeframe,
        "pattern_type": message.pattern_type,
        "metadata": metadata,
    }
    if message.HasField("volume"):
        fields["volume"] = message.volume
    return fields


def _check_signal_id(signal_id: str) -> None:
    if len(signal_id) > limits.MAX_SIGNAL_ID_CHARS or not signal_id.isprintable():
        raise ControlError(
            f"at most {limits.MAX_SIGNAL_ID_CHARS} printable characters", field="signal_id"
        )


def signal_from_proto(message: pb.SubmitSignalRequest, *, received_at: float) -> Signal:
    """The request as a :class:`Signal`, checked by :func:`validate_signal` exactly as the
    webhook checks its body; ``ControlError`` naming the request's field otherwise."""
    direction = _DIRECTIONS.get(message.direction)
    if direction is None:
        raise ControlError("give DIRECTION_BUY or DIRECTION_SELL", field="direction")
    _check_signal_id(message.signal_id)
    try:
        body = validate_signal(_signal_fields(message, direction))
    except SignalInvalid as invalid:
        problem = invalid.problems[0]
        field = _SIGNAL_FIELDS.get(problem.location[:2], problem.path)
        raise ControlError(problem.message, field=field) from None
    return body.to_signal(signal_id=message.signal_id or uuid.uuid4().hex, received_at=received_at)


# --- UpdateParams ----------------------------------------------------------------------------


def _from_struct_value(value: struct_pb2.Value, depth: int) -> object:
    """A Struct value as Python. Whole numbers become ``int`` (Struct has only doubles); a
    non-finite number stays a float for :func:`check_param_values` to refuse by name."""
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _from_struct(value.struct_value, depth + 1)
    if kind == "list_value":
        if depth + 1 > limits.MAX_JSON_DEPTH:
            raise ControlError(
                f"nested deeper than {limits.MAX_JSON_DEPTH} levels", field="params_struct"
            )
        return [_from_struct_value(item, depth + 1) for item in value.list_value.values]
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or no kind set


def _from_struct(struct: struct_pb2.Struct, depth: int = 1) -> dict[str, object]:
    # Our own conversion: json_format.MessageToDict raises ValueError on NaN/Infinity.
    if depth > limits.MAX_JSON_DEPTH:
        raise ControlError(
            f"nested deeper than {limits.MAX_JSON_DEPTH} levels", field="params_struct"
        )
    return {key: _from_struct_value(item, depth) for key, item in struct.fields.items()}


def params_from_proto(message: pb.UpdateParamsRequest) -> dict[str, object]:
    """The params of an ``UpdateParams`` request; ``ControlError`` when absent, not an object,
    or beyond :mod:`~tradefleet_runtime.service.limits` (depth, number length).

    From a Struct, whole numbers become ``int`` (Struct has only doubles); pydantic accepts an
    int for a float field, so nothing is lost.
    """
    which = message.WhichOneof("params")
    if which == "params_json":
        try:
            params = limits.load_json(message.params_json)
        except limits.JsonRefused as error:
            raise ControlError(str(error), field="params_json") from None
        if not isinstance(params, dict):
            raise ControlError("must be a JSON object", field="params_json")
        return params
    if which == "params_struct":
        return _from_struct(message.params_struct)
    raise ControlError("give params_json or params_struct", field="params")


def _resolve(node: Any, defs: Mapping[str, Any]) -> Any:
    """A JSON Schema node with a local ``$ref`` followed (once per step, so cycles end)."""
    for _ in range(limits.MAX_JSON_DEPTH):
        if not isinstance(node, Mapping) or "$ref" not in node:
            return node
        node = defs.get(str(node["$ref"]).rsplit("/", 1)[-1])
    return None


def _alternatives(node: Any, defs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    node = _resolve(node, defs)
    if not isinstance(node, Mapping):
        return []
    found = [node]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(key, ()):
            found.extend(_alternatives(sub, defs))
    return found


def _numbers_only(node: Any, defs: Mapping[str, Any]) -> bool:
    """Whether the schema takes numbers (maybe null) but never a boolean."""
    types: set[str] = set()
    for alternative in _alternatives(node, defs):
        kind = alternative.get("type")
        types.update([kind] if isinstance(kind, str) else kind or ())
    return bool(types & {"number", "integer"}) and types <= {"number", "integer", "null"}


def _member(node: Any, key: str | int, defs: Mapping[str, Any]) -> Any:
    """The schema of ``key`` (a property name or a list index) inside ``node``, if known."""
    for alternative in _alternatives(node, defs):
        if isinstance(key, int) and isinstance(alternative.get("items"), Mapping):
            return alternative["items"]
        if isinstance(key, str):
            properties = alternative.get("properties")
            if isinstance(properties, Mapping) and key in properties:
                return properties[key]
            if isinstance(alternative.get("additionalProperties"), Mapping):
                return alternative["additionalProperties"]
    return None


def check_param_values(
    value: object, schema: Mapping[str, Any] | None, path: str = "params"
) -> None:
    """Refuse, naming the field, what must not reach a plugin's params model whatever its
    strictness: non-finite numbers anywhere, and booleans where ``schema`` (the params model's
    JSON Schema; ``None``: unknown) wants a number (pydantic's lax mode reads ``true`` as 1)."""
    defs = schema.get("$defs", {}) if schema is not None else {}
    pending: list[tuple[object, Any, str]] = [(value, schema, path)]
    while pending:  # iterative: the depth is bounded already, but no recursion is cheaper
        item, node, where = pending.pop()
        if isinstance(item, bool):
            if node is not None and _numbers_only(node, defs):
                raise ControlError("must be a number, not a boolean", field=where)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ControlError("must be a finite number", field=where)
        elif isinstance(item, dict):
            for key, child in item.items():
                pending.append((child, _member(node, str(key), defs), f"{where}.{key}"))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                pending.append((child, _member(node, index, defs), f"{where}.{index}"))


# --- the servicer -----------------------------------------------------------------------------


class _Undecodable:
    """Stands in for a request that could not be decoded (invalid UTF-8 in a string, nesting
    beyond protobuf's limit, garbage): grpcio answers INTERNAL when a deserializer raises, so
    ours never does, and the servicer refuses this with INVALID_ARGUMENT."""

    def __init__(self, message_name: str) -> None:
        self.message_name = message_name


def _lenient_deserializer(message_class: Any) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except Exception:  # DecodeError, RecursionError, ...: whatever the bytes were
            return _Undecodable(message_class.DESCRIPTOR.full_name)

    return deserialize


def _decoded(request: Any) -> None:
    if isinstance(request, _Undecodable):
        raise ControlError(f"not a valid {request.message_name}", field="request")


def _translate_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """``ControlError`` → its ``grpc_code``; any other exception → ``INTERNAL`` (logged).

    The wrapped methods never call ``context.abort`` themselves (it raises a bare Exception);
    they raise ``ControlError``. An undecodable request is refused before the method runs.
    """

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        context = args[2]
        assert isinstance(context, grpc.ServicerContext)
        try:
            _decoded(args[1])
            return method(*args, **kwargs)
        except ControlError as error:
            _abort_control_error(context, error)
        except Exception:
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the bot's log")

    return wrapper


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _metadata_safe(text: str) -> str:
    """Printable ASCII only, at most 128 characters: gRPC fails the call (INTERNAL) for other
    characters in a text metadata value, and the field may echo a caller's key (``params.ü``)."""
    escaped = text[:128].encode("ascii", "backslashreplace").decode("ascii")
    return "".join(ch if " " <= ch <= "~" else "?" for ch in escaped)[:128]


def _abort_control_error(context: grpc.ServicerContext, error: ControlError) -> NoReturn:
    # Both are clipped: they may echo the caller's input, and an oversized status message or
    # trailer fails the call with INTERNAL on the client's side.
    field = _clip(error.field, 128)
    message = f"{field}: {error}" if field else str(error)
    if field:
        context.set_trailing_metadata(((FIELD_METADATA, _metadata_safe(error.field)),))
    context.abort(grpc.StatusCode[error.grpc_code], _clip(message, _MAX_ERROR_CHARS))


def _page(size: int, token: str, default: int) -> tuple[int, str]:
    """A page request's size (0: ``default``) and token, checked; ``ControlError`` naming
    ``page_size`` or ``page_token`` otherwise."""
    size = size or default
    if not 1 <= size <= limits.MAX_PAGE_SIZE:
        raise ControlError(f"must be 0 (default) or 1..{limits.MAX_PAGE_SIZE}", field="page_size")
    return size, _bounded(token, "page_token", limits.MAX_PAGE_TOKEN_CHARS)


def _bounded(text: str, field: str, limit: int) -> str:
    if len(text) > limit:
        raise ControlError(f"at most {limit} characters", field=field)
    return text


class RuntimeServicer(pb_grpc.RuntimeServiceServicer):
    """Translates ``RuntimeService`` calls into :class:`ControlPlane` calls.

    ``auth`` (optional) is used only to name the caller's token scope in the ``who`` passed to
    the control plane: ``"<actor> (grpc, <scope> token, <peer>)"``. ``known_symbols`` (optional)
    refuses a signal for a symbol the bot does not trade, as the webhook does;
    ``params_schema`` (optional) gives the strategy params' JSON Schema, so a boolean sent for a
    number is refused before it reaches the params model.
    """

    def __init__(
        self,
        control: ControlPlane,
        *,
        auth: TokenAuth | None = None,
        max_streams: int = limits.MAX_EVENT_STREAMS,
        poll_interval: float = 0.25,
        wall_clock: Callable[[], float] = time.time,
        known_symbols: Callable[[], Collection[str]] | None = None,
        params_schema: Callable[[], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self._control = control
        self._auth = auth
        self._streams = threading.BoundedSemaphore(max(1, max_streams))
        self._max_streams = max(1, max_streams)
        self._poll_interval = poll_interval
        self._wall_clock = wall_clock
        self._known_symbols = known_symbols
        self._params_schema = params_schema

    def _who(self, actor: str, context: grpc.ServicerContext) -> str:
        if self._auth is None:
            scope = "no auth"
        else:
            granted = self._auth.scope_of(context.invocation_metadata())
            scope = f"{granted} token" if granted is not None else "no token"
        # the actor is the caller's free text: printable characters only, and not too long
        printable = "".join(ch for ch in actor[: 4 * limits.MAX_ACTOR_CHARS] if ch.isprintable())
        name = printable.strip()[: limits.MAX_ACTOR_CHARS] or "anonymous"
        return f"{name} (grpc, {scope}, {context.peer()})"

    @staticmethod
    def _reason(text: str) -> str:
        return _bounded(text, "reason", limits.MAX_REASON_CHARS)

    @_translate_errors
    def GetStatus(
        self, request: pb.GetStatusRequest, context: grpc.ServicerContext
    ) -> pb.StatusSnapshot:
        return status_to_proto(self._control.get_status())

    @_translate_errors
    def ListPositions(
        self, request: pb.ListPositionsRequest, context: grpc.ServicerContext
    ) -> pb.ListPositionsResponse:
        positions = self._control.list_positions()
        return pb.ListPositionsResponse(positions=[position_to_proto(p) for p in positions])

    @_translate_errors
    def ListOrders(
        self, request: pb.ListOrdersRequest, context: grpc.ServicerContext
    ) -> pb.ListOrdersResponse:
        if not request.include_closed:
            # The working orders, whole: as many as the bot keeps working (the operator reads
            # them all at once to see what a halt left).
            orders = self._control.list_orders()
            return pb.ListOrdersResponse(orders=[order_to_proto(o) for o in orders])
        # Closed ones too, a page at a time: a long run's tens of thousands in one answer went
        # past gRPC's 4 MB a message, and a client refused it.
        size, token = _page(request.page_size, request.page_token, limits.MAX_PAGE_SIZE)
        page = self._control.list_order_page(page_size=size, page_token=token)
        return pb.ListOrdersResponse(
            orders=[order_to_proto(o) for o in page.orders], next_page_token=page.next_page_token
        )

    @_translate_errors
    def ListTrades(
        self, request: pb.ListTradesRequest, context: grpc.ServicerContext
    ) -> pb.ListTradesResponse:
        size, token = _page(request.page_size, request.page_token, limits.DEFAULT_PAGE_SIZE)
        page = self._control.list_trades(page_size=size, page_token=token)
        return pb.ListTradesResponse(
            trades=[trade_to_proto(t) for t in page.trades], next_page_token=page.next_page_token
        )

    @_translate_errors
    def Pause(self, request: pb.PauseRequest, context: grpc.ServicerContext) -> pb.StatusSnapshot:
        reason = self._reason(request.reason)
        status = self._control.pause(self._who(request.actor, context), reason)
        return status_to_proto(status)

    @_translate_errors
    def Resume(self, request: pb.ResumeRequest, context: grpc.ServicerContext) -> pb.StatusSnapshot:
        reason = self._reason(request.reason)
        who = self._who(request.actor, context)
        status = self._control.resume(
            who, reason, pause_only=request.pause_only, halt_only=request.halt_only
        )
        return status_to_proto(status)

    @_translate_errors
    def EmergencyStop(
        self, request: pb.EmergencyStopRequest, context: grpc.ServicerContext
    ) -> pb.StatusSnapshot:
        reason = self._reason(request.reason)
        who = self._who(request.actor, context)
        log.warning("emergency stop requested by %s (flatten=%s)", who, request.flatten)
        status = self._control.emergency_stop(who, reason, flatten=request.flatten)
        return status_to_proto(status)

    @_translate_errors
    def ResetRiskLock(
        self, request: pb.ResetRiskLockRequest, context: grpc.ServicerContext
    ) -> pb.StatusSnapshot:
        if not request.plugin:
            raise ControlError("name the risk plugin", field="plugin")
        plugin = _bounded(request.plugin, "plugin", limits.MAX_PLUGIN_NAME_CHARS)
        reason = self._reason(request.reason)
        who = self._who(request.actor, context)
        return status_to_proto(self._control.reset_risk_lock(plugin, who, reason))

    @_translate_errors
    def SubmitSignal(
        self, request: pb.SubmitSignalRequest, context: grpc.ServicerContext
    ) -> pb.SignalResult:
        signal = signal_from_proto(request, received_at=self._wall_clock())
        if self._known_symbols is not None and signal.symbol not in self._known_symbols():
            raise ControlError(f"{signal.symbol!r} is not traded here", field="symbol")
        result = self._control.submit_signal(signal)
        return pb.SignalResult(
            accepted=result.accepted, reason=result.reason, client_order_id=result.client_order_id
        )

    @_translate_errors
    def UpdateParams(
        self, request: pb.UpdateParamsRequest, context: grpc.ServicerContext
    ) -> pb.StatusSnapshot:
        params = params_from_proto(request)
        schema = self._params_schema() if self._params_schema is not None else None
        check_param_values(params, schema)
        status = self._control.update_params(params, self._who(request.actor, context))
        return status_to_proto(status)

    @staticmethod
    def _stream_kinds(request: pb.StreamEventsRequest) -> set[EventKind]:
        """The kinds asked for; ``ControlError`` naming ``kinds``, ``max_queue`` or ``recent``
        otherwise."""
        _decoded(request)
        if request.max_queue > limits.MAX_EVENT_QUEUE:
            raise ControlError(f"at most {limits.MAX_EVENT_QUEUE}", field="max_queue")
        if request.recent > limits.MAX_RECENT_EVENTS:
            raise ControlError(
                f"at most {limits.MAX_RECENT_EVENTS} (the events the bot keeps)", field="recent"
            )
        if len(request.kinds) > limits.MAX_EVENT_KINDS:
            raise ControlError(f"at most {limits.MAX_EVENT_KINDS} entries", field="kinds")
        kinds: set[EventKind] = set()
        for number in request.kinds:
            kind = _EVENT_KINDS.get(number)
            if kind is None:
                raise ControlError(f"{number} is not an EventKind one may ask for", field="kinds")
            kinds.add(kind)
        return kinds

    def StreamEvents(
        self, request: pb.StreamEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RuntimeEvent]:
        try:
            kinds = self._stream_kinds(request)
        except ControlError as error:
            _abort_control_error(context, error)
        if not self._streams.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {self._max_streams} event streams at once; try again later",
            )
        try:
            yield from self._stream(request, kinds, context)
        except Exception:  # a bug must end the stream as INTERNAL (logged), not UNKNOWN
            if not context.is_active():
                return
            log.exception("StreamEvents failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the bot's log")
        finally:
            self._streams.release()

    def _stream(
        self, request: pb.StreamEventsRequest, kinds: set[EventKind], context: grpc.ServicerContext
    ) -> Iterator[pb.RuntimeEvent]:
        subscription = self._control.subscribe_events(
            max_queue=request.max_queue or DEFAULT_EVENT_QUEUE, recent=request.recent, kinds=kinds
        )
        try:
            # release the subscription the moment the client goes away, not at the next poll
            if not context.add_callback(subscription.close):
                return
            context.send_initial_metadata((("tradefleet-subscribed", "1"),))
            while context.is_active():
                event = subscription.get(timeout=self._poll_interval)
                if event is None:
                    # the protocol has no "closed" flag; a subscription that has one may end us
                    if getattr(subscription, "closed", False) is True:
                        return
                    continue
                if kinds and event.kind not in kinds and event.kind != EventKind.DROPPED:
                    continue
                yield event_to_proto(event)
        finally:
            subscription.close()


# --- building the server ----------------------------------------------------------------------


class GrpcEndpoint(NamedTuple):
    """What :func:`build_grpc_server` returns: the (not yet started) server, its health
    servicer, the port it bound (useful with ``host:0``) and the server's thread pool (which
    ``server.stop`` leaves running; :meth:`stop` shuts it down)."""

    server: grpc.Server
    health: Any  # grpc_health.v1.health.HealthServicer (the package ships no type information)
    port: int
    executor: futures.ThreadPoolExecutor

    def set_serving(self, serving: bool) -> None:
        """Mark the runtime service and the overall health ``""`` SERVING or NOT_SERVING."""
        set_serving(self.health, serving)

    def stop(self, grace: float = 5.0) -> None:
        """Health to NOT_SERVING, stop (running calls get ``grace`` seconds, then are
        cancelled, which ends event streams within one poll interval), and shut the thread
        pool down."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.executor.shutdown(wait=True)


def _add_servicer(servicer: RuntimeServicer, server: grpc.Server) -> None:
    """What the generated ``add_RuntimeServiceServicer_to_server`` does, but with lenient
    request deserializers (see :class:`_Undecodable`)."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in _SERVICE.methods:
        request_class = getattr(pb, method.input_type.name)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=_lenient_deserializer(request_class),
            response_serializer=_serialize,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def set_serving(health_servicer: Any, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for service in (health.OVERALL_HEALTH, SERVICE_NAME):
        health_servicer.set(service, status)


def build_grpc_server(
    control: ControlPlane,
    *,
    address: str,
    auth: TokenAuth | None,
    tls: TlsFiles | None = None,
    max_workers: int = 8,
    max_streams: int | None = None,
    reflection_enabled: bool = True,
    poll_interval: float = 0.25,
    known_symbols: Callable[[], Collection[str]] | None = None,
    params_schema: Callable[[], Mapping[str, Any] | None] | None = None,
    max_message_bytes: int = limits.GRPC_MAX_MESSAGE_BYTES,
) -> GrpcEndpoint:
    """Build the bot's gRPC server bound to ``address`` (``host:port``; port 0 picks one).

    - ``auth``: the token interceptor; ``None`` serves without authentication (logged as a
      warning unless ``address`` is a loopback address).
    - ``tls``: serve TLS (mutual TLS when it names a CA); ``None`` serves plaintext.
    - ``max_workers``: the thread pool; ``max_streams`` (default ``max_workers // 2``, at most
      :data:`~tradefleet_runtime.service.limits.MAX_EVENT_STREAMS`) caps concurrent
      ``StreamEvents`` so control calls always find a thread.
    - ``known_symbols``, ``params_schema``: see :class:`RuntimeServicer`.
    - ``max_message_bytes``: the largest request; a larger one gets ``RESOURCE_EXHAUSTED``.

    Health starts NOT_SERVING for ``""`` and ``tradefleet.v1.RuntimeService``; call
    ``endpoint.set_serving(True)`` once the bot runs. The caller starts the server
    (``endpoint.server.start()``) and stops it with ``endpoint.stop(grace)``, which also shuts
    the thread pool down (``server.stop`` alone leaves its threads idle but alive).

    Raises ``TlsError`` (``auth.py``) for TLS files it cannot use and ``OSError`` naming the
    address and the cause when it cannot listen there, before anything is started.
    """
    # First: bad files fail here, naming the file, with no thread pool or server left behind.
    credentials = tls.server_credentials() if tls is not None else None
    if auth is None and not _is_loopback(address):
        log.warning("gRPC API on %s without authentication", address)
    if max_streams is None:
        max_streams = max(1, min(limits.MAX_EVENT_STREAMS, max_workers // 2))
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc")
    server = grpc.server(
        executor,
        interceptors=[auth] if auth is not None else None,
        options=[("grpc.max_receive_message_length", max_message_bytes)],
    )
    servicer = RuntimeServicer(
        control,
        auth=auth,
        max_streams=max_streams,
        poll_interval=poll_interval,
        known_symbols=known_symbols,
        params_schema=params_schema,
    )
    _add_servicer(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    set_serving(health_servicer, False)
    if reflection_enabled:
        names = (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    try:
        if credentials is not None:
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:  # grpc >= 1.60 raises "Failed to bind", older ones return 0
        port = 0
    if port == 0:
        executor.shutdown(wait=False)
        raise OSError(f"cannot listen on {address} (gRPC): {_bind_problem(address)}")
    return GrpcEndpoint(server=server, health=health_servicer, port=port, executor=executor)


def _bind_problem(address: str) -> str:
    """Why ``address`` cannot be listened on, as the system says it: gRPC's own error names
    no cause (a port in use, an address not of this host, a malformed address)."""
    host, _, port = address.rpartition(":")
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(where)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return reason[:1].lower() + reason[1:]
    return "gRPC could not bind it"


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
