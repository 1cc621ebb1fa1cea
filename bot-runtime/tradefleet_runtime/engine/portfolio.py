"""Account accounting: cash, net positions, marks, equity, round-trip trades.

Cash is kept spot-style: a buy pays ``quantity × price`` out of cash and a sell receives it, so
``equity = cash + Σ quantity × mark`` holds at every instant for longs and shorts alike (a
short has negative quantity). A venue's payments outside fills (funding) go into cash alone.
Margin is then ``Σ |quantity| × mark / leverage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tradefleet_runtime.accounting import FillEffect, apply_fill
from tradefleet_runtime.model import END_OF_DATA, Fill, Position, Trade


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
        value = self.cash
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
        equity = self.cash
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
        self._record_trade(fill, effect)
        return effect

    def book_cash_flow(self, amount: float, symbol: str) -> None:
        """A payment the venue made outside fills (funding of ``symbol``'s position): cash,
        and the net P&L of the trade holding the position; no position changes."""
        self.cash += amount
        self.cash_flows += amount
        self.version += 1
        trade = self._open_trades.get(symbol)
        if trade is not None:
            trade.funding += amount

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
        charged, so the trades' net P&L adds up to the change of equity.
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
                    funding=trade.funding,
                )
            )
        return ended
