"""The status log a restart writes of an order that filled while the bot was down tells what
happened, one row per event.

A limit buy of 0.01 at 49,000 rests at the fake Binance spot; the bot's process dies (the
order left working) and, while it is down, the venue:

- fills the order (the market trades through the limit): the new run's log of the order reads
  carried over, then the fill under the venue's word — ``filled 'filled at the venue while the
  bot was down'``, which names the venue's order id — not a bare ``filled ''`` row followed by
  the same status again;
- fills 0.004 of it, then a person cancels the rest: the log reads carried over, the part's
  fill as ``partially_filled``, then ``cancelled`` — not ``filled`` then ``cancelled``. The
  fill itself is booked as before: once, in the new run, what the account holds of it.

Through a real ``BotSession`` restart with the real ccxt, on an account holding USDT only
(its coin balance is what the bot bought; a buy's fee is 0.1 % of the coin).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import (
    LIMIT,
    Killed,
    Step,
    btc,
    coinless_spot_for_a_bot,
    hourly_bars,
    life,
    part_fill,
)
from tests.brokers.harness import SYMBOL, VenueHarness
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.session import BotSession

DOWN_FILLED = ("filled", "filled at the venue while the bot was down")
DOWN_PART = ("partially_filled", "filled in part at the venue while the bot was down")


def _dies_working(seen: dict[str, str]) -> Step:
    """The first life's end: the bot's limit buy rests at the venue, the process dies."""

    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        [order] = engine.open_orders()
        seen["cid"] = order.client_order_id
        raise Killed

    return step


def _carries_on(session: BotSession, engine: Engine, journal: Journal) -> None:
    """The second life: nothing to do once the bars are handled."""


def _last_run_log(path: Path, cid: str) -> tuple[list[tuple[str, str]], list[float], str]:
    """In the journal's newest run: (status, reason) of each of ``cid``'s status rows, the
    quantity of each of its fills, and the run's id."""
    db = sqlite3.connect(path)
    try:
        [(run,)] = db.execute("SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1").fetchall()
        log = [
            (str(status), str(reason))
            for status, reason in db.execute(
                "SELECT status, reason FROM order_updates"
                " WHERE client_order_id = ? AND run_id = ? ORDER BY id",
                (cid, run),
            )
        ]
        fills = [
            float(quantity)
            for (quantity,) in db.execute(
                "SELECT quantity FROM fills WHERE client_order_id = ? AND run_id = ?", (cid, run)
            )
        ]
        runs = {str(r) for (r,) in db.execute("SELECT run_id FROM fills")}
    finally:
        db.close()
    assert runs <= {str(run)}, runs  # booked in the new run only
    return log, fills, str(run)


def _order_row(path: Path, run: str, cid: str) -> tuple[str, float, str, str | None]:
    """What ``tradefleet orders`` shows of ``cid``: (status, filled, reason, venue order id)."""
    journal = Journal(path, read_only=True)
    try:
        [row] = journal.order_rows(run, only=[cid])
    finally:
        journal.close()
    return str(row[7]), float(row[5]), str(row[17]), row[18]


def test_an_entry_filled_while_down_logs_its_fill_once_under_the_venues_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        bars = hourly_bars(2)
        seen: dict[str, str] = {}
        path = life(tmp_path, harness, bars[:1], _dies_working(seen))
        cid = seen["cid"]
        harness.trade_through(LIMIT - 100)  # it fills while the bot is down
        life(tmp_path, harness, bars, _carries_on)
        held = float(btc(harness))
    log, fills, run = _last_run_log(path, cid)
    assert log == [("pending", "carried over"), DOWN_FILLED], log
    assert fills == [pytest.approx(held, abs=1e-5)]  # booked once
    status, filled, reason, venue_id = _order_row(path, run, cid)
    assert (status, reason) == DOWN_FILLED
    assert filled == pytest.approx(fills[0])
    assert venue_id  # the venue's order id still shown, its own row no longer written


def _part_filled_then_cancelled(harness: VenueHarness, cid: str) -> None:
    """While the bot is down the venue fills 0.004 of its buy, then a person cancels the rest
    (together: no poll between them)."""
    state = harness.fake.state
    with state.lock:
        part_fill(harness, cid, 0.004, LIMIT)
        state.spot.cancel_order(
            state.accounts[harness.fake.api_key], {"symbol": SYMBOL, "origClientOrderId": cid}
        )


def test_a_part_filled_entry_cancelled_while_down_logs_its_fill_as_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        bars = hourly_bars(2)
        seen: dict[str, str] = {}
        path = life(tmp_path, harness, bars[:1], _dies_working(seen))
        cid = seen["cid"]
        _part_filled_then_cancelled(harness, cid)
        life(tmp_path, harness, bars, _carries_on)
        held = float(btc(harness))
    assert 0 < held < 0.004  # the part, less the fee taken in the coin
    log, fills, run = _last_run_log(path, cid)
    assert log == [
        ("pending", "carried over"),
        DOWN_PART,
        ("cancelled", "cancelled at the venue while the bot was down"),
    ], log
    # Booked once, as before: what the account holds, counted to the lot step (0.00001).
    assert fills == [pytest.approx(held, abs=1e-5)]
    status, filled, reason, _venue_id = _order_row(path, run, cid)
    assert (status, reason) == ("cancelled", "cancelled at the venue while the bot was down")
    assert filled == pytest.approx(fills[0])
