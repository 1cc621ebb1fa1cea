"""prop-firm after a restart over its day's boundary: the trades that closed after the boundary
while the bot was down (reconciled, never shown to the plugin as fills) are taken out of the new
day's start, at the first call on the new day — whatever asked before it. A signal that reached
the restarted bot while it waited for its first new bar was judged at the restored clock (the
old day) and used that correction up: the new day then started after the loss, and the next
entry was let through with the whole daily allowance again.

FTMO's day (prop-firm's default: midnight in Prague) on a bot of 4-hour bars, which close at
00:00, 04:00 … UTC: Prague's midnight (22:00 or 23:00 UTC) falls inside the bar closing at 00:00
UTC, so for an hour or two of every night the last bar closed on the Prague day before.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.brokers.harness import VenueHarness
from tests.brokers.loss_while_down import (
    DAILY_GAP,
    DAY,
    HOUR,
    STOP,
    D,
    Entry,
    _usdm,  # noqa: F401  (the fixture)
    crash_while_down,
    hourly,
    run,
    signal_buy,
)
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.engine.engine import Engine

PRAGUE_MIDNIGHT = int(
    datetime.combine(
        date.fromordinal(date(1970, 1, 1).toordinal() + D // DAY + 1),
        datetime.min.time(),
        ZoneInfo("Europe/Prague"),
    ).timestamp()
)
FTMO = "- name: prop-firm\n  params: {}\n"


def _answers(folder: Path, harness: VenueHarness, before_bar: bool) -> list[tuple[bool, str, str]]:
    """The first run buys 0.5 BTC at D's 12:00 bar (stop 47,000) and handles the 16:00 bar
    (close 20:00 UTC), then stops. 10 minutes after Prague's midnight the stop fills at 45,500
    while the bot is down (2,274 lost on Prague's D+1). The bot restarts before 00:00 UTC: its
    newest bar is still the one closing at 20:00 UTC (Prague's D). One signal while it waits
    for its first new bar (``before_bar``), one after that bar (20:00, closing 00:00 UTC,
    Prague's D+1). What each was answered."""
    bars = [hourly(D + 12 * HOUR, 50_000.0, 4), hourly(D + 16 * HOUR, 50_000.0, 4)]
    run(
        folder,
        harness,
        FTMO,
        bars,
        Entry(bars[0].ts, 0.5, STOP),
        {0: D + 16 * HOUR + 30},
        timeframe="4h",
    )
    crash_while_down(harness, PRAGUE_MIDNIGHT + 600, DAILY_GAP)
    answers: list[tuple[bool, str, str]] = []

    def send(engine: Engine) -> None:
        answers.append(engine.handle_signal(signal_buy(DAILY_GAP, DAILY_GAP - 500.0)))

    run(
        folder,
        harness,
        FTMO,
        [bars[-1], hourly(D + 20 * HOUR, DAILY_GAP, 4)],
        ExternalSignal(ExternalSignalParams(max_entry_deviation_pct=20)),
        {0: D + 24 * HOUR + 30},
        before=send if before_bar else None,
        after=send,
        timeframe="4h",
    )
    return answers


def test_the_new_days_loss_while_down_refuses_the_entry_after_its_first_bar(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    answers = _answers(tmp_path, usdm, before_bar=False)
    assert [accepted for accepted, _, _ in answers] == [False], answers
    assert "daily limit" in answers[-1][1]


def test_a_signal_before_the_first_new_bar_does_not_make_the_day_forget_its_loss(
    tmp_path: Path, usdm: VenueHarness
) -> None:
    answers = _answers(tmp_path, usdm, before_bar=True)
    assert not answers[0][0]  # refused (taken as day D's block)
    assert not answers[1][0], (
        f"after D+1's first bar the entry was sent ({answers[1][2]}) although D+1 already lost "
        "2,274 of its 2,500 allowance while the bot was down"
    )
