"""The paper broker: a simulated venue with the same contract as the real brokers.

Fill rules (the engine's promise to strategy authors):
- An order is worked only on bars that open at or after the time it was sent, so a signal
  taken at a bar's close can never fill inside that bar.
- Market orders fill at the next bar's open, moved against the taker by ``slippage_bps``.
- Limit orders fill at their price when the bar trades through it, or at the open if the bar
  opens beyond it (a better price). No slippage; ``maker_fee_bps``.
- Stop orders trigger when the bar trades through the stop and fill at the stop (or at the
  open when the bar gaps through it), plus slippage.
- Stop-loss and take-profit of a filled entry are one-cancels-other children. When both lie
  inside one bar the worse (the stop-loss) is taken, unless the bar opened beyond one of them.
  Children of an entry that filled inside a bar (not at its open) may only stop out on that
  same bar: the path after the entry is unknown, so the worse outcome is assumed.
- A fill that would leave margin (gross notional / leverage) above equity is rejected.

It implements the real venues' contract (``venue-execution``) as its reference: refusals and
cancels carry a ``ReasonCode``, orders can be queried by client order id, amended and cancelled
per symbol, and it reports orders, fills and positions as a venue would. Its answers are
immediate (no network), so ``submit`` returns OPEN or REJECTED rather than PENDING.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tradefleet_plugins.brokers.paper_params import InstrumentParams, PaperBrokerParams
from tradefleet_runtime.sdk import (
    Bar,
    BrokerContext,
    Fill,
    Instrument,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    PositionReport,
    ReasonCode,
    Side,
    apply_fill,
    bracket_children,
)

_EMPTY: tuple[Fill | OrderUpdate, ...] = ()


@dataclass
class _Working:
    order: Order
    stop_only_from: int = 0  # children of an intrabar entry: only the stop may trigger before


class PaperBroker:
    """Simulated account used by backtest and paper bots."""

    def __init__(self, params: PaperBrokerParams) -> None:
        self.params = params
        self._fee = params.fee_bps / 10_000.0
        self._maker_fee = (
            params.maker_fee_bps if params.maker_fee_bps is not None else params.fee_bps
        ) / 10_000.0
        self._slip = params.slippage_bps / 10_000.0
        self._cash = 0.0
        self._positions: dict[str, Position] = {}
        self._marks: dict[str, float] = {}
        self._working: dict[str, list[_Working]] = {}
        self._by_id: dict[str, _Working] = {}
        self._known_ids: set[str] = set()
        self._fill_count = 0
        self._now = 0
        self._instruments: dict[str, Instrument] = {}
        # For the venue's reports: every order sent, what of it filled (quantity, notional),
        # how it ended (status, ts), and the executions. Kept as plain references and tuples:
        # reports are built only when asked, so the per-order path pays next to nothing.
        self._orders: dict[str, Order] = {}
        self._filled: dict[str, tuple[float, float]] = {}
        self._final: dict[str, tuple[OrderStatus, int]] = {}
        self._fills: list[Fill] = []
        self._queued: list[Fill | OrderUpdate] = []
        # A backtest asks no venue questions: its report comes from the journal. Keeping every
        # order and fill of a million-bar run in memory would cost tens of megabytes for nothing.
        self._keep = True

    # -- Broker protocol ---------------------------------------------------------------------

    def connect(self, ctx: BrokerContext) -> None:
        self._cash = ctx.initial_capital
        self._keep = ctx.mode != "backtest"

    def instrument(self, symbol: str) -> Instrument:
        instrument = self._instruments.get(symbol)
        if instrument is None:
            limits: InstrumentParams = self.params.instruments.get(
                symbol, self.params.default_instrument
            )
            instrument = self._instruments[symbol] = Instrument(
                symbol=symbol,
                tick_size=limits.tick_size,
                lot_step=limits.lot_step,
                min_quantity=limits.min_quantity,
                min_notional=limits.min_notional,
            )
        return instrument

    def submit(self, order: Order) -> OrderUpdate:
        order_id = order.client_order_id
        if order_id in self._known_ids:
            # The venue's answer to a retried id: refuse, never create a second order.
            return OrderUpdate(
                order_id,
                OrderStatus.REJECTED,
                order.created_ts,
                "duplicate client order id",
                code=ReasonCode.DUPLICATE_CLIENT_ID,
            )
        self._known_ids.add(order_id)
        if self._keep:
            self._orders[order_id] = order
        problem = self._validate(order)
        if problem:
            self._final[order_id] = (OrderStatus.REJECTED, order.created_ts)
            return OrderUpdate(
                order_id, OrderStatus.REJECTED, order.created_ts, problem[1], code=problem[0]
            )
        self._work(_Working(order))
        return OrderUpdate(order_id, OrderStatus.OPEN, order.created_ts, venue_order_id=order_id)

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        working = self._by_id.pop(client_order_id, None)
        if working is None:
            return None
        self._working[working.order.symbol].remove(working)
        self._final[client_order_id] = (OrderStatus.CANCELLED, self._now)
        return OrderUpdate(
            client_order_id,
            OrderStatus.CANCELLED,
            self._now,
            "cancelled",
            code=ReasonCode.CANCELLED_BY_USER,
        )

    # -- venue-execution: the real venues' contract, answered from memory --------------------

    def drain_events(self) -> Sequence[Fill | OrderUpdate]:
        events, self._queued = self._queued, []
        return events

    def query_order(self, client_order_id: str) -> OrderReport | None:
        order = self._orders.get(client_order_id)
        return None if order is None else self._report(order)

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        return [
            self._report(order)
            for order_id, order in self._orders.items()
            if order_id in self._by_id or self._final.get(order_id, (None, 0))[1] >= since_ts
        ]

    def fill_reports(self, since_ts: int) -> Sequence[Fill]:
        return [fill for fill in self._fills if fill.ts >= since_ts]

    def position_reports(self) -> Sequence[PositionReport]:
        return [
            PositionReport(s, p.quantity, p.average_price, self._now)
            for s, p in self._positions.items()
            if p.quantity
        ]

    def cancel_all(self, symbol: str | None) -> None:
        for working in list(self._by_id.values()):
            if symbol is None or working.order.symbol == symbol:
                update = self.cancel(working.order.client_order_id)
                if update is not None:
                    self._queued.append(update)

    def amend(
        self, client_order_id: str, quantity: float | None, price: float | None
    ) -> OrderUpdate | None:
        """Native amend: the order keeps its id and its place (a simulator has no queue)."""
        working = self._by_id.get(client_order_id)
        if working is None:
            return OrderUpdate(
                client_order_id,
                OrderStatus.REJECTED,
                self._now,
                "no working order with this client order id",
                code=ReasonCode.UNKNOWN_ORDER,
            )
        changed = working.order
        if quantity is not None:
            changed = changed._replace(quantity=quantity)
        if price is not None:
            changed = changed._replace(price=price)
        problem = self._validate(changed)
        if problem:
            # The order stays as it was, still working: a refused amend changes nothing.
            return OrderUpdate(
                client_order_id,
                OrderStatus.OPEN,
                self._now,
                f"amend refused: {problem[1]}",
                code=problem[0],
            )
        working.order = changed
        self._orders[client_order_id] = changed
        return OrderUpdate(client_order_id, OrderStatus.OPEN, self._now, "amended", client_order_id)

    def is_connected(self) -> bool:
        return True

    def _report(self, order: Order) -> OrderReport:
        order_id = order.client_order_id
        filled, notional = self._filled.get(order_id, (0.0, 0.0))
        if order_id in self._by_id:
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.OPEN
            ts = order.created_ts
        else:
            status, ts = self._final.get(order_id, (OrderStatus.FILLED, order.created_ts))
        return OrderReport(
            client_order_id=order_id,
            venue_order_id=order_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            quantity=order.quantity,
            filled_quantity=filled,
            status=status,
            ts=ts,
            price=order.price,
            average_price=notional / filled if filled else None,
            reduce_only=order.reduce_only,
        )

    def open_orders(self) -> Sequence[Order]:
        return [w.order for w in self._by_id.values()]

    def positions(self) -> dict[str, Position]:
        return {
            s: Position(s, p.quantity, p.average_price, p.realized_pnl, p.opened_ts)
            for s, p in self._positions.items()
            if p.quantity
        }

    def balance(self) -> float:
        return self._cash

    def close(self) -> None:
        """Nothing to release: the simulated account lives in memory."""

    def restore_account(self, fills: Sequence[Fill]) -> None:
        """Rebuild the simulated account from the bot's journaled fills (after a restart)."""
        for fill in fills:
            self._book(fill)
        self._fill_count = len(fills)

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate]:
        symbol = bar[0]
        if symbol in self._positions:
            self._marks[symbol] = bar[6]
        working = self._working.get(symbol)
        if not working:
            return _EMPTY
        return self._match(bar, working)

    # -- matching ----------------------------------------------------------------------------

    def _validate(self, order: Order) -> tuple[ReasonCode, str] | None:
        if order.quantity <= 0 or order.quantity != order.quantity:
            return ReasonCode.INVALID_QUANTITY, f"quantity must be positive, got {order.quantity}"
        if order.order_type is not OrderType.MARKET and (order.price is None or order.price <= 0):
            return ReasonCode.INVALID_PRICE, f"{order.order_type} order needs a positive price"
        limits = self.instrument(order.symbol)
        if limits.min_quantity and order.quantity < limits.min_quantity:
            return (
                ReasonCode.BELOW_MIN_QUANTITY,
                f"quantity {order.quantity:g} below minimum {limits.min_quantity:g}",
            )
        return None

    def _work(self, working: _Working) -> None:
        self._working.setdefault(working.order.symbol, []).append(working)
        self._by_id[working.order.client_order_id] = working

    def _drop(self, working: _Working) -> None:
        self._by_id.pop(working.order.client_order_id, None)
        self._working[working.order.symbol].remove(working)

    def _match(self, bar: Bar, working: list[_Working]) -> list[Fill | OrderUpdate]:
        self._now = bar.ts
        events: list[Fill | OrderUpdate] = []
        eligible = [w for w in working if w.order.created_ts <= bar.ts]
        if not eligible:
            return events
        # 1. Market orders at the open.
        for item in eligible:
            if (
                item.order.order_type is OrderType.MARKET
                and item.order.client_order_id in self._by_id
            ):
                price = bar.open * (
                    1.0 + self._slip if item.order.side is Side.BUY else 1.0 - self._slip
                )
                self._execute(item, price, bar, self._fee, "market", events, at_open=True)
        # 2. Resting orders; one-cancels-other groups resolved together. Children born in a pass
        # (brackets of an entry that just filled) get their own pass over the same bar.
        seen: set[str] = set()
        for _pass in range(3):
            resting = [
                w
                for w in self._working.get(bar.symbol, ())
                if w.order.created_ts <= bar.ts
                and w.order.order_type is not OrderType.MARKET
                and w.order.client_order_id not in seen
            ]
            if not resting:
                break
            seen.update(w.order.client_order_id for w in resting)
            self._match_resting(bar, resting, events)
        return events

    def _trigger(self, order: Order, bar: Bar) -> tuple[float, bool] | None:
        """(fill price, triggered at the open) if ``bar`` triggers ``order``, else None."""
        price = order.price
        assert price is not None
        buy = order.side is Side.BUY
        if order.order_type is OrderType.LIMIT:
            if (bar.open <= price) if buy else (bar.open >= price):
                return bar.open, True
            if (bar.low <= price) if buy else (bar.high >= price):
                return price, False
            return None
        # stop
        if (bar.open >= price) if buy else (bar.open <= price):
            base, at_open = bar.open, True
        elif (bar.high >= price) if buy else (bar.low <= price):
            base, at_open = price, False
        else:
            return None
        return base * (1.0 + self._slip if buy else 1.0 - self._slip), at_open

    def _match_resting(
        self, bar: Bar, resting: list[_Working], events: list[Fill | OrderUpdate]
    ) -> None:
        triggered: list[tuple[int, _Working, float, bool]] = []
        for item in resting:
            if item.stop_only_from > bar.ts and item.order.order_type is not OrderType.STOP:
                continue
            hit = self._trigger(item.order, bar)
            if hit is not None:
                price, at_open = hit
                # At-open triggers happened first; then stops before limits (the worse outcome).
                rank = 0 if at_open else (1 if item.order.order_type is OrderType.STOP else 2)
                triggered.append((rank, item, price, at_open))
        triggered.sort(key=lambda entry: entry[0])
        for _rank, item, price, at_open in triggered:
            if item.order.client_order_id not in self._by_id:
                continue  # cancelled by its OCO sibling
            fee = self._maker_fee if item.order.order_type is OrderType.LIMIT else self._fee
            reason = item.order.tag or item.order.order_type.value
            self._execute(item, price, bar, fee, reason, events, at_open=at_open)

    def _execute(
        self,
        item: _Working,
        price: float,
        bar: Bar,
        fee_rate: float,
        reason: str,
        events: list[Fill | OrderUpdate],
        *,
        at_open: bool,
    ) -> None:
        order = item.order
        position = self._positions.get(order.symbol)
        held = position.quantity if position else 0.0
        quantity = order.quantity
        if order.reduce_only:
            reducible = -held if order.side is Side.BUY else held
            if reducible <= 0:
                self._drop(item)
                events.append(
                    OrderUpdate(
                        order.client_order_id,
                        OrderStatus.CANCELLED,
                        bar.ts,
                        "reduce-only order: no position to reduce",
                        code=ReasonCode.REDUCE_ONLY,
                    )
                )
                self._final[order.client_order_id] = (OrderStatus.CANCELLED, bar.ts)
                self._cancel_group(order, bar, events)
                return
            quantity = min(quantity, reducible)
        fee = quantity * price * fee_rate
        signed = quantity if order.side is Side.BUY else -quantity
        if abs(held + signed) > abs(held) and not self._margin_ok(
            order.symbol, held + signed, price, fee
        ):
            self._drop(item)
            events.append(
                OrderUpdate(
                    order.client_order_id,
                    OrderStatus.REJECTED,
                    bar.ts,
                    "insufficient margin",
                    code=ReasonCode.INSUFFICIENT_FUNDS,
                )
            )
            self._final[order.client_order_id] = (OrderStatus.REJECTED, bar.ts)
            return
        self._drop(item)
        self._fill_count += 1
        fill = Fill(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=fee,
            ts=bar.ts,
            fill_id=f"{order.client_order_id}-f{self._fill_count}",
            reason=reason,
        )
        self._book(fill)
        if self._keep:
            self._fills.append(fill)
            self._filled[order.client_order_id] = (quantity, quantity * price)
            self._final[order.client_order_id] = (
                OrderStatus.FILLED if quantity >= order.quantity else OrderStatus.CANCELLED,
                bar.ts,
            )
        events.append(fill)
        if quantity < order.quantity:
            # A reduce-only order cut to the position: the rest is gone, and the bot must know
            # (it would otherwise count a working remainder, e.g. as a stop protecting a later
            # position, that the venue no longer holds).
            events.append(
                OrderUpdate(
                    order.client_order_id,
                    OrderStatus.CANCELLED,
                    bar.ts,
                    f"reduce-only: {order.quantity - quantity:g} more would have opened a position",
                    code=ReasonCode.REDUCE_ONLY,
                )
            )
        self._cancel_group(order, bar, events)
        if order.stop_loss is not None or order.take_profit is not None:
            self._open_bracket(order, quantity, bar, at_open)

    def _margin_ok(self, symbol: str, new_quantity: float, price: float, fee: float) -> bool:
        exposure = abs(new_quantity) * price
        equity = self._cash - fee
        for other, position in self._positions.items():
            mark = price if other == symbol else self._marks.get(other, position.average_price)
            if other != symbol:
                exposure += abs(position.quantity) * mark
            equity += position.quantity * mark
        return exposure / self.params.leverage <= equity

    def _book(self, fill: Fill) -> None:
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        self._cash -= signed * fill.price + fill.fee
        position = self._positions.get(fill.symbol)
        if position is None:
            position = self._positions[fill.symbol] = Position(fill.symbol)
        apply_fill(position, fill)
        self._marks[fill.symbol] = fill.price

    def _cancel_group(self, order: Order, bar: Bar, events: list[Fill | OrderUpdate]) -> None:
        if order.oco_group is None:
            return
        for sibling in list(self._working.get(order.symbol, ())):
            if sibling.order.oco_group == order.oco_group:
                self._drop(sibling)
                events.append(
                    OrderUpdate(
                        sibling.order.client_order_id,
                        OrderStatus.CANCELLED,
                        bar.ts,
                        "one-cancels-other sibling filled",
                        code=ReasonCode.CANCELLED_BY_VENUE,
                    )
                )
                self._final[sibling.order.client_order_id] = (OrderStatus.CANCELLED, bar.ts)

    def _open_bracket(self, parent: Order, quantity: float, bar: Bar, at_open: bool) -> None:
        for child in bracket_children(parent, quantity, bar.ts):
            self._known_ids.add(child.client_order_id)
            if self._keep:
                self._orders[child.client_order_id] = child
            # Entered at the open: the whole bar is after the entry. Entered inside the bar: only
            # the worse outcome (the stop) may still happen in it.
            self._work(_Working(child, stop_only_from=0 if at_open else bar.ts + bar.timeframe_s))
