"""R29b: a restart after a cut of an exit that had filled in part adopts it too small.

On a netting account F40b cuts a reduce-only exit by removing its ticket and re-placing it
(``_cancel_reduce_only_beyond``/``_size_recut`` in plugins/tradefleet_plugins/brokers/
mt5_broker.py): the removed ticket T1 keeps its own fills and T2 holds the rest. Here the
1.0 lot sell-limit exit filled 0.3 lot, then a person closed 0.4 lot: T1 (0.7 left) is
removed and T2 placed for 0.3, and the running engine rightly books the exit as 60000 with
30000 filled (0.3 still to close). After a restart, ``order_reports`` merges the legs by
comment but counts a CANCELED leg's fills as 0 (``mt5_reports.order_reports``), so the
exit is reported for 0 + 0.3 = 30000 with 0 filled and adopted so (``adopted_order``):
the restarted engine works it as (30000, 0) where the journal and the bot before the
restart held (60000, 30000) — what is left agrees, but the order's own fills (0.3 lot,
journaled) are no longer counted as its own. Must be (60000, 30000). Fails now.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
)
from tests.brokers.mt5.test_mt5_netting_reduce_only_cut import _close_by_hand, _netting, _resting
from tests.brokers.mt5.test_mt5_netting_reduce_only_read_race import _fill_part
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import constants as C
from tradefleet_plugins.brokers import mt5_requests as rq
from tradefleet_plugins.brokers.mt5_reports import order_reports
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderIntent
from tradefleet_runtime.sdk import OrderType, Side

LOT = 100_000.0
EXIT = 1.1050


def test_a_restart_after_cutting_a_part_filled_exit_adopts_its_fills_and_its_rest(
    tmp_path: Path,
) -> None:
    venue = _netting()
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    restarted: Mt5Harness | None = None
    try:
        exit_limit = OrderIntent("EURUSD", Side.SELL, LOT, OrderType.LIMIT, EXIT, reduce_only=True)
        strategy = Scripted(
            {0: lambda c, b: c.buy("EURUSD", LOT), 1: lambda c, b: c.submit(exit_limit)}
        )
        engine, _ = live_engine(venue, strategy, journal)
        for i in range(2):
            engine.run([minute_bar(i, 1.1)])
            settle_and_pump(engine, venue)
        (exit_order,) = [w.order for w in engine.book if w.order.reduce_only]
        exit_id = exit_order.client_order_id
        ((first, _, _, _, _),) = _resting(venue)
        _fill_part(venue.terminal, first, 0.3, EXIT)  # 0.7 long, 0.7 of the exit left
        _close_by_hand(venue, 0.4)  # 0.3 long
        for _ in range(3):
            settle_and_pump(engine, venue)
        ((second, volume, _, _, _),) = _resting(venue)
        assert second != first and volume == 0.3
        working = engine.book.get(exit_id)
        assert working is not None
        assert (working.order.quantity, working.filled) == (60_000.0, 30_000.0)
        journal.close()
        venue.close()  # the bot goes down; T2 rests for 0.3

        restarted = _netting(venue.terminal)
        second_journal = Journal(path, durable=True)
        try:
            again, carried, plan = restarted_plan(restarted, second_journal, EMULATOR_T0 - 3600)
            again.restore_from_venue(carried, plan, EMULATOR_T0)
            settle_and_pump(again, restarted)
            adopted = again.book.get(exit_id)
            assert adopted is not None
            # As before the restart, and as the journal's fills say. Now: (30000, 0) — the
            # order's 30000 journaled fills are no longer its own.
            assert (adopted.order.quantity, adopted.filled) == (60_000.0, 30_000.0)
        finally:
            second_journal.close()
    finally:
        venue.close()
        if restarted is not None:
            restarted.close()


# -- the merge itself: only a leg a cut removed counts its fills --------------------------------


def _record(ticket: int, comment: str, state: int, initial: float, current: float) -> Any:
    """An MT5 order record (lots) of a sell limit of EURUSD at ``EXIT``."""
    ended = state != C.ORDER_STATE_STARTED
    return SimpleNamespace(
        ticket=ticket,
        comment=comment,
        state=state,
        type=C.ORDER_TYPE_SELL_LIMIT,
        symbol="EURUSD",
        volume_initial=initial,
        volume_current=current,
        price_open=EXIT,
        price_current=EXIT,
        time_setup=1_000 + ticket,
        time_done=2_000 + ticket if ended else 0,
        position_id=0,
        reason=0,
    )


def _merged(records: list[Any]) -> tuple[float, float]:
    (report,) = order_reports(
        records, lambda c: rq.base_comment(c), lambda s: s, lambda _s, lots: lots * LOT
    )
    return report.quantity, report.filled_quantity


def test_a_leg_a_cut_removed_counts_its_fills_and_a_moved_leg_still_does_not() -> None:
    # A cut: T1 (1.0 lot, 0.3 filled) removed, T2 re-placed under the very same comment.
    cut = [
        _record(1, "x", C.ORDER_STATE_CANCELED, 1.0, 0.7),
        _record(2, "x", C.ORDER_STATE_STARTED, 0.3, 0.3),
    ]
    # Old code: (30000, 0).
    assert _merged(cut) == (60_000.0, 30_000.0)
    # A resting order moved through the market: its rest sent again as a new leg ("x#1"):
    # merged as before, the cancelled leg counting no fills.
    moved = [
        _record(1, "x", C.ORDER_STATE_CANCELED, 1.0, 0.7),
        _record(2, f"x{rq.LEG_MARK}1", C.ORDER_STATE_STARTED, 0.7, 0.7),
    ]
    assert _merged(moved) == (70_000.0, 0.0)
    # One cancelled order alone: nothing filled, as before.
    assert _merged([_record(1, "x", C.ORDER_STATE_CANCELED, 1.0, 0.7)]) == (100_000.0, 0.0)
