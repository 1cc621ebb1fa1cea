"""A restart over midnight, after a stop the venue filled after midnight while the bot was
down: the new day starts from the account as it stood at its first close, without that loss
(``RiskContext.made_after``, ``Engine._day_begins``). The restart books the venue's fill before
it hands over the bar that closed at midnight; taken from the equity then, the day's start
held the loss already: the status's "P&L today" read 0, and the circuit breaker's daily
drawdown never counted it — the entry after the restart was sent at tier 0.

Day D: the first run buys 0.5 BTC at 50,000 (stop 47,000) and handles the 20:00 and 21:00
bars. The bar of 23:00 closes at midnight at 50,000. At 00:30 of D+1 the market gaps to 45,500
while the bot is down and the venue's stop sells there (about 2,274 lost, 4.5% of 50,000). The
bot restarts at 00:40 and is handed the bar closing at midnight.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness
from tests.brokers.loss_while_down import (
    BREAKER,
    DAILY_GAP,
    DAILY_LOSS,
    HOUR,
    PROP_FIRM,
    D,
    Entry,
    _usdm,  # noqa: F401  (the fixture)
    crash_while_down,
    first_life,
    hourly,
    orders_sent,
    run,
)
from tradefleet_runtime.engine.engine import Engine

AFTER_MIDNIGHT = D + 24 * HOUR + 1800  # 00:30 of D+1: the stop fills
BACK = D + 24 * HOUR + 2400  # 00:40: the bot is back


def test_the_circuit_breaker_counts_a_loss_made_after_midnight_while_down(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """Tier 2 at 4% of the day's start: the 4.5% lost after midnight is D+1's drawdown, as a
    bot that ran through would have found at its next close; the entry is not sent."""
    first_life(tmp_path, usdm, BREAKER)
    crash_while_down(usdm, AFTER_MIDNIGHT, DAILY_GAP)
    sent = orders_sent(tmp_path)
    midnight = hourly(D + 23 * HOUR, 50_000.0)
    tiers: list[int] = []
    run(
        tmp_path,
        usdm,
        BREAKER,
        [hourly(D + 21 * HOUR, 50_000.0), midnight],
        Entry(midnight.ts, 0.1, 44_000.0),
        {0: BACK},
        after=lambda e: tiers.append(dict(e.risk_tiers()).get("circuit-breaker", 0)),
    )
    assert tiers == [2], tiers
    assert orders_sent(tmp_path) == sent


def _pnl_today(folder: Path, harness: VenueHarness, midnight_close: float) -> float:
    first_life(folder, harness, PROP_FIRM)
    crash_while_down(harness, AFTER_MIDNIGHT, DAILY_GAP)
    seen: list[float] = []

    def note(engine: Engine) -> None:
        seen.append(engine.equity - engine.day_start_equity)

    run(
        folder,
        harness,
        PROP_FIRM,
        [hourly(D + 21 * HOUR, 50_000.0), hourly(D + 23 * HOUR, midnight_close)],
        Entry(0, 0.1, 44_000.0),
        {0: BACK},
        after=note,
    )
    return seen[0]


def test_the_status_pnl_today_counts_a_loss_made_after_midnight_while_down(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """The loss against midnight's mark (50,000, the entry's price): the trade's, less the
    entry's fee (12.50, taker 0.05% of 25,000), which was paid on D."""
    assert _pnl_today(tmp_path, usdm, 50_000.0) == pytest.approx(-(DAILY_LOSS - 12.5), abs=1.0)


def test_a_gap_the_midnight_close_already_marked_is_the_old_days(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """The same fill after a bar that closed at midnight at the gap's price: the position was
    marked down by midnight, so the loss is the old day's; the new day holds only what the fill
    made against that mark (its fee and slippage)."""
    pnl = _pnl_today(tmp_path, usdm, DAILY_GAP)
    assert -100.0 < pnl <= 0.0, pnl
