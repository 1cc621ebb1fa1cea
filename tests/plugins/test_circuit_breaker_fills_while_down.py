"""circuit-breaker's "equity last seen the day before, when higher" rule
(``CircuitBreaker._observe``) after a restart over fills made while the bot was down: taken
only when the venue filled an order on the new day while the bot was down, after the equity
last seen. In its first form it was taken whenever ``RiskContext.fills_while_down`` was not
empty, which got two cases wrong, both against a breaker that was never restarted (and against
the engine's own day start, ``Engine._day_begins``, which is right in both):

- a fill the venue made while the bot was down *before* midnight (the old day's loss): the
  new day starts from the equity before that loss, so the old day's loss is the new day's;
- any day change for the rest of the run after such a restart (the engine hands the same
  ``fills_while_down`` in every context, ``Engine._ahead`` is never emptied): a new day starts
  from the equity at the previous close when that was higher, so the last bar of the old day
  (the one closing at midnight) is counted in the new day.
"""

from __future__ import annotations

from tradefleet_plugins.risk.circuit_breaker import CircuitBreaker
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_runtime.model import Fill, Side
from tradefleet_runtime.sdk.testing import risk_context

HOUR = 3600
DAY = 86_400
D = 1_700_000_000 // DAY * DAY + 3 * DAY  # a UTC midnight (a Friday: no week turns below)
SYMBOL = "BTCUSDT"


def _breaker() -> CircuitBreaker:
    return CircuitBreaker(
        CircuitBreakerParams(
            warn_drawdown=0.02,
            reduce_drawdown=0.04,
            lock_drawdown=0.05,
            weekly_loss=0.5,
            max_drawdown=0.5,
            timezone="UTC",
        )
    )


def _tier_at(
    breaker: CircuitBreaker, ts: int, equity: float, mark: float, down: tuple[Fill, ...]
) -> int:
    ctx = risk_context(SYMBOL, equity=equity, ts=ts, marks={SYMBOL: mark}, fills_while_down=down)
    breaker.account_actions(ctx)
    return breaker.tier()


# The stop of 0.5 BTC bought at 50,000 sells at 45,500 at 23:30 of D while the bot is down.
STOPPED_BEFORE_MIDNIGHT = Fill(
    "stop-1", SYMBOL, Side.SELL, 0.5, 45_500.0, 11.375, D + 23 * HOUR + 1800, "t1"
)
AFTER_STOP = 50_000.0 - 0.5 * 4_500.0 - 11.375 - 12.5  # the account once stopped out


def test_a_stop_filled_before_midnight_while_down_is_not_the_new_days_loss() -> None:
    """Back at 00:40 of D+1: the first look of the breaker is at the midnight close. The stop's
    4.5% was lost on D (23:30): D+1 starts after it, as the engine's own day start does and
    as a breaker that saw the fill (a bot that ran through) does — tier 0. The rule takes the
    equity last seen on D (21:00, before the stop) as D+1's start: tier 2 at once, entries
    refused and half the exposure cut on a day that has lost nothing."""
    tiers = {}
    for told in ("with fills_while_down", "without"):
        breaker = _breaker()
        breaker.restore_equity([D + 21 * HOUR], [50_000.0 - 12.5])  # the first life's close
        down = (STOPPED_BEFORE_MIDNIGHT,) if told == "with fills_while_down" else ()
        tiers[told] = _tier_at(breaker, D + 24 * HOUR, AFTER_STOP, 45_500.0, down)
    assert tiers == {"with fills_while_down": 0, "without": 0}, (
        f"tiers at D+1's first close {tiers}: D+1 started from the equity of D 21:00, before a "
        "stop that filled at 23:30 of D: D's loss is counted as D+1's drawdown"
    )


def test_a_later_day_after_the_restart_starts_at_its_first_close() -> None:
    """The restart (over a fill made while down on D) is long past: the bot ran through D+1.
    The bar closing at midnight of D+2 lost 4.4% (D+1's: D+2 begins at that close, as the
    engine's ``_new_day`` and a breaker that never restarted take it). With the restart's
    fills still in every context, D+2 starts from the equity at D+1 23:00: tier 2 at D+2's
    first close."""
    taken_profit = Fill("tp-1", SYMBOL, Side.SELL, 0.5, 51_000.0, 12.75, D + 22 * HOUR, "t2")
    looks = [
        (D + 24 * HOUR + 3 * HOUR, 50_000.0, 50_000.0),  # D+1 03:00 (the restart's first look)
        (D + 47 * HOUR, 50_000.0, 50_000.0),  # D+1 23:00
        (D + 48 * HOUR, 47_800.0, 45_600.0),  # D+2 00:00: the last hour of D+1 lost 4.4%
    ]
    tiers = {}
    for told in ("with fills_while_down", "without"):
        breaker = _breaker()
        breaker.restore_equity([D + 21 * HOUR], [50_000.0])
        down = (taken_profit,) if told == "with fills_while_down" else ()
        tiers[told] = [_tier_at(breaker, ts, eq, mark, down) for ts, eq, mark in looks]
    assert tiers["without"] == [0, 0, 0]
    assert tiers["with fills_while_down"] == tiers["without"], (
        f"tiers {tiers}: a day after the restart started from the equity at the close before "
        "its first (the last hour of the old day counted in the new one)"
    )
