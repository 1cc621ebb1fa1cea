"""``kelly``: fractional Kelly sizing from the bot's own closed trades.

Full Kelly ``f* = W - (1 - W) / R`` (win rate ``W``, average win / average loss ``R``, net of
fees) over the most recent trades; the order risks ``fraction × f*`` of equity at its stop,
capped at ``max_risk`` and by leverage. No edge (``f* <= 0``) vetoes the entry.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradefleet_plugins.risk.kelly_params import KellyParams
from tradefleet_plugins.risk.sizing import (
    closed_by_exits,
    fill_costs,
    leverage_cap,
    leverage_capped,
    scaled,
    sized,
    sized_within_leverage,
)
from tradefleet_runtime.sdk import OrderIntent, RiskContext, RiskDecision, Trade

# A plain approval: one immutable value, shared (no allocation per intent).
APPROVE = RiskDecision.approve()


def kelly_fraction(pnls: Sequence[float]) -> float:
    """Full Kelly fraction of a list of trade P&Ls (0 when there is no loss or no win)."""
    wins = [p for p in pnls if p > 0]
    losses = [-p for p in pnls if p < 0]
    if not pnls or not wins:
        return 0.0
    if not losses:
        return 1.0
    win_rate = len(wins) / len(pnls)
    ratio = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
    return win_rate - (1.0 - win_rate) / ratio


class Kelly:
    def __init__(self, params: KellyParams) -> None:
        self.params = params
        self._trades: Sequence[Trade] = ()
        self._cached: tuple[int, float] = (-1, 0.0)
        # The last answer of risk_fraction (by trade count) and the last reason text: both are
        # the same on every intent until a trade closes, so they are formatted once.
        self._fraction: tuple[int, tuple[float, str]] = (-1, (0.0, ""))
        self._reason: tuple[float, str, str] = (0.0, "", "")

    def bind_trades(self, trades: Sequence[Trade]) -> None:
        self._trades = trades
        self._fraction = (-1, (0.0, ""))

    def risk_fraction(self) -> tuple[float, str]:
        p = self.params
        count = len(self._trades)
        if count < p.min_trades:
            return p.fallback_risk, f"{count} closed trade(s) < {p.min_trades}: fallback"
        if self._cached[0] != count:
            recent = self._trades[-p.lookback_trades :] if p.lookback_trades else self._trades
            self._cached = (count, kelly_fraction([t.net_pnl for t in recent]))
        full = self._cached[1]
        return min(p.max_risk, p.fraction * full), f"kelly {full:.3f} x {p.fraction:.10g}"

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only:
            return APPROVE
        if intent.quantity is not None:
            return sized_within_leverage(intent, ctx, self.params.max_leverage, "kelly")
        p = self.params
        count = len(self._trades)
        if self._fraction[0] != count:
            self._fraction = (count, self.risk_fraction())
        risk, why = self._fraction[1]
        if risk <= 0.0:
            return RiskDecision.veto(f"kelly: no edge to size on ({why})", "no_edge")
        price = intent.price or ctx.mark(intent.symbol)
        if price <= 0 or ctx.equity <= 0:
            return RiskDecision.veto(f"kelly: no price or equity to size {intent.symbol}")
        stop = abs(price - intent.stop_loss) if intent.stop_loss is not None else 0.0
        distance = stop or price * p.default_stop_pct
        by_risk = ctx.equity * risk / distance
        by_leverage = leverage_cap(intent, ctx, price, p.max_leverage)
        quantity = scaled(min(by_risk, by_leverage), intent, p.scale_by_confidence)
        if self._reason[0] != risk or self._reason[1] is not why:
            self._reason = (risk, why, f"risk {risk:.2%} of equity ({why})")
        costs = fill_costs(intent, ctx.instrument)
        capped = leverage_capped(
            by_risk, by_leverage, p.max_leverage, costs, closed_by_exits(intent, ctx)
        )
        return sized(quantity, ctx.instrument, self._reason[2] + capped)
