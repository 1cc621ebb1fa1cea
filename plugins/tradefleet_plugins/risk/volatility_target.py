"""``volatility-target``: size so that ``atr_multiple`` ATRs against the order lose
``risk_per_trade`` of equity; quieter markets get larger orders, wilder ones smaller."""

from __future__ import annotations

from tradefleet_plugins.risk.sizing import (
    closed_by_exits,
    fill_costs,
    leverage_cap,
    leverage_capped,
    scaled,
    sized,
    sized_within_leverage,
)
from tradefleet_plugins.risk.volatility_target_params import VolatilityTargetParams
from tradefleet_runtime.sdk import Bar, OrderIntent, RiskContext, RiskDecision

# A plain approval: one immutable value, shared (no allocation per intent).
APPROVE = RiskDecision.approve()


class Atr:
    """Wilder's average true range, one update per closed bar (None until warmed up)."""

    __slots__ = ("_close", "_count", "_period", "_sum", "value")

    def __init__(self, period: int) -> None:
        self._period = period
        self._close: float | None = None
        self._count = 0
        self._sum = 0.0
        self.value: float | None = None

    def add(self, high: float, low: float, close: float) -> None:
        previous = self._close
        true_range = high - low
        if previous is not None:
            true_range = max(true_range, abs(high - previous), abs(low - previous))
        self._close = close
        if self.value is None:
            self._count += 1
            self._sum += true_range
            if self._count >= self._period:
                self.value = self._sum / self._period
        else:
            self.value += (true_range - self.value) / self._period


def volatility_quantity(
    equity: float, atr: float, by_leverage: float, p: VolatilityTargetParams
) -> float:
    """The quantity losing ``risk_per_trade`` of equity over ``atr_multiple`` ATRs, at most
    ``by_leverage`` (the sizers' leverage cut, ``sizing.leverage_cap``)."""
    if equity <= 0 or by_leverage <= 0 or atr <= 0:
        return 0.0
    return min(equity * p.risk_per_trade / (p.atr_multiple * atr), by_leverage)


class VolatilityTarget:
    def __init__(self, params: VolatilityTargetParams) -> None:
        self.params = params
        self._atr: dict[str, Atr] = {}

    def on_bar(self, bar: Bar) -> None:
        atr = self._atr.get(bar[0])
        if atr is None:
            atr = self._atr[bar[0]] = Atr(self.params.atr_period)
        atr.add(bar[4], bar[5], bar[6])

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only:
            return APPROVE
        if intent.quantity is not None:
            return sized_within_leverage(intent, ctx, self.params.max_leverage, "volatility-target")
        atr = self._atr.get(intent.symbol)
        if atr is None or atr.value is None:
            return RiskDecision.veto(
                f"volatility-target: ATR({self.params.atr_period}) of {intent.symbol} not "
                "ready yet",
                "atr_not_ready",
            )
        price = intent.price or ctx.mark(intent.symbol)
        p = self.params
        by_leverage = leverage_cap(intent, ctx, price, p.max_leverage)
        quantity = volatility_quantity(ctx.equity, atr.value, by_leverage, p)
        capped = ""
        if quantity > 0:
            by_risk = ctx.equity * p.risk_per_trade / (p.atr_multiple * atr.value)
            costs = fill_costs(intent, ctx.instrument)
            closing = closed_by_exits(intent, ctx)
            capped = leverage_capped(by_risk, quantity, p.max_leverage, costs, closing)
        quantity = scaled(quantity, intent, p.scale_by_confidence)
        return sized(
            quantity,
            ctx.instrument,
            f"risk {p.risk_per_trade:.2%} over {p.atr_multiple:.10g} ATR "
            f"({atr.value:.10g}){capped}",
        )
