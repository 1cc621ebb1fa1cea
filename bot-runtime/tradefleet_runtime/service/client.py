"""A small client for a bot's gRPC API, speaking api.py's dataclasses.

::

    with RuntimeClient("127.0.0.1:50051", token=token) as bot:
        print(bot.get_status().phase)
        bot.pause("maintenance")
        for event in bot.events(kinds=[EventKind.FILL]):
            ...

Every failed call raises :class:`ApiError` (status code name, message and, for
``INVALID_ARGUMENT``, the offending field).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.service.api import (
    EventKind,
    OrderPage,
    OrderView,
    PositionView,
    RuntimeEvent,
    Signal,
    SignalResult,
    StatusSnapshot,
    TradePage,
    TradeView,
)
from tradefleet_runtime.service.control_args import TOKEN_ENV as TOKEN_ENV
from tradefleet_runtime.service.grpc_server import (
    FIELD_METADATA,
    event_from_proto,
    order_from_proto,
    position_from_proto,
    signal_result_from_proto,
    status_from_proto,
    trade_page_from_proto,
)


class ApiError(Exception):
    """A call failed: ``code`` is the gRPC status code's name (``"UNAUTHENTICATED"``, ...)."""

    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> ApiError:
        code = error.code()
        field = ""
        try:
            items: Iterable[Any] = error.trailing_metadata() or ()
            for key, value in items:
                if key == FIELD_METADATA:
                    field = value.decode() if isinstance(value, bytes) else value
        except Exception:  # an error without a call behind it has no trailing metadata
            field = ""
        name = code.name if code is not None else "UNKNOWN"
        return cls(name, error.details() or "", field)


@dataclass(frozen=True, slots=True)
class ClientTls:
    """TLS towards the bot: ``ca`` verifies the server (None: the system's roots); ``cert`` and
    ``key`` are the client's certificate for mutual TLS; ``server_name`` overrides the name the
    server's certificate must carry (e.g. when connecting through a port-forward)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes() if self.ca else None,
            private_key=self.key.read_bytes() if self.key else None,
            certificate_chain=self.cert.read_bytes() if self.cert else None,
        )


def default_actor() -> str:
    """``user@host`` for the audit trail of control calls."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class TokenError(ValueError):
    """A token that cannot be sent: the message names where it came from and what is wrong,
    never the token itself."""


def read_token(token_file: Path | None) -> str | None:
    """The token from ``token_file`` if given, else ``$TRADEFLEET_TOKEN``, else ``None``.

    ``TokenError`` unless it is one line of printable ASCII without spaces (surrounding
    whitespace, such as the newline ``echo`` adds, is dropped): gRPC cannot send anything else
    as metadata and would fail every call with ``INTERNAL: Invalid metadata``. A file with no
    token in it (empty, or only whitespace) is a ``TokenError`` too: sent as no token, it was
    answered ``UNAUTHENTICATED: missing bearer token``, naming no file — what ``kubectl get
    secret ... | base64 -d > read.token`` leaves when the Secret or its key is misnamed.
    ``OSError`` when the file cannot be read."""
    if token_file is not None:
        text = token_file.read_bytes().decode("utf-8", errors="replace")
        token = _checked_token(text, f"token file {token_file}")
        if token is None:
            raise TokenError(f"token file {token_file} is empty: it holds no token")
        return token
    return _checked_token(os.environ.get(TOKEN_ENV, ""), f"${TOKEN_ENV}")


def _checked_token(text: str, source: str) -> str | None:
    token = text.strip()
    lines = token.splitlines()
    if len(lines) > 1:
        raise TokenError(f"{source} holds {len(lines)} lines; a token is one line")
    for position, char in enumerate(token, start=1):
        if not "!" <= char <= "~":
            raise TokenError(
                f"{source}: character {position} of the token is a space, a control character "
                "or not ASCII; a token is printable ASCII without spaces"
            )
    return token or None


class EventStream:
    """Events of one ``StreamEvents`` call; iterate, and :meth:`cancel` (or leave the ``with``)
    to end it. Iteration ends quietly when cancelled."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False

    def __iter__(self) -> Iterator[RuntimeEvent]:
        try:
            for message in self._call:
                yield event_from_proto(message)
        except grpc.RpcError as error:
            if self._cancelled and error.code() == grpc.StatusCode.CANCELLED:
                return
            raise ApiError.from_rpc_error(error) from None

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


class RuntimeClient:
    """A connection to one bot. ``timeout`` (seconds) applies to every unary call."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tls: ClientTls | None = None,
        timeout: float = 10.0,
        actor: str | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.actor = actor if actor is not None else default_actor()
        if tls is None:
            self._channel = grpc.insecure_channel(address)
        else:
            options = []
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            self._channel = grpc.secure_channel(address, tls.channel_credentials(), options)
        self._stub = pb_grpc.RuntimeServiceStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> RuntimeClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: grpc.UnaryUnaryMultiCallable[Any, Any], request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise ApiError.from_rpc_error(error) from None

    # --- reads -----------------------------------------------------------------------------

    def get_status(self) -> StatusSnapshot:
        response: pb.StatusSnapshot = self._call(self._stub.GetStatus, pb.GetStatusRequest())
        return status_from_proto(response)

    def list_positions(self) -> list[PositionView]:
        response: pb.ListPositionsResponse = self._call(
            self._stub.ListPositions, pb.ListPositionsRequest()
        )
        return [position_from_proto(p) for p in response.positions]

    def list_orders(self, include_closed: bool = False) -> list[OrderView]:
        """The working orders; with ``include_closed``, every order of the run (page after
        page, each order once)."""
        if include_closed:
            return list(self.iter_orders())
        response: pb.ListOrdersResponse = self._call(
            self._stub.ListOrders, pb.ListOrdersRequest(include_closed=False)
        )
        return [order_from_proto(o) for o in response.orders]

    def list_order_page(self, page_size: int = 0, page_token: str = "") -> OrderPage:
        """A page of every order of the run, closed ones included (0: the server's size)."""
        response: pb.ListOrdersResponse = self._call(
            self._stub.ListOrders,
            pb.ListOrdersRequest(include_closed=True, page_size=page_size, page_token=page_token),
        )
        return OrderPage(
            tuple(order_from_proto(o) for o in response.orders), response.next_page_token
        )

    def iter_orders(self, page_size: int = 0) -> Iterator[OrderView]:
        """Every order of the run, closed ones included, fetching page after page. An order
        the bot created in the same second as a page's last one can reach two pages: it is
        given once."""
        token = ""
        seen: set[str] = set()
        while True:
            page = self.list_order_page(page_size=page_size, page_token=token)
            for order in page.orders:
                if order.client_order_id not in seen:
                    seen.add(order.client_order_id)
                    yield order
            token = page.next_page_token
            if not token:
                return

    def list_trades(self, page_size: int = 100, page_token: str = "") -> TradePage:
        response: pb.ListTradesResponse = self._call(
            self._stub.ListTrades, pb.ListTradesRequest(page_size=page_size, page_token=page_token)
        )
        return trade_page_from_proto(response)

    def iter_trades(self, page_size: int = 100) -> Iterator[TradeView]:
        """Every closed trade, fetching page after page."""
        token = ""
        while True:
            page = self.list_trades(page_size=page_size, page_token=token)
            yield from page.trades
            token = page.next_page_token
            if not token:
                return

    def events(
        self,
        kinds: Iterable[EventKind] = (),
        max_queue: int = 0,
        timeout: float | None = None,
        recent: int = 0,
    ) -> EventStream:
        """Subscribe to the bot's events (until cancelled, or for ``timeout`` seconds); with
        ``recent``, up to that many of its latest events first."""
        request = pb.StreamEventsRequest(
            kinds=["EVENT_KIND_" + EventKind(k).name for k in kinds],
            max_queue=max_queue,
            recent=recent,
        )
        call = self._stub.StreamEvents(request, timeout=timeout, metadata=self._metadata)
        return EventStream(call)

    def health(self, service: str = "") -> str:
        """The health status name (``SERVING``, ``NOT_SERVING``, ...); needs no token."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped, unused-ignore]

        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=self.timeout
            )
        except grpc.RpcError as error:
            raise ApiError.from_rpc_error(error) from None
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        return name

    # --- control ---------------------------------------------------------------------------

    def pause(self, reason: str) -> StatusSnapshot:
        request = pb.PauseRequest(reason=reason, actor=self.actor)
        return status_from_proto(self._call(self._stub.Pause, request))

    def resume(self, reason: str) -> StatusSnapshot:
        request = pb.ResumeRequest(reason=reason, actor=self.actor)
        return status_from_proto(self._call(self._stub.Resume, request))

    def emergency_stop(self, reason: str, flatten: bool = False) -> StatusSnapshot:
        request = pb.EmergencyStopRequest(reason=reason, flatten=flatten, actor=self.actor)
        return status_from_proto(self._call(self._stub.EmergencyStop, request))

    def reset_risk_lock(self, plugin: str, reason: str) -> StatusSnapshot:
        request = pb.ResetRiskLockRequest(plugin=plugin, reason=reason, actor=self.actor)
        return status_from_proto(self._call(self._stub.ResetRiskLock, request))

    def submit_signal(self, signal: Signal) -> SignalResult:
        request = pb.SubmitSignalRequest(
            symbol=signal.symbol,
            direction="DIRECTION_" + signal.direction.name,
            entry=signal.entry,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
            volume=signal.volume,
            current_price=signal.current_price,
            timeframe=signal.timeframe,
            pattern_type=signal.pattern_type,
            source=signal.source,
            confidence=signal.confidence,
            signal_id=signal.signal_id,
            actor=self.actor,
        )
        return signal_result_from_proto(self._call(self._stub.SubmitSignal, request))

    def update_params(self, params: Mapping[str, object]) -> StatusSnapshot:
        request = pb.UpdateParamsRequest(params_json=json.dumps(dict(params)), actor=self.actor)
        return status_from_proto(self._call(self._stub.UpdateParams, request))
