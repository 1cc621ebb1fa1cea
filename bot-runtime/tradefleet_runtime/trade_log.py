"""What a running bot does, as log lines: one per order update, fill, trade close (with its net
P&L and exit reason), risk veto or shrink, and trading-state change.

:class:`TradeLogListener` is an engine listener; :meth:`TradeLogListener.attach` puts it in front
of whatever listener the engine already has (the service's metrics listener), so both hear every
event. ``tradefleet run`` and ``tradefleet serve`` attach one through ``BotSession(prepare=...)``.
Each line's facts are also keys of the JSON log object (``event``, ``symbol``, ``pnl`` ...).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from tradefleet_runtime.engine.engine import Engine, EngineListener
from tradefleet_runtime.engine.stop_moves import price_text
from tradefleet_runtime.model import (
    Bar,
    CashFlow,
    Fill,
    Order,
    OrderIntent,
    OrderUpdate,
    Position,
    RiskDecision,
)

log = logging.getLogger("tradefleet.trading")


def _time(ts: int) -> str:
    if ts <= 0:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%MZ")


def number_text(value: float, sign: str = "") -> str:
    """A quantity or price as the venue's deal says it: no exponent (12 lots of EURUSD are
    1200000 euros, not 1.2e+06) and all its digits, up to ``price_text``'s 12 significant ones
    (``:g``'s six logged a US30 fill at 44123.45 as 44123.4, a price the deal never had), so
    none of a float's noise. ``sign``: "+" to sign it, as a position is."""
    if not math.isfinite(value):
        return f"{value:{sign}g}"
    # + 0.0: a flat position of -0.0 says +0, as it did.
    return f"{Decimal(price_text(value + 0.0)).normalize():{sign}f}"


class TradeLogListener:
    """Logs the engine's events; passes each on to the listener it was put in front of."""

    def __init__(self, bot: str, currency: str = "") -> None:
        self.bot = bot
        self.currency = currency
        self.engine: Engine | None = None
        self.inner: EngineListener | None = None
        self._trades_seen = 0

    def attach(self, engine: Engine) -> None:
        self.engine = engine
        self.inner = engine.listener
        self._trades_seen = len(engine.portfolio.trades)
        engine.listener = self

    def _log(self, level: int, message: str, **fields: Any) -> None:
        fields = {"bot": self.bot, **fields}
        log.log(level, message, extra={"fields": fields})

    def on_order(self, order: Order, update: OrderUpdate) -> None:
        kind = order.tag or str(order.order_type.value)
        price = f" @ {number_text(order.price)}" if order.price is not None else ""
        reason = f" ({update.reason})" if update.reason else ""
        self._log(
            logging.INFO,
            f"order {update.status.value}: {order.side.value} {number_text(order.quantity)}"
            f" {order.symbol}"
            f" {kind}{price}{reason}",
            event="order",
            status=update.status.value,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side.value,
            quantity=order.quantity,
            order_type=order.order_type.value,
            tag=order.tag,
            price=order.price,
            reason=update.reason,
            bar_time=_time(update.ts),
        )
        if self.inner is not None:
            self.inner.on_order(order, update)

    def on_fill(self, fill: Fill, order: Order | None, position: Position) -> None:
        reason = fill.reason or "fill"
        self._log(
            logging.INFO,
            f"fill: {fill.side.value} {number_text(fill.quantity)} {fill.symbol}"
            f" @ {number_text(fill.price)} ({reason}), fee {fill.fee:.2f};"
            f" position {number_text(position.quantity, '+')}",
            event="fill",
            client_order_id=fill.client_order_id,
            symbol=fill.symbol,
            side=fill.side.value,
            quantity=fill.quantity,
            price=fill.price,
            fee=fill.fee,
            reason=fill.reason,
            position=position.quantity,
            bar_time=_time(fill.ts),
        )
        if self.engine is not None:
            trades = self.engine.portfolio.trades
            # The trades a restart restored were closed by earlier runs (and logged by them):
            # attached before the restore, the listener would take them for this fill's.
            for trade in trades[max(self._trades_seen, self.engine.carried_trades) :]:
                side = "long" if trade.direction > 0 else "short"
                self._log(
                    logging.INFO,
                    f"trade closed: {side} {number_text(trade.quantity)} {trade.symbol}"
                    f" {number_text(trade.entry_price)} → {number_text(trade.exit_price)},"
                    f" net P&L {trade.net_pnl:+,.2f} {self.currency}".rstrip()
                    + f", exit {reason}",
                    event="trade_closed",
                    symbol=trade.symbol,
                    direction=side,
                    quantity=trade.quantity,
                    entry_price=trade.entry_price,
                    exit_price=trade.exit_price,
                    pnl=trade.net_pnl,
                    fees=trade.fees,
                    currency=self.currency,
                    exit_reason=reason,
                    entry_time=_time(trade.entry_ts),
                    bar_time=_time(trade.exit_ts),
                )
            self._trades_seen = len(trades)
        if self.inner is not None:
            self.inner.on_fill(fill, order, position)

    def on_risk(
        self, plugin: str, intent: OrderIntent, decision: RiskDecision, order_id: str
    ) -> None:
        action = decision.action.value
        if action != "approve":
            self._log(
                logging.WARNING if action == "veto" else logging.INFO,
                f"risk {action} by {plugin}: {intent.side.value} {intent.symbol}"
                f" — {decision.reason}",
                event="risk",
                action=action,
                plugin=plugin,
                code=decision.code,
                symbol=intent.symbol,
                side=intent.side.value,
                reason=decision.reason,
                client_order_id=order_id,
            )
        if self.inner is not None:
            self.inner.on_risk(plugin, intent, decision, order_id)

    def on_state(self, kind: str, message: str) -> None:
        self._log(logging.WARNING, f"state {kind}: {message}", event="state", state=kind)
        if self.inner is not None:
            self.inner.on_state(kind, message)

    def on_cash_flow(self, flow: CashFlow, booked: bool) -> None:
        self._log(
            logging.INFO if booked else logging.WARNING,
            f"{flow.kind}: {flow.amount:+,.8g} {flow.currency} for {flow.symbol}"
            + ("" if booked else f" (not booked: the bot books in {self.currency})"),
            event="cash_flow",
            kind=flow.kind,
            flow_id=flow.flow_id,
            symbol=flow.symbol,
            amount=flow.amount,
            currency=flow.currency,
            booked=booked,
            bar_time=_time(flow.ts),
        )
        if self.inner is not None:
            self.inner.on_cash_flow(flow, booked)


def log_phase(bot: str, phase: str, detail: str = "") -> None:
    """One line when a bot's phase changes (Starting, Running, Stopping, Stopped, Failed)."""
    message = f"phase {phase}" + (f": {detail}" if detail else "")
    level = logging.ERROR if phase == "Failed" else logging.INFO
    log.log(level, message, extra={"fields": {"bot": bot, "event": "phase", "phase": phase}})


class RunProgress:
    """A one-line progress display on a terminal for ``tradefleet run``: the last bar's time,
    bars, fills, closed trades and equity; refreshed at most 10 times a second."""

    def __init__(self, console: Console, currency: str) -> None:
        self.console = console
        self.currency = currency
        self.engine: Engine | None = None

    def prepare(self, engine: Engine) -> None:
        self.engine = engine

    def wrap(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        columns = (SpinnerColumn(), TextColumn("{task.description}"))
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task("starting", total=None)
            shown = 0.0
            for count, bar in enumerate(bars, start=1):
                yield bar
                now = time.monotonic()
                if now - shown >= 0.1:
                    shown = now
                    progress.update(task, description=self._line(bar, count))

    def _line(self, bar: Bar, count: int) -> str:
        engine = self.engine
        if engine is None:
            return f"{_time(bar.ts)} · {count:,} bars"
        portfolio = engine.portfolio
        return (
            f"{_time(bar.ts)} · {count:,} bars · {engine.stats.fills:,} fills ·"
            f" {len(portfolio.trades):,} trades · equity {portfolio.equity():,.2f} {self.currency}"
        )
