"""A restart's reconciliation journals each order it carries over in the new run *before* the
fills the order had while the bot was down (``Engine.restore_from_venue``): the order's status
log in that run reads carried over, then its fills, then the venue's word — never a fill, then
pending again, and a part that filled reads ``partially_filled``, never ``filled``. Both for an
order the venue has closed meanwhile and for one still working there (adopted), a bracket's
stop-loss filled in part while the bot was down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, T0, live_restart
from tests.runtime.test_reconcile_partial_sibling import (
    BOT,
    BOUGHT,
    ENTRY,
    STOP,
    STOPPED,
    TARGET,
    Answering,
    _plan,
    _report,
)
from tradefleet_runtime.model import CarriedState, OrderStatus


@pytest.mark.parametrize(
    ("venue_status", "last"),
    [
        (OrderStatus.PARTIALLY_FILLED, ("partially_filled", "adopted from the venue on restart")),
        (OrderStatus.CANCELLED, ("cancelled", "cancelled at the venue while the bot was down")),
    ],
    ids=["adopted", "closed"],
)
def test_an_order_filled_while_down_is_journaled_carried_over_before_its_fill(
    tmp_path: Path, venue_status: OrderStatus, last: tuple[str, str]
) -> None:
    engine, journal = live_restart(tmp_path, BOT, Answering())
    state = CarriedState(
        10_000.0,
        fills=[BOUGHT],
        working=[(STOP, 0.0), (TARGET, 0.0)],
        runs=1,
        known_order_ids=frozenset(
            {ENTRY.client_order_id, STOP.client_order_id, TARGET.client_order_id}
        ),
    )
    # The stop filled 0.04 while the bot was down (``STOPPED``, not journaled) and is now
    # ``venue_status`` at the venue: still working (adopted) or cancelled after its part.
    plan = _plan(_report(STOP, 0.04, venue_status))
    assert [fill.fill_id for fill in plan.missed_fills] == [STOPPED.fill_id]
    try:
        engine.restore_from_venue(state, plan, T0 + HOUR)
        log = [
            (str(status), str(reason))
            for status, reason in journal.query(
                "SELECT status, reason FROM order_updates"
                " WHERE client_order_id = ? AND run_id = 'r2' ORDER BY id",
                STOP.client_order_id,
            )
        ]
        fills = journal.query(
            "SELECT run_id, quantity FROM fills WHERE client_order_id = ?", STOP.client_order_id
        )
    finally:
        journal.close()
    # Carried over, the part that filled while down (in part: never ``filled``, nor a bare
    # row), then the venue's word.
    assert log == [
        ("pending", "carried over"),
        ("partially_filled", "filled in part at the venue while the bot was down"),
        last,
    ], log
    assert fills == [("r2", pytest.approx(0.04))]  # booked once, in this run
