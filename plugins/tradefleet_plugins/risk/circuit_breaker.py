"""``circuit-breaker``: three drawdown tiers, weekly and peak limits, and a lock only a person
clears.

Tiers measure the worse of the loss from the trading day's start and from the day's equity peak:
1 (default 5%) warns and cuts new sizes by 25%; 2 (10%, or a loss of 10% from the week's start)
stops new entries, cancels resting entries and closes half the open exposure, riskiest first;
3 (15%, or a drawdown of 20% from the all-time peak) flattens everything and locks. Within a
day the tier only rises; a new day starts at 0 unless locked. The lock is journaled by the
engine, survives restarts (``restores-lock``) and is cleared only by ``ResetRiskLock`` after
the cooldown; the reset starts the day, week and peak afresh at the equity of that moment.
A restart moves no baseline either (``restores-equity``): the journaled equity since the last
reset is replayed, so the day, week, peak and the tier they reached are those of the account.

The tiers judge what an order opens. The part of a reversal sent as one order that closes the
opposite position (``RiskContext.closing``) is an exit and always goes, as pre-trade's caps
have it: tier 1 cuts only the opening part, tiers 2 and 3 shrink a reversal to its closing
part (``rules.entry_cut``, which probation and quality-guard share; once the engine holds the tier-3
lock, its gate refuses a whole reversal before the chain, as it does in a halt). Reasons
print every limit as its params give it and every measure to the digits that show how it
stands to it (``reason_text``), and a cooldown's time left in seconds under a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.reason_text import GE, LT, given, shown, time_left
from tradefleet_plugins.risk.rules import DayClock, entry_cut, exposure_cut
from tradefleet_runtime.sdk import (
    AccountAction,
    ActionKind,
    OrderIntent,
    RiskContext,
    RiskDecision,
    equity_made,
)

# A plain approval: one immutable value, shared (no allocation per intent).
APPROVE = RiskDecision.approve()

NORMAL, WARN, REDUCE, LOCKED = 0, 1, 2, 3


class Measures(NamedTuple):
    day_loss: float  # from the day's start, fraction (≥ 0)
    day_drawdown: float  # from the day's peak
    week_loss: float
    drawdown: float  # from the all-time peak


def measures(
    equity: float, day_start: float, day_peak: float, week_start: float, peak: float
) -> Measures:
    return Measures(
        _loss(day_start, equity), _loss(day_peak, equity), _loss(week_start, equity),
        _loss(peak, equity),
    )  # fmt: skip


def _loss(base: float, equity: float) -> float:
    return max(0.0, (base - equity) / base) if base > 0 else 0.0


def tier_for(m: Measures, p: CircuitBreakerParams) -> tuple[int, str]:
    """The tier these measures call for, and why (a limit is hit at or beyond its value)."""
    day = max(m.day_loss, m.day_drawdown)
    if m.drawdown >= p.max_drawdown:
        drawdown = shown(m.drawdown, (GE, p.max_drawdown))
        return LOCKED, f"drawdown {drawdown} from the equity peak >= {given(p.max_drawdown)}"
    if day >= p.lock_drawdown:
        shown_day = shown(day, (GE, p.lock_drawdown))
        return LOCKED, f"daily drawdown {shown_day} >= {given(p.lock_drawdown)}"
    # Below a tier it stays below it in print too: 14.999% is not "15.00%" in tier 2.
    below_lock = (LT, p.lock_drawdown)
    if m.week_loss >= p.weekly_loss:
        # No new entries while the week is this far down (the week's start is fixed, so this
        # holds across days until the week ends or the account recovers).
        week = shown(m.week_loss, (GE, p.weekly_loss))
        return REDUCE, f"weekly loss {week} >= {given(p.weekly_loss)}"
    if day >= p.reduce_drawdown:
        shown_day = shown(day, (GE, p.reduce_drawdown), below_lock)
        return REDUCE, f"daily drawdown {shown_day} >= {given(p.reduce_drawdown)}"
    if day >= p.warn_drawdown:
        shown_day = shown(day, (GE, p.warn_drawdown), (LT, p.reduce_drawdown), below_lock)
        return WARN, f"daily drawdown {shown_day} >= {given(p.warn_drawdown)}"
    return NORMAL, ""


def decide(
    intent: OrderIntent,
    tier: int,
    reason: str,
    p: CircuitBreakerParams,
    ctx: RiskContext | None = None,
) -> RiskDecision:
    """The breaker's answer to an intent in ``tier`` (reduce-only orders always pass; of a
    reversal, only what it opens is cut or refused: ``entry_cut`` on ``ctx``)."""
    if intent.reduce_only or tier == NORMAL:
        return APPROVE
    quantity = intent.quantity
    if tier >= REDUCE:
        code = "breaker_locked" if tier == LOCKED else "breaker_halt"
        why = f"circuit breaker tier {tier}: {reason}"
        if quantity is None:
            return RiskDecision.veto(why, code)
        return entry_cut(intent, quantity, 0.0, why, code, ctx)
    if quantity is None or p.warn_size_cut == 0:
        return RiskDecision.approve(reason=f"tier 1: {reason}")
    return entry_cut(
        intent,
        quantity,
        1.0 - p.warn_size_cut,
        f"circuit breaker tier 1 ({reason}): size cut by {given(p.warn_size_cut)}",
        "breaker_warn",
        ctx,
    )


class CircuitBreaker:
    def __init__(self, params: CircuitBreakerParams) -> None:
        self.params = params
        self._tier = NORMAL
        self._reason = ""
        self._now = 0
        self._equity = 0.0
        self._seen_ts = 0  # the bar time of the equity last seen
        self._day: object = None
        self._week: object = None
        self._day_start = self._day_peak = self._week_start = self._peak = 0.0
        self._locked_since: int | None = None
        self._pending: list[AccountAction] = []
        self._clock = DayClock(params.timezone, params.day_start_minute)

    # -- state from the account ------------------------------------------------------------

    def _observe(self, ts: int, equity: float, ctx: RiskContext | None = None) -> None:
        """``equity`` at ``ts``; ``ctx``: the snapshot it is from, whose fills made while the
        bot was down (``RiskContext.fills_while_down``) on a day beginning now are not in the
        day's start (a stop the venue filled after midnight while the bot was down is the new
        day's loss)."""
        p = self.params
        if ts > self._now:
            self._now = ts
        seen_day, seen, seen_ts = self._day, self._equity, self._seen_ts
        self._equity, self._seen_ts = equity, ts
        clock = self._clock
        day = clock.day(ts)
        week = clock.week(ts)
        if self._peak <= 0.0:
            self._peak = equity
        # The venue filled orders while the bot was down only after this boundary, after the
        # equity last seen on the day before: the boundary's close may have come while the bot
        # was down too (it came back bars later), and this first look, at later marks, cannot
        # price the start of what begins now. That equity, when higher, holds none of those
        # fills, and nothing the old day lost meanwhile (a stop before midnight is the old
        # day's: with one, the start is priced here).
        seen_before = _day_after(seen_day, day) and self._down_only_from(ctx, day, seen_ts)
        if day != self._day:
            start = equity - self._made_while_down(ctx, day=day)
            if seen_before:
                start = max(start, seen)
            self._day, self._day_start, self._day_peak = day, start, max(start, equity)
            if self._tier != LOCKED:
                self._tier, self._reason = NORMAL, ""
        if week != self._week:
            week_start = equity - self._made_while_down(ctx, week=week)
            if seen_before:
                week_start = max(week_start, seen)
            self._week, self._week_start = week, week_start
        if equity > self._day_peak:
            self._day_peak = equity
        if equity > self._peak:
            self._peak = equity
        if self._tier == LOCKED:
            return
        # Below every tier's first limit (the same losses ``measures`` takes, compared with the
        # lowest limit of each): tier 0, nothing to escalate. Most calls end here.
        start, day_peak, week_start, peak = (
            self._day_start, self._day_peak, self._week_start, self._peak
        )  # fmt: skip
        warn = p.warn_drawdown
        if not (
            (start > 0 and (start - equity) / start >= warn)
            or (day_peak > 0 and (day_peak - equity) / day_peak >= warn)
            or (week_start > 0 and (week_start - equity) / week_start >= p.weekly_loss)
            or (peak > 0 and (peak - equity) / peak >= p.max_drawdown)
        ):
            return
        tier, reason = tier_for(measures(equity, start, day_peak, week_start, peak), p)
        if tier > self._tier:
            self._escalate(tier, reason)

    def _down_only_from(self, ctx: RiskContext | None, day: date, after: int) -> bool:
        """Whether the venue filled orders while the bot was down after bar time ``after``, on
        ``day`` (or later) and none before it."""
        if ctx is None or not ctx.fills_while_down:
            return False
        clock = self._clock
        days = [clock.day(f.ts) for f in ctx.fills_while_down if f.ts > after]
        return bool(days) and min(days) >= day

    def _made_while_down(
        self,
        ctx: RiskContext | None,
        day: date | None = None,
        week: tuple[int, int] | None = None,
    ) -> float:
        """What the fills made while the bot was down on ``day`` or later (or in ``week`` or
        later) added to equity at the snapshot's marks (0 without them)."""
        if ctx is None or not ctx.fills_while_down:
            return 0.0
        clock = self._clock
        return sum(
            equity_made(fill, ctx.marks)
            for fill in ctx.fills_while_down
            if (day is not None and clock.day(fill.ts) >= day)
            or (week is not None and clock.week(fill.ts) >= week)
        )

    def _escalate(self, tier: int, reason: str) -> None:
        p = self.params
        if tier >= REDUCE and self._tier < REDUCE:
            self._pending.append(
                AccountAction(ActionKind.CANCEL_ENTRIES, f"tier {tier}: {reason}", code="tier_2")
            )
        if tier == REDUCE:
            self._pending.append(_marker(reason, p.reduce_fraction))
        if tier == LOCKED:
            self._pending.append(
                AccountAction(ActionKind.FLATTEN, f"tier 3: {reason}", code="tier_3")
            )
            self._locked_since = self._now
        self._tier, self._reason = tier, reason

    # -- the risk plugin -------------------------------------------------------------------

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        self._observe(ctx.ts, ctx.equity, ctx)
        return decide(intent, self._tier, self._reason, self.params, ctx)

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        self._observe(ctx.ts, ctx.equity, ctx)
        if not self._pending:
            return []
        actions: list[AccountAction] = []
        for action in self._pending:
            if action.code == "tier_2_cut":
                # Which positions to cut is decided now, on this snapshot: riskiest first.
                for symbol, share in exposure_cut(ctx.positions, ctx.marks, action.fraction):
                    actions.append(
                        AccountAction(ActionKind.REDUCE, action.reason, symbol, share, "tier_2")
                    )
            else:
                actions.append(action)
        self._pending.clear()
        return actions

    def tier(self) -> int:
        return self._tier

    def lock_reason(self) -> str | None:
        return f"circuit breaker tier 3: {self._reason}" if self._tier == LOCKED else None

    def reset_lock(self) -> str | None:
        if self._tier != LOCKED:
            return None
        since = self._locked_since or 0
        left = since + self.params.cooldown_minutes * 60 - self._now
        if left > 0:
            return (
                f"cooldown: the lock was taken at bar time {since} and may be reset "
                f"{self.params.cooldown_minutes:.10g} min after it ({time_left(left)} left)"
            )
        # A person accepted the loss: the day, week and peak start again from here.
        equity = self._equity
        self._day_start = self._day_peak = self._week_start = self._peak = equity
        self._tier, self._reason, self._locked_since = NORMAL, "", None
        self._pending.clear()
        return None

    def restore_equity(self, timestamps: Sequence[int], equity: Sequence[float]) -> None:
        # Each snapshot observed as a live bar is: the day, week and peak baselines and the
        # tier they reached survive the restart. What a tier asked of the account (cancel
        # entries, cut, flatten) was done, or journaled as refused, before the restart.
        for ts, value in zip(timestamps, equity, strict=True):
            self._observe(int(ts), float(value))
        self._pending.clear()

    def restore_lock(self, reason: str, since_ts: int) -> None:
        self._tier, self._locked_since = LOCKED, since_ts
        prefix = "circuit breaker tier 3: "
        self._reason = reason[len(prefix) :] if reason.startswith(prefix) else reason
        self._now = max(self._now, since_ts)


def _day_after(before: object, day: date) -> bool:
    """Whether ``day`` is the trading day right after ``before`` (a day seen, or None)."""
    return isinstance(before, date) and (day - before).days == 1


def _marker(reason: str, fraction: float) -> AccountAction:
    """A tier-2 cut to be resolved into per-position reductions on the next snapshot."""
    return AccountAction(ActionKind.REDUCE, f"tier 2: {reason}", None, fraction, "tier_2_cut")
