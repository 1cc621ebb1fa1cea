"""After a restart, the bracket children that ended when their position's SL or TP fired
while the bot was down are reported by the broker as cancelled at the venue — the fired
level's sibling, and on a netting account the children of the other entries in the position
— on hedging and netting accounts.

What went wrong before: the broker reported only the fired child (filled); its sibling, absent
from the reports, was journaled "cancelled: the venue never received it; not re-sent" and the
restart's summary counted it as "never reached the venue". It did reach it: MT5 held it on
the position until the other level closed it (the running bot says "cancelled" for it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    bracketed_then_down,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
)
from tests.runtime.helpers import Scripted
from tradefleet_runtime.journal import Journal

SL, TP = 1.0950, 1.1100
LOT = 10_000.0


def _statuses(journal: Journal) -> dict[str, tuple[str, str]]:
    """The restarted run's order statuses and reasons, by client order id."""
    rows = journal.query(
        "SELECT client_order_id, status, reason FROM order_status WHERE run_id = 'live-2'"
    )
    return {order_id: (status, reason) for order_id, status, reason in rows}


@pytest.mark.usefixtures("transport")  # on the emulator, and through the bridge
@pytest.mark.parametrize("margin_mode", ["hedging", "netting"])
@pytest.mark.parametrize(
    ("fired", "sibling", "price"), [("sl", "tp", 1.0940), ("tp", "sl", 1.1110)]
)
def test_the_sibling_of_a_level_that_fired_while_down_ended_at_the_venue(
    tmp_path: Path, margin_mode: str, fired: str, sibling: str, price: float
) -> None:
    venue = Mt5Harness.build(margin_mode)
    venue.symbols = ("EURUSD",)
    venue.connect()
    path = tmp_path / "journal.sqlite"
    parent = bracketed_then_down(venue, path, LOT)
    terminal = venue.terminal
    venue.close()
    terminal.set_price("EURUSD", price)  # the SL (or TP) fires while the bot is down

    restarted = Mt5Harness.build(margin_mode, venue=terminal)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    second = Journal(path, durable=True)
    try:
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        # the sibling reached the terminal (it was the position's): the restart's summary
        # (logged and journaled as the `reconciled` event) does not count it as never
        # reaching it
        summary = plan.summary()
        assert "2 order(s) closed at the venue, 0 never reached the venue" in summary, summary
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        statuses = _statuses(second)
        assert statuses[f"{parent}-{fired}"][0] == "filled"
        status, reason = statuses[f"{parent}-{sibling}"]
        assert (status, reason) == ("cancelled", "cancelled at the venue while the bot was down")
        assert again.portfolio.position("EURUSD").quantity == 0.0
    finally:
        second.close()
        restarted.close()


def test_every_child_of_a_netted_position_closed_while_down_ended_at_the_venue(
    tmp_path: Path,
) -> None:
    """Two entries with the same SL/TP in one netting position: the SL closes all of it while
    the bot is down; every child of both entries ended there, none 'never received'."""
    venue = Mt5Harness.netting()
    venue.symbols = ("EURUSD",)
    venue.connect()
    path = tmp_path / "journal.sqlite"
    buy = lambda ctx, bar: ctx.buy("EURUSD", LOT, stop_loss=SL, take_profit=TP)  # noqa: E731
    engine, journal = live_engine(venue, Scripted({0: buy, 1: buy}), Journal(path, durable=True))
    entries = []
    for i in range(2):
        engine.run([minute_bar(i, 1.1)])
        settle_and_pump(engine, venue)
        entries.append(engine.last_order_id)
    journal.close()
    terminal = venue.terminal
    venue.close()
    terminal.set_price("EURUSD", 1.0940)  # the SL closes the whole 0.2 lot

    restarted = Mt5Harness.build("netting", venue=terminal)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    second = Journal(path, durable=True)
    try:
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        assert plan.never_sent == (), plan.summary()
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        statuses = _statuses(second)
        children = {f"{entry}-{role}" for entry in entries for role in ("sl", "tp")}
        ended = {i: s for i, s in statuses.items() if i in children}
        filled = [i for i, (status, _) in ended.items() if status == "filled"]
        # the SL was both entries' stop: each one's filled by its part (test_mt5_netting_
        # children_reduce.py), the take-profits cancelled
        assert sorted(filled) == sorted(f"{entry}-sl" for entry in entries), ended
        assert {ended[i] for i in children - set(filled)} == {
            ("cancelled", "cancelled at the venue while the bot was down")
        }
        assert again.portfolio.position("EURUSD").quantity == 0.0
    finally:
        second.close()
        restarted.close()
