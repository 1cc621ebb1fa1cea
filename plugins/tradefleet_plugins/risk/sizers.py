"""Sizers: risk plugins that give unsized orders a quantity (and never grow a sized one)."""

from __future__ import annotations

from tradefleet_plugins.risk.sizers_params import FixedFractionalParams, FixedSizeParams
from tradefleet_plugins.risk.sizing import (
    closed_by_exits,
    closing_price,
    fill_costs,
    leverage_capped,
    sized_within_leverage,
)
from tradefleet_runtime.sdk import (
    OrderIntent,
    RiskContext,
    RiskDecision,
    fixed_fractional_quantity,
)

# A plain approval: one immutable value, shared (no allocation per intent).
APPROVE = RiskDecision.approve()


class FixedSize:
    """Every unsized order gets the same quantity (per symbol if configured).

    It reads the intent alone (capability ``intent-only``: the engine builds no account snapshot
    for it), and its decisions are immutable values made once per quantity.
    """

    def __init__(self, params: FixedSizeParams) -> None:
        self.params = params
        self._decisions: dict[float, RiskDecision] = {}

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.quantity is not None:
            return APPROVE
        quantity = self.params.per_symbol.get(intent.symbol, self.params.quantity)
        decision = self._decisions.get(quantity)
        if decision is None:
            decision = self._decisions[quantity] = RiskDecision.approve(quantity, "fixed size")
        return decision


class FixedFractional:
    """Risk a fixed fraction of equity per trade, measured to the order's stop-loss."""

    def __init__(self, params: FixedFractionalParams) -> None:
        self.params = params

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only:
            return APPROVE
        if intent.quantity is not None:
            return sized_within_leverage(intent, ctx, self.params.max_leverage, "fixed-fractional")
        price = intent.price or ctx.mark(intent.symbol)
        if price <= 0:
            return RiskDecision.veto(f"no price known for {intent.symbol} to size the order")
        if intent.stop_loss is not None:
            distance = abs(price - intent.stop_loss)
        else:
            distance = price * self.params.default_stop_pct
        p = self.params
        costs = fill_costs(intent, ctx.instrument)
        # A reversal's exit (``ctx.close``) fills first: the cap leaves room for its costs too,
        # at a market close's slippage and price, the mark (``sizing.leverage_cap`` does the
        # same for the others).
        closing = closed_by_exits(intent, ctx)
        quantity = fixed_fractional_quantity(
            ctx.equity,
            price,
            distance,
            p.risk_per_trade,
            p.max_leverage,
            *costs,
            closing,
            ctx.instrument.slippage,
            closing_price(intent, ctx, price),
        )
        if quantity <= 0:
            return RiskDecision.veto("equity or stop distance leaves nothing to trade")
        by_risk = ctx.equity * p.risk_per_trade / distance
        capped = leverage_capped(by_risk, quantity, p.max_leverage, costs, closing)
        return RiskDecision.approve(
            quantity, f"risk {p.risk_per_trade:.2%} of {ctx.equity:.2f}{capped}"
        )


__all__ = ["FixedFractional", "FixedSize", "fixed_fractional_quantity"]
