"""``external-signal``: trades signals pushed from outside (webhook or the gRPC ``SubmitSignal``).

Both paths reach :meth:`ExternalSignal.on_signal` through the service's one code path. A signal
is checked against the market before anything is sent: a symbol the bot trades, a price seen,
stop and target on the right sides of the entry, an entry near the last price, fresh enough,
confident enough. Then it becomes an order with its stop-loss and take-profit attached, and
passes the bot's risk chain like every other order.

Without ``allow_pyramiding`` one entry per symbol and direction is in play at a time: a signal is
refused while the position is open that way *or* an entry order that way is still working (sent,
resting, partly filled). Signals arrive between bars, before a market entry fills, so the
position alone would let a burst of them stack entries far beyond what each was sized for.

A signal the other way meets the working entry as it meets the position: without
``reverse_on_opposite`` it is refused; with it, the working entry is cancelled (with the
brackets of any part of it that filled, which is then closed) before the new entry is sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from decimal import Decimal

from tradefleet_plugins.strategies.external_signal_params import (
    EntryOrder,
    ExternalSignalParams,
    VolumeUnit,
)
from tradefleet_runtime.sdk import (
    Bar,
    Direction,
    Order,
    OrderType,
    Side,
    Signal,
    Strategy,
    StrategyContext,
)


def is_entry(order: Order) -> bool:
    """Whether ``order`` opens or adds to a position. A bracket's stop-loss and take-profit (its
    children) and a close are reduce-only: they protect or end a position, never grow it, so
    they must not block the next entry — nor an exit or reversal against them."""
    return not order.reduce_only and order.parent_id is None


def working_entry(orders: Iterable[Order], side: Side) -> Order | None:
    """The first of ``orders`` (the bot's working orders on one symbol) that is an entry on
    ``side``, or None. A cancelled, rejected or filled order has left the working orders."""
    return next((order for order in orders if order.side is side and is_entry(order)), None)


class ExternalSignal(Strategy):
    params: ExternalSignalParams

    def __init__(self, params: ExternalSignalParams) -> None:
        super().__init__(params)
        self._marks: dict[str, float] = {}

    def on_start(self, ctx: StrategyContext) -> None:
        self._marks = {}

    def on_bar(self, bar: Bar) -> None:
        self._marks[bar[0]] = bar[6]  # symbol → close, by index: this runs on every bar

    def check(self, signal: Signal, now: float) -> str | None:
        """Why ``signal`` is refused, or None. Pure: no orders are sent."""
        params = self.params
        if signal.symbol not in self.ctx.symbols:
            return (
                f"unknown symbol {signal.symbol!r} (the bot trades {', '.join(self.ctx.symbols)})"
            )
        mark = self._marks.get(signal.symbol)
        if mark is None:
            return f"no market price for {signal.symbol} yet"
        if signal.received_at and now - signal.received_at > params.max_signal_age_s:
            return f"signal is stale ({now - signal.received_at:.1f}s old)"
        if signal.confidence is not None and signal.confidence < params.min_confidence:
            return f"confidence {signal.confidence:.10g} is below {params.min_confidence:.10g}"
        entry, stop, target = signal.entry, signal.stop_loss, signal.take_profit
        if min(entry, stop, target) <= 0:
            return "prices must be positive"
        if signal.direction is Direction.BUY and not stop < entry < target:
            return "a BUY needs stop_loss < entry < take_profit"
        if signal.direction is Direction.SELL and not target < entry < stop:
            return "a SELL needs take_profit < entry < stop_loss"
        limit = params.max_entry_deviation_pct / 100.0
        for name, price in (("entry", entry), ("current_price", signal.current_price)):
            if price is not None and abs(price - mark) / mark > limit:
                return (
                    f"{name} {price:.10g} is {abs(price - mark) / mark:.2%} from the market "
                    f"price {mark:.10g}"
                )
        held = self.ctx.position(signal.symbol).quantity
        wants = 1 if signal.direction is Direction.BUY else -1
        if held and (held > 0) == (wants > 0) and not params.allow_pyramiding:
            return f"already {'long' if held > 0 else 'short'} {signal.symbol}"
        if not params.allow_pyramiding:
            # The position counts only what filled: an entry still working (a market order
            # waiting for the next bar, a resting limit) would fill on top of a second one.
            side = Side.BUY if wants > 0 else Side.SELL
            working = working_entry(self.ctx.open_orders(signal.symbol), side)
            if working is not None:
                return (
                    f"a {side} entry for {signal.symbol} is already working "
                    f"({working.client_order_id}); allow_pyramiding is off"
                )
        if not params.reverse_on_opposite:
            if held and (held > 0) != (wants > 0):
                return f"signal is against the open {'long' if held > 0 else 'short'} position"
            # An entry the other way still working becomes that position at its fill: let
            # through, the two net out at the venue (a zero-length trade) and both brackets
            # stay working around what is left, unhedged. Refused as the position would be.
            against = working_entry(
                self.ctx.open_orders(signal.symbol), Side.SELL if wants > 0 else Side.BUY
            )
            if against is not None:
                return (
                    f"signal is against the working {against.side} entry for {signal.symbol} "
                    f"({against.client_order_id}); reverse_on_opposite is off"
                )
        return None

    def reverses(self, signal: Signal) -> bool:
        """Whether ``signal`` (accepted) goes against the open position or an entry the other
        way still working: what ``reverse_on_opposite`` ends before entering."""
        ctx = self.ctx
        held = ctx.position(signal.symbol).quantity
        buying = signal.direction is Direction.BUY
        if held and (held > 0) != buying:
            return True
        other = Side.SELL if buying else Side.BUY
        return working_entry(ctx.open_orders(signal.symbol), other) is not None

    def quantity(self, signal: Signal) -> float | None:
        """The order's quantity (units of the base asset, as every quantity of the bot) for
        the signal's volume; None: the bot's sizer decides. ``volume_unit: lots`` reads it as
        venue lots (an MT5 sender's ``"volume": 0.01``) and multiplies by the instrument's
        contract size."""
        volume = signal.volume
        if volume is None or self.params.volume_unit is VolumeUnit.UNITS:
            return volume
        contract = self.ctx.instrument(signal.symbol).contract_size
        # The product of the numbers as written: 0.07 lot is 7000 units, not 7000.000000000001.
        return float(Decimal(repr(volume)) * Decimal(repr(contract)))

    def on_signal(self, signal: Signal) -> str | None:
        """Queue the signal's order, or return why it is refused."""
        refusal = self.check(signal, time.time())
        if refusal:
            return refusal
        ctx = self.ctx
        buying = signal.direction is Direction.BUY
        if self.reverses(signal):
            # Only a signal against the position or a working entry the other way (check() let
            # it through because of reverse_on_opposite) ends it first. A same-direction signal
            # (allow_pyramiding) adds to it: closing would also cancel the earlier entries'
            # SL/TP orders. ``close`` cancels the symbol's working orders (the other way's
            # entry, and the brackets of what of it filled) and sends a reduce-only exit for
            # what is held, none when flat: the reversal of an entry not filled yet is its
            # cancellation, then the new entry.
            ctx.close(signal.symbol, tag="signal-reverse")
        limit = self.params.entry_order is EntryOrder.LIMIT
        send = ctx.buy if buying else ctx.sell
        send(
            signal.symbol,
            self.quantity(signal),
            order_type=OrderType.LIMIT if limit else OrderType.MARKET,
            price=signal.entry if limit else None,
            stop_loss=signal.stop_loss,
            take_profit=signal.take_profit,
            tag=(signal.pattern_type or "signal")[:24],
        )
        return None
