"""End to end on the fake Binance USDⓈ-M (the set-up of
tests/brokers/loss_while_down.py): a stop the venue filled while the bot was down *before*
midnight is the old day's loss, and must stay in the new day's start.

Day D: the first run buys 0.5 BTC at 50,000 (stop 47,000) and handles the 20:00 and 21:00
bars. At 23:30 of D, while the bot is down, the market gaps to 45,500 and the venue's stop sells
there (about 2,274 lost, 4.5%). The bot restarts at 00:40 of D+1 and is handed the bar closing
at midnight, on which its strategy enters again.

A bot that ran through took the loss on D (tier 2 on D), and began D+1 at tier 0 from the
account after it. The engine's own day start agrees (P&L today about 0), and so does
circuit-breaker: its "equity last seen the day before, when higher" rule, taken in its first
form for any fill made while down, started D+1 from D's 22:00 equity, before the loss: tier 2
on D+1 and the entry refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness
from tests.brokers.loss_while_down import (
    BREAKER,
    DAILY_GAP,
    HOUR,
    D,
    Entry,
    _usdm,  # noqa: F401  (the fixture)
    back_at,
    crash_while_down,
    first_life,
    hourly,
    orders_sent,
    run,
)
from tradefleet_runtime.engine.engine import Engine

BEFORE_MIDNIGHT = D + 23 * HOUR + 1800  # 23:30 of D: the stop fills
BACK = D + 24 * HOUR + 2400  # 00:40 of D+1: the bot is back


def test_a_stop_filled_before_midnight_while_down_leaves_the_new_day_at_tier_0(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    first_life(tmp_path, usdm, BREAKER)
    crash_while_down(usdm, BEFORE_MIDNIGHT, DAILY_GAP)
    sent = orders_sent(tmp_path)
    midnight = hourly(D + 23 * HOUR, DAILY_GAP)  # closes at 00:00 of D+1
    seen: list[tuple[int, float]] = []

    def note(engine: Engine) -> None:
        tier = dict(engine.risk_tiers()).get("circuit-breaker", 0)
        seen.append((tier, engine.equity - engine.day_start_equity))

    run(
        tmp_path,
        usdm,
        BREAKER,
        [hourly(D + 21 * HOUR, 50_000.0), midnight],
        Entry(midnight.ts, 0.1, 44_000.0),
        {0: BACK},
        after=note,
    )
    ((tier, pnl_today),) = seen
    entries = orders_sent(tmp_path) - sent
    # The engine's day start is right: D+1 starts after D's loss.
    assert pnl_today == pytest.approx(0.0, abs=50.0), pnl_today
    assert (tier, entries >= 1) == (0, True), (
        f"circuit-breaker tier {tier} on D+1 and {entries} order(s) of the entry sent: D+1 "
        "started from D's 22:00 equity, before the stop the venue filled at 23:30 of D while "
        "the bot was down (D's loss counted as D+1's drawdown)"
    )


def test_a_restart_two_days_later_starts_its_day_after_the_loss(
    tmp_path: Path, usdm: VenueHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check that held: the stop fills at 00:30 of D+1 while down, and the bot is back at
    01:10 of D+2. D+1's loss is D+1's, not D+2's: D+2 begins at its midnight close (history)
    after the loss, P&L today about 0, circuit-breaker at tier 0 and the entry sent."""
    back = D + 49 * HOUR + 600
    first_life(tmp_path, usdm, BREAKER)
    crash_while_down(usdm, D + 24 * HOUR + 1800, DAILY_GAP)
    sent = orders_sent(tmp_path)
    back_at(monkeypatch, back)
    history = [hourly(D + h * HOUR, DAILY_GAP) for h in range(22, 48)]
    live = hourly(D + 48 * HOUR, DAILY_GAP)  # closes 01:00 of D+2
    seen: list[tuple[int, float]] = []

    def note(engine: Engine) -> None:
        tier = dict(engine.risk_tiers()).get("circuit-breaker", 0)
        seen.append((tier, engine.equity - engine.day_start_equity))

    run(
        tmp_path,
        usdm,
        BREAKER,
        [hourly(D + 21 * HOUR, 50_000.0), *history, live],
        Entry(live.ts, 0.1, 44_000.0),
        {0: back},
        after=note,
    )
    ((tier, pnl_today),) = seen
    assert tier == 0 and pnl_today == pytest.approx(0.0, abs=50.0), seen
    assert orders_sent(tmp_path) > sent
