"""A restart over midnight, after a stop the venue filled after midnight while the bot was
down: the new day starts from the account as it stood at its first close, without that loss
(``RiskContext.fills_while_down``, ``Engine._day_begins``). The restart books the venue's
fill before it hands over the bar that closed at midnight; taken from the equity then, the
day's start held the loss already: the status's "P&L today" read 0, and the circuit
breaker's daily drawdown never counted it — the entry after the restart was sent at tier 0.

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
    back_at,
    crash_while_down,
    first_life,
    hourly,
    orders_sent,
    run,
)
from tradefleet_runtime.engine.engine import Engine

AFTER_MIDNIGHT = D + 24 * HOUR + 1800  # 00:30 of D+1: the stop fills
BACK = D + 24 * HOUR + 2400  # 00:40: the bot is back
BACK_LATER = D + 25 * HOUR + 600  # 01:10: back two closes after midnight


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


def test_a_loss_after_midnight_counts_when_the_bot_is_back_two_bars_later(
    tmp_path: Path, usdm: VenueHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back at 01:10: the bars closing at 23:00 and 00:00 closed while the bot was down
    (history), the one closing at 01:00 is its first live bar. D+1 begins at the 00:00 close
    as it is handed over (``Engine._day_while_down``), and circuit-breaker, whose first look
    at D+1 comes at 01:00, starts it from the equity it last saw on D. Begun at the first live
    close, the day started after the stop's loss: P&L today ~0, tier 0, the entry sent."""
    first_life(tmp_path, usdm, BREAKER)
    crash_while_down(usdm, AFTER_MIDNIGHT, DAILY_GAP)
    sent = orders_sent(tmp_path)
    back_at(monkeypatch, BACK_LATER)
    live = hourly(D + 24 * HOUR, DAILY_GAP)  # closes 01:00: the first live bar
    seen: list[tuple[int, float]] = []

    def note(engine: Engine) -> None:
        tier = dict(engine.risk_tiers()).get("circuit-breaker", 0)
        seen.append((tier, engine.equity - engine.day_start_equity))

    run(
        tmp_path,
        usdm,
        BREAKER,
        [
            hourly(D + 21 * HOUR, 50_000.0),  # handled by the first run
            hourly(D + 22 * HOUR, 50_000.0),  # closed 23:00, while down: history
            hourly(D + 23 * HOUR, 50_000.0),  # closed 00:00, while down: history
            live,
        ],
        Entry(live.ts, 0.1, 44_000.0),
        {0: BACK_LATER},
        after=note,
    )
    ((tier, pnl_today),) = seen
    entries = orders_sent(tmp_path) - sent
    # A bot that ran through: D+1 began at the 00:00 close (the position at 50,000); the stop's
    # 2,274 at 00:30 is D+1's (4.5%, tier 2 at 4%), and the entry is not sent.
    assert (tier, round(pnl_today, -2), entries) == (2, round(-(DAILY_LOSS - 12.5), -2), 0), (
        f"P&L today {pnl_today:.2f}, circuit-breaker tier {tier}, {entries} order(s) of the "
        "entry sent: D+1 began at the first live close (01:00), after the stop filled at "
        "00:30 while the bot was down, and started with its loss"
    )


@pytest.mark.parametrize("basis", ["balance", "equity"])
def test_prop_firm_day_start_leaves_out_a_loss_made_after_midnight_while_down(
    tmp_path: Path, usdm: VenueHarness, basis: str
) -> None:
    """Back at 00:40 (the bar closing at midnight is the first live one), on prop-firm: on
    ``day_start_from: balance`` (FTMO) its restored-day rule takes the trade out of the start
    (``_closed_unseen``); on ``equity`` the fills made while down do
    (``RiskContext.fills_while_down``). Before, D+1 started after the 2,274 lost at 00:30 (91%
    of its 2,500 allowance) on ``equity`` and the entry was sent with the whole allowance."""
    chain = f"- name: prop-firm\n  params: {{timezone: UTC, day_start_from: {basis}}}\n"
    first_life(tmp_path, usdm, chain)
    crash_while_down(usdm, AFTER_MIDNIGHT, DAILY_GAP)
    sent = orders_sent(tmp_path)
    midnight = hourly(D + 23 * HOUR, 50_000.0)
    run(
        tmp_path,
        usdm,
        chain,
        [hourly(D + 21 * HOUR, 50_000.0), midnight],
        Entry(midnight.ts, 0.1, 44_000.0),
        {0: BACK},
    )
    assert orders_sent(tmp_path) == sent, (
        f"day_start_from {basis}: the entry after the restart was sent although D+1 lost "
        "2,274 of its 2,500 allowance while the bot was down"
    )


def test_a_second_restart_keeps_the_loss_the_first_found(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    """Restart 1 at 00:40 finds the stop filled at 00:30 and journals the midnight close as the
    account stood then, before the fill (``Engine._account_at``). Restart 2 at 01:10, nothing
    filled meanwhile, rebuilds D+1 from that snapshot: still tier 2, no entry, P&L today the
    loss. Journaled with the fill, the snapshot started the rebuilt day after the loss: tier 0
    and the entry sent on a day 4.5% down."""
    first_life(tmp_path, usdm, BREAKER)
    crash_while_down(usdm, AFTER_MIDNIGHT, DAILY_GAP)
    midnight = hourly(D + 23 * HOUR, 50_000.0)
    run(
        tmp_path,
        usdm,
        BREAKER,
        [hourly(D + 21 * HOUR, 50_000.0), midnight],
        Entry(0, 0.1, 1.0),
        {0: BACK},
    )
    sent = orders_sent(tmp_path)
    later = hourly(D + 24 * HOUR, DAILY_GAP)
    seen: list[tuple[int, float]] = []

    def note(engine: Engine) -> None:
        tier = dict(engine.risk_tiers()).get("circuit-breaker", 0)
        seen.append((tier, engine.equity - engine.day_start_equity))

    run(
        tmp_path,
        usdm,
        BREAKER,
        [midnight, later],
        Entry(later.ts, 0.1, 44_000.0),
        {0: BACK_LATER},
        after=note,
    )
    ((tier, pnl_today),) = seen
    assert (tier, orders_sent(tmp_path) - sent) == (2, 0), seen
    assert pnl_today == pytest.approx(-(DAILY_LOSS - 12.5), abs=1.0)
