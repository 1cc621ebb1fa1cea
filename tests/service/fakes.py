"""An in-memory :class:`ControlPlane` that keeps api.py's promises, and a server helper.

``FakeControlPlane`` behaves like the real controller as far as the API layer can see:
snapshots are immutable, pause/resume/emergency stop change the phase and publish ``STATE``
events, emergency stop is idempotent, trades page with opaque tokens, params are validated (a
bad field raises ``ControlError`` naming it and nothing changes), and every subscription is
bounded: overflow is reported as one ``DROPPED`` event with the count. ``HaltedJournal`` is the
journal ``HeldControl`` writes to, in memory.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import grpc
import pytest

from tradefleet_runtime.service.api import (
    ControlError,
    EventKind,
    OrderPage,
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
from tradefleet_runtime.service.grpc_server import GrpcEndpoint, build_grpc_server

EventData = Mapping[str, str | float | int | bool]


class FakeSubscription:
    """A bounded queue; overflow becomes one DROPPED event; ``close()`` wakes a waiting get."""

    def __init__(self, plane: FakeControlPlane, max_queue: int) -> None:
        self._plane = plane
        self._max = max(1, max_queue)
        self._queue: deque[RuntimeEvent] = deque()
        self._dropped = 0
        self._cond = threading.Condition()
        self.closed = False

    def offer(self, event: RuntimeEvent) -> None:
        with self._cond:
            if self.closed:
                return
            if len(self._queue) >= self._max:
                self._dropped += 1
            else:
                self._queue.append(event)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> RuntimeEvent | None:
        with self._cond:
            if not self._cond.wait_for(
                lambda: self.closed or self._dropped or self._queue, timeout=timeout
            ):
                return None
            if self._dropped:
                count, self._dropped = self._dropped, 0
                return RuntimeEvent(
                    seq=0,
                    ts=0,
                    kind=EventKind.DROPPED,
                    message=f"{count} event(s) dropped",
                    data={"count": count},
                )
            if self._queue:
                return self._queue.popleft()
            return None  # closed

    def __iter__(self) -> Iterator[RuntimeEvent]:
        while True:
            event = self.get(timeout=0.1)
            if event is not None:
                yield event
            elif self.closed:
                return

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._plane._unsubscribe(self)


PARAM_TYPES: dict[str, type] = {"fast": int, "slow": int, "threshold": float}


class FakeControlPlane:
    """See the module docstring. ``calls`` records (method, who, reason) of every control call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._order_ids = itertools.count(1)
        self._subscribers: list[FakeSubscription] = []
        self.published: list[RuntimeEvent] = []
        self.calls: list[tuple[str, str, str]] = []
        self.signals: list[Signal] = []
        self.params: dict[str, object] = {"fast": 12, "slow": 26, "threshold": 0.5}
        self.ts = 1_700_000_000
        self.status = StatusSnapshot(
            bot="btc-ema",
            mode="paper",
            phase=Phase.RUNNING,
            equity=10_250.5,
            balance=9_000.0,
            currency="USDT",
            pnl_today=50.25,
            pnl_total=250.5,
            drawdown_pct=1.5,
            open_positions=1,
            open_orders=2,
            halted=False,
            halt_reason="",
            paused=False,
            pause_reason="",
            last_bar_ts=self.ts,
            config_hash="abc123",
            plugins=(
                PluginInfo("strategy", "ema-cross", "1.0.0"),
                PluginInfo("risk", "daily-loss", "0.2.0"),
                PluginInfo("broker", "paper", "1.0.0"),
            ),
            risk=(
                RiskPluginState("fixed-size", "1.0.0"),
                RiskPluginState("daily-loss", "0.2.0", locked=True, reason="loss limit hit"),
            ),
            quality=(
                QualityFigure("slippage_bps", 40, 1.2, 0.4, cp=1.5, cpk=1.1),
                QualityFigure("win_rate", 3, 0.66, 0.1),
            ),
            broker_connected=True,
            reconciled=True,
            bars=1234,
        )
        self.positions = [
            PositionView("BTC/USDT", 0.05, 25_000.0, 25_010.0, 0.5, 12.0, self.ts - 3600)
        ]
        self.orders = [
            OrderView(
                "e-1", "BTC/USDT", "buy", "limit", 0.1, 0.0, 24_000.0, "open", False, None, 1
            ),
            OrderView(
                "s-1", "BTC/USDT", "sell", "stop", 0.05, 0.0, 24_500.0, "open", True, "e-0", 2
            ),
            OrderView(
                "e-0", "BTC/USDT", "buy", "market", 0.05, 0.05, None, "filled", False, None, 0
            ),
        ]
        self.trades = [
            TradeView(
                i, "BTC/USDT", 1 if i % 2 else -1, 0.01, 100 * i, 100 * i + 50, 1.0, 1.1, 0.1, 0.01
            )
            for i in range(1, 8)
        ]

    # --- events ----------------------------------------------------------------------------

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, kind: EventKind, message: str, data: EventData | None = None) -> None:
        event = RuntimeEvent(next(self._seq), self.ts, kind, message, dict(data or {}))
        with self._lock:
            self.published.append(event)
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.offer(event)

    def subscribe_events(
        self, max_queue: int = 1000, recent: int = 0, kinds: Collection[EventKind] = ()
    ) -> FakeSubscription:
        subscription = FakeSubscription(self, max(max_queue, recent))
        with self._lock:
            kept = [e for e in self.published if not kinds or e.kind in kinds]
            for event in kept[len(kept) - recent :] if recent else ():
                subscription.offer(event)
            self._subscribers.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: FakeSubscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    # --- reads -----------------------------------------------------------------------------

    def get_status(self) -> StatusSnapshot:
        with self._lock:
            return self.status

    def list_positions(self) -> list[PositionView]:
        with self._lock:
            return list(self.positions)

    def list_orders(self, include_closed: bool = False) -> list[OrderView]:
        with self._lock:
            if include_closed:
                return list(self.orders)
            return [o for o in self.orders if o.status in ("pending", "open")]

    def list_order_page(self, page_size: int = 1000, page_token: str = "") -> OrderPage:
        start = int(page_token[1:]) if page_token.startswith("o") else 0
        with self._lock:
            page = tuple(self.orders[start : start + page_size])
            more = start + page_size < len(self.orders)
        return OrderPage(page, f"o{start + page_size}" if more else "")

    def list_trades(self, page_size: int = 100, page_token: str = "") -> TradePage:
        if page_size < 1:
            raise ControlError("must be positive", field="page_size")
        start = 0
        if page_token:
            if not page_token.startswith("t") or not page_token[1:].isdigit():
                raise ControlError("not a token this bot gave out", field="page_token")
            start = int(page_token[1:])
        with self._lock:
            page = tuple(self.trades[start : start + page_size])
            more = start + page_size < len(self.trades)
        return TradePage(page, f"t{start + page_size}" if more else "")

    # --- control ---------------------------------------------------------------------------

    def _set(self, **changes: object) -> StatusSnapshot:
        with self._lock:
            self.status = replace(self.status, **changes)  # type: ignore[arg-type]
            return self.status

    def _lift(self, message: str, **cleared: object) -> StatusSnapshot:
        """Clear ``cleared`` (a halt, a pause or both): the phase is what is left in force."""
        with self._lock:
            left = replace(self.status, **cleared)  # type: ignore[arg-type]
            self.status = replace(left, phase=_phase(left.halted, left.paused))
            status = self.status
        self.publish(EventKind.STATE, message, {"phase": "Running"})
        return status

    def pause(self, who: str, reason: str) -> StatusSnapshot:
        self.calls.append(("pause", who, reason))
        halted = self.get_status().halted
        status = self._set(
            paused=True, pause_reason=reason, phase=Phase.HALTED if halted else Phase.PAUSED
        )
        self.publish(EventKind.STATE, f"paused by {who}: {reason}", {"phase": "Paused"})
        return status

    def resume(
        self, who: str, reason: str, *, pause_only: bool = False, halt_only: bool = False
    ) -> StatusSnapshot:
        self.calls.append(("resume", who, reason))
        if halt_only:
            return self._lift(f"resumed by {who}: {reason}", halted=False, halt_reason="")
        if pause_only:
            return self._lift(f"pause lifted by {who}: {reason}", paused=False, pause_reason="")
        return self._lift(
            f"resumed by {who}: {reason}",
            paused=False,
            pause_reason="",
            halted=False,
            halt_reason="",
        )

    def emergency_stop(self, who: str, reason: str, flatten: bool = False) -> StatusSnapshot:
        self.calls.append(("emergency_stop", who, reason))
        with self._lock:
            if self.status.halted:
                return self.status  # idempotent: nothing changes
            self.orders = [
                replace(o, status="cancelled") if o.status == "open" and not o.reduce_only else o
                for o in self.orders
            ]
            if flatten:
                self.positions = []
            open_orders = sum(o.status == "open" for o in self.orders)
            self.status = replace(
                self.status,
                halted=True,
                halt_reason=reason,
                phase=Phase.HALTED,
                open_orders=open_orders,
                open_positions=len(self.positions),
            )
            status = self.status
        self.publish(EventKind.STATE, f"halted by {who}: {reason}", {"flatten": flatten})
        return status

    def reset_risk_lock(self, plugin: str, who: str, reason: str) -> StatusSnapshot:
        self.calls.append(("reset_risk_lock", who, reason))
        risk = self.get_status().risk
        if plugin not in {r.name for r in risk}:
            raise ControlError(f"no risk plugin named {plugin!r}", field="plugin")
        new = tuple(replace(r, locked=False, reason="") if r.name == plugin else r for r in risk)
        status = self._set(risk=new)
        self.publish(EventKind.RISK, f"{plugin} lock reset by {who}", {"plugin": plugin})
        return status

    def submit_signal(self, signal: Signal) -> SignalResult:
        if signal.volume is not None and signal.volume <= 0:
            raise ControlError("must be positive", field="volume")
        self.signals.append(signal)
        status = self.get_status()
        if status.halted or status.paused:
            result = SignalResult(False, f"bot is {status.phase.value.lower()}")
        else:
            order_id = f"sig-{next(self._order_ids)}"
            with self._lock:
                self.orders.append(
                    OrderView(
                        order_id,
                        signal.symbol,
                        signal.direction.value.lower(),
                        "market",
                        signal.volume or 0.01,
                        0.0,
                        None,
                        "open",
                        False,
                        None,
                        self.ts,
                    )
                )
            result = SignalResult(True, "", order_id)
        self.publish(EventKind.SIGNAL, f"signal {signal.signal_id}", {"accepted": result.accepted})
        return result

    def update_params(self, params: Mapping[str, object], who: str) -> StatusSnapshot:
        self.calls.append(("update_params", who, ""))
        merged = {**self.params}
        for key, value in params.items():
            expected = PARAM_TYPES.get(key)
            if expected is None:
                raise ControlError("unknown parameter", field=key)
            if expected is int and (not isinstance(value, int) or isinstance(value, bool)):
                raise ControlError("must be an integer", field=key)
            if expected is float and not isinstance(value, int | float):
                raise ControlError("must be a number", field=key)
            merged[key] = value
        if not int(merged["fast"]) < int(merged["slow"]):  # type: ignore[call-overload]
            raise ControlError("fast must be below slow", field="fast")
        self.params = merged
        return self._set(config_hash=f"h{abs(hash(tuple(sorted(merged.items())))) % 10**8}")


def _phase(halted: bool, paused: bool) -> Phase:
    """A running bot's phase: a halt shows over a pause."""
    if halted:
        return Phase.HALTED
    return Phase.PAUSED if paused else Phase.RUNNING


class HaltedJournal:
    """The journal ``HeldControl`` writes to, in memory, for a bot whose last control event is
    an emergency stop (alice's, for a drill): ``events`` holds (kind, message) in order, and
    ``last_control_event`` is the newest (the halt a test hands ``HeldControl``)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = [("halted", "emergency stop by alice: drill")]

    def last_control_event(self) -> tuple[str, str] | None:
        return self.events[-1]

    def record_event(
        self, ts: int, kind: str, message: str, data: dict[str, Any] | None = None
    ) -> None:
        self.events.append((kind, message))


@contextmanager
def running_server(
    control: FakeControlPlane,
    *,
    auth: TokenAuth | None = None,
    tls: TlsFiles | None = None,
    max_workers: int = 8,
    max_streams: int | None = None,
    **options: Any,
) -> Iterator[GrpcEndpoint]:
    """A started server on 127.0.0.1:<ephemeral>, marked SERVING; stopped with grace after.
    ``options`` go to :func:`build_grpc_server` (``known_symbols``, ``params_schema``, ...)."""
    endpoint = build_grpc_server(
        control,
        address="127.0.0.1:0",
        auth=auth,
        tls=tls,
        max_workers=max_workers,
        max_streams=max_streams,
        poll_interval=0.05,
        **options,
    )
    endpoint.server.start()
    endpoint.set_serving(True)
    try:
        yield endpoint
    finally:
        endpoint.stop(grace=0.5)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def rpc_code(error: grpc.RpcError) -> grpc.StatusCode:
    return error.code()


def server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("grpc_")]


@pytest.fixture(autouse=True)
def no_leaked_server_threads() -> Iterator[None]:
    """Import into a test module: fails a test that leaves a gRPC server's threads running."""
    before = set(server_threads())
    yield
    deadline = time.monotonic() + 2.0
    while set(server_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    leaked = set(server_threads()) - before
    assert not leaked, f"server threads left running: {sorted(leaked)}"
