"""``quality-guard``: the control action on execution quality — cut sizes, then stop entries.

The runtime reports Cp/Cpk of the bot's execution (``spec.quality``); this plugin acts on them.
Every fill of an order the chain let through is a slippage sample: its price against the price
the order was decided at (``observes-orders``: the limit or trigger price, else the mark the
chain decided on; a bracket child's is its stop-loss or take-profit price), in basis points,
worse for the bot positive. Over the last ``window`` samples, once there are ``min_samples``:

    Cpk = (slippage_limit_bps - mean) / (3 sigma)        (the same function the service reports)

below ``shrink_below_cpk`` new entries are cut by ``shrink_factor``; below ``stop_below_cpk`` no
new entries are taken — a lock the engine journals and keeps across restarts until a person
resets it (the samples then start afresh). With no spread at all (every sample equal) the
process is capable when the mean is inside the limit and not at all when it is not. An optional
``win_rate_floor`` cuts sizes too while the share of winning trades over the last ``window``
closed trades is below it. Sizes only ever shrink; reduce-only orders (exits) always pass, and
so does the part of a reversal that closes the opposite position (``RiskContext.closing``):
the cut and the stop hold only what an order opens (``entry_cut``). Put it after the bot's
sizer: an order without a size yet has nothing to shrink and passes.

The figures are taken when a sample arrives (a fill), so ``check`` costs a lookup. A restart
loses nothing: the lock holds (``restores-lock``), the win rate is taken from the journaled
trades, and the slippage window is refilled from the journaled fills of earlier runs with the
prices their orders were decided at (``restores-fills``; since the last reset of the lock, as a
reset starts the samples afresh). Orders journaled before the runtime recorded that price
(journal schema 4 and older) are not measured. Wall-clock measures (bar-to-order time) are left
to the service's report: acting on them would make a backtest's decisions depend on the machine
it ran on.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from tradefleet_plugins.risk.quality_guard_params import QualityGuardParams
from tradefleet_plugins.risk.reason_text import GE, LT, Relation, given, shown
from tradefleet_plugins.risk.rules import entry_cut
from tradefleet_runtime.sdk import (
    Fill,
    Order,
    OrderIntent,
    RiskContext,
    RiskDecision,
    Trade,
    capability_indices,
    child_order_id,
    slippage_bps,
)

# A plain approval: one immutable value, shared (no allocation per intent).
APPROVE = RiskDecision.approve()

NORMAL, SHRINK, STOPPED = 0, 1, 2
# References of orders that never fill (cancelled, expired) are forgotten oldest first.
MAX_REFERENCES = 4_096
PREFIX = "quality-guard: "


def slippage_cpk(samples: Sequence[float], limit: float) -> tuple[float, float, float]:
    """(Cpk, mean, sigma) of slippage samples against the upper ``limit`` (one-sided).

    Without spread Cpk is undefined; the guard then reads it as +inf (mean inside the limit)
    or -inf (at or beyond it), so a constant bad slippage still stops entries.
    """
    figures = capability_indices(samples, None, limit)
    if figures.cpk is not None:
        return figures.cpk, figures.mean, figures.sigma
    cpk = math.inf if figures.mean < limit else -math.inf
    return cpk, figures.mean, figures.sigma


def assess(
    slippage: Sequence[float], wins: Sequence[bool], p: QualityGuardParams
) -> tuple[int, str]:
    """The state these samples call for (NORMAL, SHRINK, STOPPED), and why."""
    state, why = NORMAL, ""
    if len(slippage) >= p.min_samples:
        cpk, mean, sigma = slippage_cpk(slippage, p.slippage_limit_bps)
        if cpk < p.stop_below_cpk:
            figures = _figures(cpk, mean, sigma, len(slippage), p, (LT, p.stop_below_cpk))
            return STOPPED, f"{figures} < {given(p.stop_below_cpk, percent=False)}"
        if cpk < p.shrink_below_cpk:
            figures = _figures(
                cpk, mean, sigma, len(slippage), p,
                (LT, p.shrink_below_cpk), (GE, p.stop_below_cpk),
            )  # fmt: skip
            state, why = SHRINK, f"{figures} < {given(p.shrink_below_cpk, percent=False)}"
    if p.win_rate_floor is not None and len(wins) >= p.min_samples:
        rate = sum(wins) / len(wins)
        if rate < p.win_rate_floor:
            floor = p.win_rate_floor
            note = (
                f"win rate {shown(rate, (LT, floor), decimals=0)} over the last {len(wins)} "
                f"trades < {given(floor)}"
            )
            state, why = SHRINK, f"{why}; {note}" if why else note
    return state, why


def _figures(
    cpk: float,
    mean: float,
    sigma: float,
    fills: int,
    p: QualityGuardParams,
    *bounds: tuple[Relation, float],
) -> str:
    """The slippage figures of a reason: Cpk to the digits that show how it stands to the
    ``bounds`` it is judged by, the mean to those that show its side of the limit (pure)."""
    limit = p.slippage_limit_bps
    side = (LT if mean < limit else GE, limit)
    return (
        f"slippage Cpk {shown(cpk, *bounds, percent=False)} over the last {fills} fills (mean "
        f"{shown(mean, side, percent=False)} bp, sigma {sigma:.2f} bp, limit "
        f"{given(limit, percent=False)} bp)"
    )


class QualityGuard:
    def __init__(self, params: QualityGuardParams) -> None:
        self.params = params
        self._references: dict[str, float] = {}
        self._slippage: deque[float] = deque(maxlen=params.window)
        self._trades: Sequence[Trade] = ()
        self._from = 0  # trades before this index (a reset) no longer count
        self._state = NORMAL
        self._why = ""
        self._lock = ""

    # -- what the runtime hands it -----------------------------------------------------------

    def bind_trades(self, trades: Sequence[Trade]) -> None:
        self._trades = trades
        self._assess()

    def on_order(self, order: Order, reference: float) -> None:
        references = self._references
        references[order.client_order_id] = reference
        # A bracket's children are measured against their own prices, as the venue works them.
        if order.stop_loss is not None:
            references[child_order_id(order.client_order_id, "sl")] = order.stop_loss
        if order.take_profit is not None:
            references[child_order_id(order.client_order_id, "tp")] = order.take_profit
        while len(references) > MAX_REFERENCES:
            del references[next(iter(references))]

    def on_fill(self, fill: Fill) -> None:
        self._sample(fill, self._references.get(fill.client_order_id))
        self._assess()  # a fill may also have closed a trade

    def restore_fills(self, fills: Sequence[tuple[Fill, float]]) -> None:
        for fill, reference in fills:
            self._sample(fill, reference)
        self._assess()

    def _sample(self, fill: Fill, reference: float | None) -> None:
        if reference and reference > 0.0:
            sample = slippage_bps(fill.side, fill.price, reference)
            if math.isfinite(sample):
                self._slippage.append(sample)

    def _assess(self) -> None:
        if self._lock:
            return
        count = len(self._trades)
        start = max(self._from, count - self.params.window)
        wins = [self._trades[i].net_pnl > 0.0 for i in range(start, count)]
        state, why = assess(self._slippage, wins, self.params)
        if state == STOPPED:
            self._lock = f"entries stopped: {why}"
        self._state, self._why = state, why

    # -- decisions ---------------------------------------------------------------------------

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        if intent.reduce_only:
            return APPROVE
        quantity = intent.quantity
        if self._lock:
            reason = f"{PREFIX}{self._lock}"
            if quantity is None:
                return RiskDecision.veto(reason, "quality_stopped")
            return entry_cut(intent, quantity, 0.0, reason, "quality_stopped", ctx)
        if self._state == NORMAL or quantity is None:
            return APPROVE
        return entry_cut(
            intent,
            quantity,
            self.params.shrink_factor,
            f"{PREFIX}{self._why}: size x{given(self.params.shrink_factor, percent=False)}",
            "quality_shrink",
            ctx,
        )

    # -- the lock and its tier ---------------------------------------------------------------

    def tier(self) -> int:
        return STOPPED if self._lock else self._state

    def lock_reason(self) -> str | None:
        return self._lock or None

    def reset_lock(self) -> str | None:
        # A person looked at the execution: measure afresh from here.
        self._lock = ""
        self._slippage.clear()
        self._from = len(self._trades)
        self._state, self._why = NORMAL, ""
        return None

    def restore_lock(self, reason: str, since_ts: int) -> None:
        self._lock = reason
        self._state = STOPPED
