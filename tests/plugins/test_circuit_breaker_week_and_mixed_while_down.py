"""circuit-breaker's "equity last seen the day before" rule (``CircuitBreaker._observe``,
``_down_only_from``) after a restart over fills made while down: not taken when the old day
lost something meanwhile too (a stop before midnight is the old day's, whatever filled after
it), and taken for the week that begins at the same boundary (a stop after Monday midnight
while down is the week's loss). The second restart is end to end in
tests/brokers/test_day_start_after_loss_while_down.py.

Same set-up as tests/plugins/test_circuit_breaker_fills_while_down.py: long 0.5 BTC bought at
50,000; its stop sells at 45,500 (a 4.5% loss of the 50,000 account) while the bot is down.
"""

from __future__ import annotations

from tradefleet_plugins.risk.circuit_breaker import CircuitBreaker
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_runtime.model import Fill, Side
from tradefleet_runtime.sdk.testing import risk_context

HOUR = 3600
DAY = 86_400
D = 1_700_000_000 // DAY * DAY + 3 * DAY  # a UTC midnight (a Friday)
MONDAY = D + 3 * DAY  # the Monday after D
SYMBOL = "BTCUSDT"
BEFORE = 50_000.0 - 12.5  # the account holding the long, price 50,000
AFTER_STOP = 50_000.0 - 0.5 * 4_500.0 - 11.375 - 12.5  # once stopped out at 45,500


def _breaker(**limits: float) -> CircuitBreaker:
    params = {
        "warn_drawdown": 0.02,
        "reduce_drawdown": 0.04,
        "lock_drawdown": 0.05,
        "weekly_loss": 0.5,
        "max_drawdown": 0.5,
    }
    params.update(limits)
    return CircuitBreaker(CircuitBreakerParams(timezone="UTC", **params))


def _tier_at(
    breaker: CircuitBreaker, ts: int, equity: float, mark: float, down: tuple[Fill, ...] = ()
) -> int:
    ctx = risk_context(SYMBOL, equity=equity, ts=ts, marks={SYMBOL: mark}, fills_while_down=down)
    breaker.account_actions(ctx)
    return breaker.tier()


def test_stop_before_midnight_and_a_fill_after_it_keep_the_old_days_loss_old() -> None:
    """The stop fills at 23:30 of D (D's loss); a resting buy limit of 0.01 BTC at 45,400 fills
    at 00:20 of D+1; both while the bot is down. Back at D+1's first close. The fill after
    midnight (a 1 USD gain) switches the rule on, and it takes D 21:00's equity, from before
    the stop, as D+1's start: D's 4.5% counts as D+1's loss (tier 2, entries refused and half
    the exposure cut). Without that small fill the same breaker is at tier 0."""
    stop = Fill("stop-1", SYMBOL, Side.SELL, 0.5, 45_500.0, 11.375, D + 23 * HOUR + 1800, "t1")
    limit_buy = Fill("lmt-1", SYMBOL, Side.BUY, 0.01, 45_400.0, 0.0, D + 24 * HOUR + 1200, "t2")
    tiers = {}
    for case, down, equity in (
        ("stop only", (stop,), AFTER_STOP),
        ("stop and a fill after midnight", (stop, limit_buy), AFTER_STOP + 0.01 * 100.0),
    ):
        breaker = _breaker()
        breaker.restore_equity([D + 21 * HOUR], [BEFORE])
        tiers[case] = _tier_at(breaker, D + 24 * HOUR, equity, 45_500.0, down)
    assert tiers == {"stop only": 0, "stop and a fill after midnight": 0}, (
        f"tiers at D+1's first close {tiers}: a 0.01 BTC fill after midnight made D's stop "
        "(23:30 of D) D+1's loss"
    )


def test_a_stop_after_monday_midnight_while_down_is_in_the_weeks_loss() -> None:
    """Default-like limits (warn 5%, reduce 10%, lock 15%, weekly 10%). The stop fills at
    00:20 of Monday while the bot is down (4.5%, below every daily limit); Tuesday loses 6%
    more. A breaker that ran through took the week's start at Monday's first close, before
    the stop: the week is down 10.2%, tier 2. After the restart the week starts after the
    stop (``_made_while_down`` prices the stop at the marks, not the position's move; the
    "equity last seen" rule is for the day only): tier 1, entries still sent."""
    stop = Fill("stop-1", SYMBOL, Side.SELL, 0.5, 45_500.0, 11.375, MONDAY + 1200, "t1")
    tuesday = AFTER_STOP * 0.94
    limits = {
        "warn_drawdown": 0.05,
        "reduce_drawdown": 0.10,
        "lock_drawdown": 0.15,
        "weekly_loss": 0.10,
    }
    ran = _breaker(**limits)
    ran.restore_equity(
        [MONDAY - 3 * HOUR, MONDAY, MONDAY + HOUR, MONDAY + DAY],
        [BEFORE, BEFORE, AFTER_STOP, AFTER_STOP],
    )
    ran_tier = _tier_at(ran, MONDAY + DAY + 5 * HOUR, tuesday, 45_500.0)
    restarted = _breaker(**limits)
    restarted.restore_equity([MONDAY - 3 * HOUR], [BEFORE])
    looks = [
        (MONDAY, AFTER_STOP),
        (MONDAY + HOUR, AFTER_STOP),
        (MONDAY + DAY, AFTER_STOP),
        (MONDAY + DAY + 5 * HOUR, tuesday),
    ]
    restarted_tiers = [_tier_at(restarted, ts, eq, 45_500.0, (stop,)) for ts, eq in looks]
    assert ran_tier == 2
    assert restarted_tiers[-1] == ran_tier, (
        f"tiers after the restart {restarted_tiers}, ran through {ran_tier}: the week started "
        "after the stop filled on Monday while the bot was down (weekly loss 6% not 10.2%)"
    )


def test_check_held_a_gain_while_down_measures_as_a_bot_that_ran_through() -> None:
    """A take-profit at 52,000 fills at 01:00 of D+1 while down; the bot re-enters and gives
    back 2.2% of the day's peak. Ran through: tier 1 (from the day's peak); restarted: same."""
    tp = Fill("tp-1", SYMBOL, Side.SELL, 0.5, 52_000.0, 13.0, D + 25 * HOUR, "t1")
    peak = 50_000.0 + 1_000.0 - 13.0 - 12.5
    lower = peak * 0.978
    ran = _breaker()
    ran.restore_equity([D + 21 * HOUR, D + 24 * HOUR, D + 25 * HOUR], [BEFORE, BEFORE, peak])
    ran_tier = _tier_at(ran, D + 27 * HOUR, lower, 52_000.0)
    restarted = _breaker()
    restarted.restore_equity([D + 21 * HOUR], [BEFORE])
    tiers = [
        _tier_at(restarted, D + 24 * HOUR, peak, 52_000.0, (tp,)),
        _tier_at(restarted, D + 27 * HOUR, lower, 52_000.0, (tp,)),
    ]
    assert ran_tier == 1
    assert tiers == [0, ran_tier]
