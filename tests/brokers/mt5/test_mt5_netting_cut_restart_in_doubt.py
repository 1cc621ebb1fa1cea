"""F53: a restart while a netting cut is in doubt, and the cut after such a restart.

On a netting account a reduce-only exit a person partly closed under is cut: its ticket T1
removed and a new pending order T2 placed under the same comment for what the position still
holds (``_cancel_reduce_only_beyond``/``_size_recut`` in plugins/tradefleet_plugins/brokers/
mt5_broker.py). The removal's answer, or the new order's, can be lost; the bot can go down
before the next poll looks it up. At the restart the broker knows nothing of the cut: the
terminal's orders are the truth. Whatever ticket rests under the exit's comment is adopted
at its current volume (the cut size, OPEN); with none resting and no deal filling it, the
exit ends cancelled at the quantity the journal holds (the venue held T1 for it).

What failed: a later cut after such a restart. The running broker skips every ticket an
exit's cuts removed when it looks a lost new order up (``_Recut.removed``): the restarted one
knew only the ticket it removed itself, so a new order lost before it arrived was taken to be
T1 — cancelled by the cut before the restart, in the history under the very same comment —
and the exit ended ("re-placed as ticket T1 …, which has ended at the terminal") where it must
be sent again: the position still open ran without its stop. The look-up now takes only a
ticket newer than the one the cut removed (a new order's ticket is above every earlier one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.harness import EMULATOR_T0, Mt5Harness, restarted_plan
from tests.brokers.mt5.test_mt5_netting_reduce_only_cut import (
    _bot,
    _close_by_hand,
    _netting,
    _pump,
    _resting,
)
from tests.venues.mt5.faults import UnknownOutcome
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.reconcile import ReconcilePlan
from tradefleet_runtime.sdk import OrderStatus

_LOST_NEW_ORDER = [None, UnknownOutcome(10012, executed=True)]  # removal DONE, T2 placed


def _down_in_doubt(
    venue: Mt5Harness, path: Path, script: list[Any]
) -> tuple[str, int, list[tuple[int, float, str, int, float]]]:
    """A live bot long 1.0 lot with a reduce-only sell stop of 1.0 lot (T1); a person closes
    0.4 lot and the cut's sends go as ``script`` says (an answer lost); the bot goes down
    before the next poll looks it up. The exit's id, T1, and what rests as the bot goes."""
    journal = Journal(path, durable=True)
    engine, exit_id = _bot(venue, journal)
    ((first, _, _, _, _),) = _resting(venue)
    _close_by_hand(venue, 0.4)
    venue.terminal.faults.script("order_send", script)
    _pump(engine, venue, 1)
    working = engine.book.get(exit_id)
    # In doubt: the engine was told nothing of the cut.
    assert working is not None and working.order.quantity == 100_000.0
    left = _resting(venue)
    journal.close()
    venue.close()
    return exit_id, first, left


def _restart(venue: Mt5Harness, journal: Journal) -> tuple[Mt5Harness, Engine, ReconcilePlan]:
    """The bot back on ``venue``'s terminal, reconciled against it."""
    restarted = _netting(venue.terminal)
    again, carried, plan = restarted_plan(restarted, journal, EMULATOR_T0 - 3600)
    assert not plan.degraded, plan.mismatches
    again.restore_from_venue(carried, plan, EMULATOR_T0)
    return restarted, again, plan


def test_a_restart_while_the_new_orders_answer_is_lost_adopts_it_at_the_cut_size(
    tmp_path: Path,
) -> None:
    venue = _netting()
    path = tmp_path / "journal.sqlite"
    restarted: Mt5Harness | None = None
    journal: Journal | None = None
    try:
        exit_id, first, left = _down_in_doubt(venue, path, _LOST_NEW_ORDER)
        ((second, volume, comment, _, _),) = left
        assert (volume, comment) == (0.6, exit_id) and second != first
        journal = Journal(path, durable=True)
        restarted, again, plan = _restart(venue, journal)
        (adopted,) = [r for r in plan.adopted if r.client_order_id == exit_id]
        assert (adopted.status, adopted.quantity, adopted.filled_quantity) == (
            OrderStatus.OPEN,
            60_000.0,
            0.0,
        )
        assert [c for c, _ in plan.closed] == []
        _pump(again, restarted, 2)
        working = again.book.get(exit_id)
        assert working is not None and working.order.quantity == 60_000.0
        assert [(t, v) for t, v, _, _, _ in _resting(restarted)] == [(second, 0.6)]
    finally:
        if journal is not None:
            journal.close()
        venue.close()
        if restarted is not None:
            restarted.close()


@pytest.mark.parametrize(
    ("script", "resting"),
    [
        ([None, UnknownOutcome(10012, executed=False)], False),  # removed; T2 never arrived
        ([UnknownOutcome(10012, executed=True)], False),  # the removal's answer lost
        ([UnknownOutcome(10012, executed=False)], True),  # ... and it never arrived
    ],
    ids=["new-order-never-arrived", "removal-lost-removed", "removal-lost-still-resting"],
)
def test_a_restart_while_a_cut_is_in_doubt_adopts_what_rests_or_ends_it_at_the_journals_size(
    tmp_path: Path, script: list[Any], resting: bool
) -> None:
    venue = _netting()
    path = tmp_path / "journal.sqlite"
    restarted: Mt5Harness | None = None
    journal: Journal | None = None
    try:
        exit_id, first, left = _down_in_doubt(venue, path, script)
        assert [t for t, _, _, _, _ in left] == ([first] if resting else [])
        journal = Journal(path, durable=True)
        restarted, again, plan = _restart(venue, journal)
        if resting:
            # T1 still rests for 1.0 lot: adopted, then cut by the restarted bot's poll.
            assert [c for c, _ in plan.closed] == []
            _pump(again, restarted, 2)
            working = again.book.get(exit_id)
            assert working is not None and working.order.quantity == 60_000.0
            ((ticket, volume, _, _, _),) = _resting(restarted)
            assert volume == 0.6 and ticket != first
            return
        # No ticket carries the comment and no deal filled it: cancelled, at the quantity the
        # venue held it for and the journal holds.
        ((closed_id, report),) = plan.closed
        assert closed_id == exit_id
        assert (report.status, report.quantity, report.filled_quantity) == (
            OrderStatus.CANCELLED,
            100_000.0,
            0.0,
        )
        assert again.book.get(exit_id) is None
        assert _resting(restarted) == []
    finally:
        if journal is not None:
            journal.close()
        venue.close()
        if restarted is not None:
            restarted.close()


def test_a_cut_after_a_restart_never_takes_a_ticket_cut_before_it_for_its_lost_new_order(
    tmp_path: Path,
) -> None:
    venue = _netting()
    path = tmp_path / "journal.sqlite"
    restarted: Mt5Harness | None = None
    journal: Journal | None = None
    try:
        exit_id, first, _ = _down_in_doubt(venue, path, _LOST_NEW_ORDER)
        journal = Journal(path, durable=True)
        restarted, again, _ = _restart(venue, journal)
        _pump(again, restarted, 1)
        ((second, _, _, _, _),) = _resting(restarted)
        _close_by_hand(restarted, 0.3)  # 0.3 lot left
        # The removal of T2 goes through; the new order's answer is lost, and it never
        # arrived: the next poll finds it nowhere and sends it again.
        restarted.terminal.faults.script(
            "order_send", [None, UnknownOutcome(10012, executed=False)]
        )
        _pump(again, restarted, 3)
        said = [
            str(r)
            for (r,) in journal.query(
                "SELECT reason FROM order_updates WHERE client_order_id = ?", exit_id
            )
        ]
        # Old code: CANCELLED (CANCELLED_BY_VENUE) "… re-placed as ticket <T1> (its answer
        # was lost: found by its comment), which has ended at the terminal"; nothing rests
        # against the 0.3 lot still open.
        assert not any(f"ticket {first}" in r for r in said), said
        working = again.book.get(exit_id)
        assert working is not None and working.order.quantity == 30_000.0
        ((third, volume, comment, _, _),) = _resting(restarted)
        assert (volume, comment) == (0.3, exit_id) and third not in (first, second)
    finally:
        if journal is not None:
            journal.close()
        venue.close()
        if restarted is not None:
            restarted.close()
