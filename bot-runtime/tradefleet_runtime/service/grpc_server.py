"""The bot's gRPC server: ``tradefleet.v1.RuntimeService`` over a :class:`ControlPlane`.

:func:`build_grpc_server` makes the server (not started) with the runtime service, the standard
``grpc.health.v1`` health service and server reflection. The servicer only translates between
protobuf messages and the dataclasses of :mod:`tradefleet_runtime.service.api`; the control plane
does the work on the engine's thread.

Errors: :class:`~tradefleet_runtime.service.api.ControlError` becomes ``INVALID_ARGUMENT`` with
the message ``"<field>: <message>"`` (and the field in the ``tradefleet-field`` trailing
metadata); any other exception is logged and becomes ``INTERNAL``.

``StreamEvents`` holds one worker thread per stream, so at most ``max_streams`` streams run at
once (``RESOURCE_EXHAUSTED`` beyond); it polls its bounded :class:`EventSubscription` with a
timeout, so a slow client never blocks the engine, and it closes the subscription as soon as the
client cancels (through ``context.add_callback``) or the server stops.

The module also holds the proto → dataclass conversions the client uses.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, NamedTuple, NoReturn, ParamSpec, TypeVar

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped, unused-ignore]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped, unused-ignore]

from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.service.api import (
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
    SignalResult,
    StatusSnapshot,
    TradePage,
    TradeView,
)
from tradefleet_runtime.service.auth import TlsFiles, TokenAuth

log = logging.getLogger(__name__)

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["RuntimeService"].full_name
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DEFAULT_EVENT_QUEUE = 1000
MAX_EVENT_QUEUE = 100_000
FIELD_METADATA = "tradefleet-field"

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
            pb.RiskPluginState(name=r.name, version=r.version, locked=r.locked, reason=r.reason)
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


def status_from_proto(message: pb.StatusSnapshot) -> StatusSnapshot:
    phase_name = pb.Phase.Name(message.phase).removeprefix("PHASE_")
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
        risk=tuple(RiskPluginState(r.name, r.version, r.locked, r.reason) for r in message.risk),
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
    kind_name = pb.EventKind.Name(message.kind).removeprefix("EVENT_KIND_")
    return RuntimeEvent(
        seq=message.seq,
        ts=message.ts,
        kind=EventKind[kind_name],
        message=message.message,
        data={key: _value_from_proto(value) for key, value in message.data.items()},
    )


def signal_result_from_proto(message: pb.SignalResult) -> SignalResult:
    return SignalResult(
        accepted=message.accepted, reason=message.reason, client_order_id=message.client_order_id
    )


def signal_from_proto(message: pb.SubmitSignalRequest, *, received_at: float) -> Signal:
    """The request as a :class:`Signal`; ``ControlError`` for a missing symbol or direction."""
    if not message.symbol:
        raise ControlError("a symbol is required", field="symbol")
    direction_name = pb.Direction.Name(message.direction).removeprefix("DIRECTION_")
    if direction_name not in Direction.__members__:
        raise ControlError("give DIRECTION_BUY or DIRECTION_SELL", field="direction")
    for name in ("entry", "stop_loss", "take_profit", "volume", "current_price", "confidence"):
        value = getattr(message, name)
        if not math.isfinite(value):
            raise ControlError("must be a finite number", field=name)
    return Signal(
        symbol=message.symbol,
        direction=Direction[direction_name],
        entry=message.entry,
        stop_loss=message.stop_loss,
        take_profit=message.take_profit,
        volume=_optional(message, "volume"),
        current_price=_optional(message, "current_price"),
        timeframe=message.timeframe,
        pattern_type=message.pattern_type,
        source=message.source,
        confidence=_optional(message, "confidence"),
        signal_id=message.signal_id or uuid.uuid4().hex,
        received_at=received_at,
    )


def _whole_numbers_as_int(value: object) -> object:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers_as_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_int(item) for item in value]
    return value


def params_from_proto(message: pb.UpdateParamsRequest) -> dict[str, object]:
    """The params of an ``UpdateParams`` request; ``ControlError`` when absent or not an object.

    From a Struct, whole numbers become ``int`` (Struct has only doubles); pydantic accepts an
    int for a float field, so nothing is lost.
    """
    which = message.WhichOneof("params")
    if which == "params_json":
        try:
            params = json.loads(message.params_json)
        except json.JSONDecodeError as error:
            raise ControlError(f"not valid JSON: {error}", field="params_json") from None
        if not isinstance(params, dict):
            raise ControlError("must be a JSON object", field="params_json")
        return params
    if which == "params_struct":
        converted = _whole_numbers_as_int(json_format.MessageToDict(message.params_struct))
        assert isinstance(converted, dict)
        return converted
    raise ControlError("give params_json or params_struct", field="params")


# --- the servicer -----------------------------------------------------------------------------


def _translate_errors(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """``ControlError`` → ``INVALID_ARGUMENT``; any other exception → ``INTERNAL`` (logged).

    The wrapped methods never call ``context.abort`` themselves (it raises a bare Exception);
    they raise ``ControlError``.
    """

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        context = args[2]
        assert isinstance(context, grpc.ServicerContext)
        try:
            return method(*args, **kwargs)
        except ControlError as error:
            _abort_control_error(context, error)
        except Exception:
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the bot's log")

    return wrapper


def _abort_control_error(context: grpc.ServicerContext, error: ControlError) -> NoReturn:
    message = f"{error.field}: {error}" if error.field else str(error)
    if error.field:
        context.set_trailing_metadata(((FIELD_METADATA, error.field),))
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)


class RuntimeServicer(pb_grpc.RuntimeServiceServicer):
    """Translates ``RuntimeService`` calls into :class:`ControlPlane` calls.

    ``auth`` (optional) is used only to name the caller's token scope in the ``who`` passed to
    the control plane: ``"<actor> (grpc, <scope> token, <peer>)"``.
    """

    def __init__(
        self,
        control: ControlPlane,
        *,
        auth: TokenAuth | None = None,
        max_streams: int = 4,
        poll_interval: float = 0.25,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._control = control
        self._auth = auth
        self._streams = threading.BoundedSemaphore(max(1, max_streams))
        self._max_streams = max(1, max_streams)
        self._poll_interval = poll_interval
        self._wall_clock = wall_clock

    def _who(self, actor: str, context: grpc.ServicerContext) -> str:
        if self._auth is None:
            scope = "no auth"
        else:
            granted = self._auth.scope_of(context.invocation_metadata())
            scope = f"{granted} token" if granted is not None else "no token"
        # the actor is the caller's free text: printable characters only, and not too long
        name = "".join(ch for ch in actor if ch.isprintable()).strip()[:64] or "anonymous"
        return f"{name} (grpc, {scope}, {context.peer()})"

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
        orders = self._control.list_orders(include_closed=request.include_closed)
        return pb.ListOrdersResponse(orders=[order_to_proto(o) for o in orders])

    @_translate_errors
    def ListTrades(
        self, request: pb.ListTradesRequest, context: grpc.ServicerContext
    ) -> pb.ListTradesResponse:
        size = request.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ControlError(f"must be 0 (default) or 1..{MAX_PAGE_SIZE}", field="page_size")
        page = self._control.list_trades(page_size=size, page_token=request.page_token)
        return pb.ListTradesResponse(
            trades=[trade_to_proto(t) for t in page.trades], next_page_token=page.next_page_token
        )

    @_translate_errors
    def Pause(self, request: pb.PauseRequest, context: grpc.ServicerContext) -> pb.StatusSnapshot:
        status = self._control.pause(self._who(request.actor, context), request.reason)
        return status_to_proto(status)

    @_translate_errors
    def Resume(self, request: pb.ResumeRequest, context: grpc.ServicerContext) -> pb.StatusSnapshot:
        status = self._control.resume(self._who(request.actor, context), request.reason)
        return status_to_proto(status)

    @_translate_errors
    def EmergencyStop(
        self, request: pb.EmergencyStopRequest, context: grpc.ServicerContext
    ) -> pb.StatusSnapshot:
        who = self._who(request.actor, context)
        log.warning("emergency stop requested by %s (flatten=%s)", who, request.flatten)
        status = self._control.emergency_stop(who, request.reason, flatten=request.flatten)
        return status_to_proto(status)

    @_translate_errors
    def ResetRiskLock(
        self, request: pb.ResetRiskLockRequest, context: grpc.ServicerContext
    ) -> pb.StatusSnapshot:
        if not request.plugin:
            raise ControlError("name the risk plugin", field="plugin")
        who = self._who(request.actor, context)
        return status_to_proto(self._control.reset_risk_lock(request.plugin, who, request.reason))

    @_translate_errors
    def SubmitSignal(
        self, request: pb.SubmitSignalRequest, context: grpc.ServicerContext
    ) -> pb.SignalResult:
        signal = signal_from_proto(request, received_at=self._wall_clock())
        result = self._control.submit_signal(signal)
        return pb.SignalResult(
            accepted=result.accepted, reason=result.reason, client_order_id=result.client_order_id
        )

    @_translate_errors
    def UpdateParams(
        self, request: pb.UpdateParamsRequest, context: grpc.ServicerContext
    ) -> pb.StatusSnapshot:
        params = params_from_proto(request)
        status = self._control.update_params(params, self._who(request.actor, context))
        return status_to_proto(status)

    def StreamEvents(
        self, request: pb.StreamEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RuntimeEvent]:
        if request.max_queue > MAX_EVENT_QUEUE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"max_queue: at most {MAX_EVENT_QUEUE}")
        kinds: set[EventKind] = set()
        for kind in request.kinds:
            name = pb.EventKind.Name(kind).removeprefix("EVENT_KIND_")
            if name not in EventKind.__members__:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "kinds: EVENT_KIND_UNSPECIFIED")
            kinds.add(EventKind[name])
        if not self._streams.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {self._max_streams} event streams at once; try again later",
            )
        try:
            yield from self._stream(request, kinds, context)
        finally:
            self._streams.release()

    def _stream(
        self, request: pb.StreamEventsRequest, kinds: set[EventKind], context: grpc.ServicerContext
    ) -> Iterator[pb.RuntimeEvent]:
        subscription = self._control.subscribe_events(
            max_queue=request.max_queue or DEFAULT_EVENT_QUEUE
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
) -> GrpcEndpoint:
    """Build the bot's gRPC server bound to ``address`` (``host:port``; port 0 picks one).

    - ``auth``: the token interceptor; ``None`` serves without authentication (logged as a
      warning unless ``address`` is a loopback address).
    - ``tls``: serve TLS (mutual TLS when it names a CA); ``None`` serves plaintext.
    - ``max_workers``: the thread pool; ``max_streams`` (default ``max_workers // 2``) caps
      concurrent ``StreamEvents`` so control calls always find a thread.

    Health starts NOT_SERVING for ``""`` and ``tradefleet.v1.RuntimeService``; call
    ``endpoint.set_serving(True)`` once the bot runs. The caller starts the server
    (``endpoint.server.start()``) and stops it with ``endpoint.stop(grace)``, which also shuts
    the thread pool down (``server.stop`` alone leaves its threads idle but alive).
    """
    if auth is None and not _is_loopback(address):
        log.warning("gRPC API on %s without authentication", address)
    streams = max_streams if max_streams is not None else max(1, max_workers // 2)
    executor = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc")
    server = grpc.server(executor, interceptors=[auth] if auth is not None else None)
    servicer = RuntimeServicer(control, auth=auth, max_streams=streams, poll_interval=poll_interval)
    pb_grpc.add_RuntimeServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    set_serving(health_servicer, False)
    if reflection_enabled:
        names = (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
    if tls is not None:
        port = server.add_secure_port(address, tls.server_credentials())
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        executor.shutdown(wait=False)
        raise OSError(f"cannot bind the gRPC API to {address}")
    return GrpcEndpoint(server=server, health=health_servicer, port=port, executor=executor)


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
