"""Account accounting: cash, net positions, marks, equity, round-trip trades.

Cash is kept spot-style: a buy pays ``quantity × price`` out of cash and a sell receives it, so
``equity = cash + Σ quantity × mark`` holds at every instant for longs and shorts alike (a
short has negative quantity). A venue's payments outside fills (funding) go into cash alone.
Margin is then ``Σ |quantity| × mark / leverage``.

Payments a venue accrues on an open position and books only when it closes (an MT5 swap) are
marks, like prices: ``equity = cash + Σ quantity × mark + Σ accrued``, cash untouched until the
payment is booked. Booking it takes it out of the accrual (``accrual_after_payment``) and a
position that ends drops its accrual, so equity never counts a payment twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from tradefleet_runtime.accounting import FillEffect, apply_fill
from tradefleet_runtime.model import END_OF_DATA, Fill, Position, Trade


def accrual_after_payment(accrued: float, paid: float) -> float:
    """What stays accrued on a position after the venue booked ``paid`` of it (a partial
    close's share of its swap, now in cash): the rest of the mark until the venue reports its
    new total. Never past zero: a payment beyond the accrual the bot knew (a mark older than
    the payment) leaves nothing, not a mark of the other sign."""
    left = accrued - paid
    return left if left * accrued > 0.0 else 0.0


def accruals_total(accrued: Mapping[str, float]) -> float:
    """What equity adds for the accruals of every position (summed exactly: a few symbols)."""
    return math.fsum(accrued.values())


@dataclass
class _OpenTrade:
    direction: int
    entry_ts: int
    entry_reason: str = ""
    quantity: float = 0.0  # largest size held during the trade
    entry_value: float = 0.0
    entry_qty: float = 0.0
    exit_value: float = 0.0
    exit_qty: float = 0.0
    gross: float = 0.0
    fees: float = 0.0
    funding: float = 0.0


@dataclass
class Portfolio:
    """The bot's own view of its account, updated from fills and marked on every bar."""

    cash: float
    leverage: float = 1.0
    positions: dict[str, Position] = field(default_factory=dict)
    open_positions: dict[str, Position] = field(default_factory=dict)  # quantity != 0 only
    marks: dict[str, float] = field(default_factory=dict)
    fees_paid: float = 0.0
    # The venue's payments outside fills booked into cash (funding; + received, - paid).
    cash_flows: float = 0.0
    # Payments accrued on open positions and not booked yet, by symbol (MT5 swaps; + owed to
    # the account, - owed by it): marks the venue reports, in equity, never in cash. Their
    # sum is kept apart, so equity adds one float (it is on the backtest's hot path).
    accrued: dict[str, float] = field(default_factory=dict)
    accrued_total: float = 0.0
    trades: list[Trade] = field(default_factory=list)
    _open_trades: dict[str, _OpenTrade] = field(default_factory=dict)
    # Bumped by every fill: what a copy of the positions was taken at (risk_snapshot.py).
    version: int = field(default=0, compare=False)

    def position(self, symbol: str) -> Position:
        position = self.positions.get(symbol)
        if position is None:
            position = self.positions[symbol] = Position(symbol)
        return position

    def equity(self) -> float:
        value = self.cash + self.accrued_total
        marks = self.marks
        for symbol, position in self.open_positions.items():
            value += position.quantity * marks.get(symbol, position.average_price)
        return value

    def exposure(self) -> float:
        """Gross notional of open positions at their marks."""
        marks = self.marks
        return sum(
            abs(p.quantity) * marks.get(s, p.average_price) for s, p in self.open_positions.items()
        )

    def equity_and_exposure(self) -> tuple[float, float]:
        equity = self.cash + self.accrued_total
        exposure = 0.0
        marks = self.marks
        for symbol, position in self.open_positions.items():
            value = position.quantity * marks.get(symbol, position.average_price)
            equity += value
            exposure += value if value > 0.0 else -value
        return equity, exposure

    def used_margin(self) -> float:
        return self.exposure() / self.leverage

    def open_symbols(self) -> list[str]:
        return list(self.open_positions)

    def apply(self, fill: Fill) -> FillEffect:
        """Book a fill: cash, fees, position, and round-trip trade records."""
        signed = fill.quantity if fill.side == "buy" else -fill.quantity
        self.cash -= signed * fill.price + fill.fee
        self.fees_paid += fill.fee
        self.version += 1
        position = self.position(fill.symbol)
        effect = apply_fill(position, fill)
        if position.quantity:
            self.open_positions[fill.symbol] = position
        else:
            self.open_positions.pop(fill.symbol, None)
        if self.accrued and (
            not position.quantity or (effect.closed_quantity and effect.opened_quantity)
        ):
            # The position ended (closed, or reversed into a new one): what it accrued was
            # booked by its closing payment, which the venue reports before the fill.
            self.set_accrual(fill.symbol, 0.0)
        self._record_trade(fill, effect)
        return effect

    def book_cash_flow(self, amount: float, symbol: str) -> None:
        """A payment the venue made outside fills (funding of ``symbol``'s position): cash,
        and the net P&L of the trade holding the position; no position changes. A payment the
        position had accrued leaves its accrual (``accrual_after_payment``)."""
        self.cash += amount
        self.cash_flows += amount
        self.version += 1
        trade = self._open_trades.get(symbol)
        if trade is not None:
            trade.funding += amount
        accrued = self.accrued.get(symbol)
        if accrued is not None:
            self.set_accrual(symbol, accrual_after_payment(accrued, amount))

    def set_accrual(self, symbol: str, amount: float) -> None:
        """The venue's newest total accrued on ``symbol``'s position: a mark, it replaces the
        previous one (0: none)."""
        if amount:
            self.accrued[symbol] = amount
        else:
            self.accrued.pop(symbol, None)
        self.accrued_total = accruals_total(self.accrued)

    def _record_trade(self, fill: Fill, effect: FillEffect) -> None:
        symbol = fill.symbol
        trade = self._open_trades.get(symbol)
        fee_share_close = (
            fill.fee * (effect.closed_quantity / fill.quantity) if fill.quantity else 0.0
        )
        if trade is not None and effect.closed_quantity:
            trade.exit_value += effect.closed_quantity * fill.price
            trade.exit_qty += effect.closed_quantity
            trade.gross += effect.realized_pnl
            trade.fees += fee_share_close
            if self.positions[symbol].quantity == 0.0 or effect.opened_quantity:
                self.trades.append(
                    Trade(
                        symbol=symbol,
                        direction=trade.direction,
                        quantity=trade.quantity,
                        entry_ts=trade.entry_ts,
                        exit_ts=fill.ts,
                        entry_price=trade.entry_value / trade.entry_qty,
                        exit_price=trade.exit_value / trade.exit_qty,
                        gross_pnl=trade.gross,
                        fees=trade.fees,
                        entry_reason=trade.entry_reason,
                        exit_reason=fill.reason,
                        funding=trade.funding,
                    )
                )
                del self._open_trades[symbol]
                trade = None
        opened = effect.opened_quantity
        if opened:
            fee_share_open = fill.fee - fee_share_close
            if trade is None:
                direction = 1 if fill.side == "buy" else -1
                trade = self._open_trades[symbol] = _OpenTrade(direction, fill.ts, fill.reason)
            trade.entry_value += opened * fill.price
            trade.entry_qty += opened
            trade.fees += fee_share_open
            trade.quantity = max(trade.quantity, abs(self.positions[symbol].quantity))

    def end_of_data_trades(self, ts: int) -> list[Trade]:
        """Every trade still open, as if closed at its mark at ``ts`` (reason ``END_OF_DATA``).

        For reports at the end of a backtest: the account is left as it is. No exit fee is
        charged, and what a position accrued (``accrued``) is its trade's funding, so the
        trades' net P&L adds up to the change of equity.
        """
        ended = []
        for symbol, trade in self._open_trades.items():
            position = self.positions[symbol]
            if not position.quantity:
                continue
            mark = self.marks.get(symbol, position.average_price)
            held = abs(position.quantity)
            exit_value = trade.exit_value + held * mark
            ended.append(
                Trade(
                    symbol=symbol,
                    direction=trade.direction,
                    quantity=trade.quantity,
                    entry_ts=trade.entry_ts,
                    exit_ts=ts,
                    entry_price=trade.entry_value / trade.entry_qty,
                    exit_price=exit_value / (trade.exit_qty + held),
                    gross_pnl=trade.gross + position.unrealized_pnl(mark),
                    fees=trade.fees,
                    entry_reason=trade.entry_reason,
                    exit_reason=END_OF_DATA,
                    funding=trade.funding + self.accrued.get(symbol, 0.0),
                )
            )
        return ended
