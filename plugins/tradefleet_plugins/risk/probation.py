"""``probation``: sizes shrink as the bot's rolling P&L over its last trades sinks.

Rolling loss (the last ``window_trades`` closed trades' net P&L over the equity before them):
below 5% sizes are untouched; from 5% ×0.5; from 10% ×0.25; beyond 15% the bot hibernates — no
new entries, a lock the engine journals and keeps across restarts until a person resets it
(the window then starts afresh from the next trade). Exits always pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_runtime.sdk import OrderIntent, RiskContext, RiskDecision, Trade

APPROVE = RiskDecision.approve()


def rolling_loss(pnls: Sequence[float], equity: float) -> float:
    """Loss of the window as a fraction of the equity before it (0 when it made money)."""
    total = sum(pnls)
    before = equity - total
    if total >= 0.0 or before <= 0.0:
        return 0.0
    return -total / before


def multiplier(loss: float, p: ProbationParams) -> float:
    """Size multiplier for a rolling loss: 1, 0.5, 0.25, or 0 (hibernate, beyond the last)."""
    eps = 1e-12
    if loss > p.hibernate_at + eps:
        return 0.0
    if loss >= p.quarter_at - eps:
        return 0.25
    if loss >= p.half_at - eps:
        return 0.5
    return 1.0


class Probation:
    def __init__(self, params: ProbationParams) -> None:
        self.params = params
        self._trades: Sequence[Trade] = ()
        self._from = 0  # trades before this index (a reset) no longer count
        self._hibernating = ""
        # The window's P&Ls and their sum by (trade count, reset index): they change only when
        # a trade closes.
        self._window: tuple[int, int, list[float], float] = (-1, -1, [], 0.0)
        # A window that made money is no loss, whatever the equity: its multiplier, once.
        self._at_no_loss = multiplier(0.0, params)

    def bind_trades(self, trades: Sequence[Trade]) -> None:
        self._trades = trades
        self._window = (-1, -1, [], 0.0)

    def lock_reason(self) -> str | None:
        return self._hibernating or None

    def reset_lock(self) -> str | None:
        self._hibernating = ""
        self._from = len(self._trades)
        return None

    def restore_lock(self, reason: str, since_ts: int) -> None:
        self._hibernating = reason
        self._from = len(self._trades)

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only:
            return APPROVE
        if self._hibernating:
            return RiskDecision.veto(f"probation: {self._hibernating}", "hibernating")
        count = len(self._trades)
        start = max(self._from, count - self.params.window_trades)
        window = self._window
        if window[0] != count or window[1] != start:
            pnls = [self._trades[i].net_pnl for i in range(start, count)]
            window = self._window = (count, start, pnls, sum(pnls))
        if window[3] >= 0.0:  # what rolling_loss answers for a window that made money
            loss, factor = 0.0, self._at_no_loss
        else:
            loss = rolling_loss(window[2], ctx.equity)
            factor = multiplier(loss, self.params)
        if factor == 0.0:
            self._hibernating = (
                f"hibernating: rolling loss {loss:.2%} over {count - start} trade(s) beyond "
                f"{self.params.hibernate_at:.0%}"
            )
            return RiskDecision.veto(f"probation: {self._hibernating}", "hibernating")
        if factor == 1.0 or intent.quantity is None:
            return APPROVE
        return RiskDecision.shrink(
            intent.quantity * factor,
            f"probation: rolling loss {loss:.2%}, size x{factor:g}",
            "probation",
        )
