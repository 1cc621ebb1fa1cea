"""A position made smaller by another order than its bracket's (a plain reduce, a close, a
person at the venue): the engine cuts the working bracket children so that, on each side and
in each role, they close no more than the position holds — oldest first, one cut to nothing
cancelled — journaled naming the fill that cut them, and asked of the broker (a resize,
``amend``; a cancel), so the paper broker's own book, a restart and the risk plugins' stops
all read what protects the position.

What went wrong before: two 1.0 entries with SL/TP, then a plain sell of 1.0: the engine (and
the paper broker) kept 2.0 of working stops for a 1.0 position, which risk-at-stop counts
twice; a 2.0 entry's stop stayed at 2.0 after a reduce to 1.0; and the stops of a position
closed by a plain sell kept working, to stop out the next, unbracketed, entry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import Scripted, bar, make_engine, paper_engine
from tradefleet_runtime.brackets import STOP_LOSS_TAG, TAKE_PROFIT_TAG
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.order_book import ChildLeft, OrderBook, children_over_position
from tradefleet_runtime.engine.risk_snapshot import protective_stops
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, Order, OrderType, Side

SL, TP = 90.0, 120.0


# -- the rule, pure ------------------------------------------------------------------------------


def _child(name: str, left: float, tag: str = STOP_LOSS_TAG, side: Side = Side.SELL) -> ChildLeft:
    return ChildLeft(name, side, tag, left)


def test_the_oldest_children_are_cut_first_each_role_apart() -> None:
    children = [
        _child("a-sl", 1.0),
        _child("a-tp", 1.0, TAKE_PROFIT_TAG),
        _child("b-sl", 1.0),
        _child("b-tp", 1.0, TAKE_PROFIT_TAG),
    ]
    assert children_over_position(1.0, children) == [("a-sl", 0.0), ("a-tp", 0.0)]
    assert children_over_position(1.5, children) == [("a-sl", 0.5), ("a-tp", 0.5)]
    assert children_over_position(2.0, children) == []  # nothing over the position
    flat = sorted(children_over_position(0.0, children))
    assert flat == sorted((c.client_order_id, 0.0) for c in children)


def test_a_short_is_closed_by_buys_and_a_child_left_from_before_a_reversal_closes_nothing() -> None:
    buys = [_child("a-sl", 2.0, side=Side.BUY)]
    assert children_over_position(-1.0, buys) == [("a-sl", 1.0)]
    assert children_over_position(-3.0, buys) == []
    # a long's sell stop once the position is short: it would add to it
    assert children_over_position(-1.0, [_child("a-sl", 1.0)]) == [("a-sl", 0.0)]


def test_what_is_left_goes_down_to_the_lot_step_never_over_the_position() -> None:
    children = [_child("a-sl", 0.3), _child("b-sl", 0.3)]
    assert children_over_position(0.35, children, lot_step=0.1) == [("a-sl", 0.0)]
    assert children_over_position(0.5, children, lot_step=0.1) == [("a-sl", 0.2)]


def test_a_cut_child_grows_by_what_its_entry_fills_after_not_back_to_all_it_filled() -> None:
    book = OrderBook()
    entry = Order("e", "TEST", Side.BUY, 3.0, OrderType.LIMIT, 100.0, SL, TP, created_ts=1)
    book.add(entry)
    book.on_fill(Fill("e", "TEST", Side.BUY, 2.0, 100.0, 0.0, 2, "f1"))
    resized = book.shrink("e-sl", 1.0)  # a reduce of 1.0 left the position at 1.0
    assert resized is not None and (resized.order.quantity, resized.previous) == (1.0, 2.0)
    book.on_fill(Fill("e", "TEST", Side.BUY, 1.0, 100.0, 0.0, 3, "f2"))
    sizes = {o.client_order_id: o.quantity for o in book.orders() if o.parent_id}
    assert sizes == {"e-sl": 2.0, "e-tp": 3.0}  # the stop 1.0 + 1.0; the target was not cut


# -- the engine on the paper broker --------------------------------------------------------------


def _bars(n: int) -> list:  # type: ignore[type-arg]
    return [bar(i, 100, 101, 99, 100) for i in range(n)]


def _exits(engine: Engine) -> list[tuple[str, float]]:
    """The engine's working bracket children: (id, quantity left), sorted."""
    return sorted(
        (w.order.client_order_id, w.order.quantity - w.filled)
        for w in engine.book
        if w.order.parent_id is not None
    )


def _paper_exits(engine: Engine) -> list[tuple[str, float]]:
    return sorted(
        (o.client_order_id, o.quantity) for o in engine.broker.open_orders() if o.parent_id
    )


def _buy(quantity: float):  # type: ignore[no-untyped-def]
    return lambda ctx, b: ctx.buy("TEST", quantity, stop_loss=SL, take_profit=TP)


def _sell(quantity: float):  # type: ignore[no-untyped-def]
    return lambda ctx, b: ctx.sell("TEST", quantity)


def _statuses(journal: Journal) -> dict[str, tuple[str, str]]:
    rows = journal.query("SELECT client_order_id, status, reason FROM order_status")
    return {order_id: (status, reason) for order_id, status, reason in rows}


def _entries(journal: Journal) -> list[str]:
    rows = journal.query("SELECT client_order_id FROM orders WHERE stop_loss IS NOT NULL")
    return [row[0] for row in rows]


def test_two_entries_reduced_by_one_keep_one_bracket_as_the_paper_broker_does() -> None:
    journal = Journal(":memory:")
    engine = make_engine(Scripted({0: _buy(1.0), 1: _buy(1.0), 2: _sell(1.0)}), journal=journal)
    engine.run(_bars(4))
    older, newer = _entries(journal)
    assert engine.position("TEST").quantity == 1.0
    assert _exits(engine) == [(f"{newer}-sl", 1.0), (f"{newer}-tp", 1.0)]
    assert _paper_exits(engine) == _exits(engine)  # the broker's own book agrees
    (stops,) = protective_stops(engine.portfolio, engine.book).values()
    assert sum(left for left, _ in stops) == 1.0  # risk at the stop: the position, once
    statuses = _statuses(journal)
    sell = journal.query("SELECT client_order_id FROM orders WHERE side = 'sell' AND tag = ''")
    for role in ("sl", "tp"):
        status, reason = statuses[f"{older}-{role}"]
        assert status == "cancelled"
        assert reason.startswith("nothing left to close: fill ") and sell[0][0] in reason, reason


def test_one_entry_reduced_by_half_is_resized_in_the_journal_and_at_the_broker() -> None:
    journal = Journal(":memory:")
    engine = make_engine(Scripted({0: _buy(2.0), 2: _sell(0.5)}), journal=journal)
    engine.run(_bars(4))
    (entry,) = _entries(journal)
    assert _exits(engine) == [(f"{entry}-sl", 1.5), (f"{entry}-tp", 1.5)]
    assert _paper_exits(engine) == _exits(engine)
    rows = dict(journal.query("SELECT client_order_id, quantity FROM orders"))
    assert rows[f"{entry}-sl"] == 1.5  # what `tradefleet orders` shows
    status, reason = _statuses(journal)[f"{entry}-sl"]
    assert status == "open" and reason.startswith("resized from 2 to 1.5: fill "), reason


def test_the_stops_of_a_position_closed_by_a_plain_sell_stop_out_no_later_entry() -> None:
    journal = Journal(":memory:")
    strategy = Scripted({0: _buy(1.0), 2: _sell(1.0), 4: lambda ctx, b: ctx.buy("TEST", 1.0)})
    engine = make_engine(strategy, journal=journal)
    engine.run([*_bars(6), bar(6, 100, 100, 85, 86)])  # the old stop's price is crossed
    (entry,) = _entries(journal)
    assert [_statuses(journal)[f"{entry}-{r}"][0] for r in ("sl", "tp")] == ["cancelled"] * 2
    assert engine.position("TEST").quantity == 1.0  # the unbracketed entry is still held
    assert [f.reason for f in strategy.fills] == ["market", "market", "market"]


def test_a_stop_of_another_bracket_cuts_the_rest_but_not_its_own_sibling() -> None:
    """Entries of 1.0 (stop 90) and 2.0 (stop 80, same target): the 90 stop fills (1.0); the
    other bracket's 2.0 fits the 2.0 left; nothing is cut, its own target is the venue's to
    cancel (one-cancels-other)."""
    journal = Journal(":memory:")
    first = lambda ctx, b: ctx.buy("TEST", 1.0, stop_loss=90.0, take_profit=TP)  # noqa: E731
    second = lambda ctx, b: ctx.buy("TEST", 2.0, stop_loss=80.0, take_profit=TP)  # noqa: E731
    engine = make_engine(Scripted({0: first, 1: second}), journal=journal)
    engine.run([*_bars(3), bar(3, 100, 100, 88, 89)])
    older, newer = _entries(journal)
    assert engine.position("TEST").quantity == 2.0
    assert _exits(engine) == [(f"{newer}-sl", 2.0), (f"{newer}-tp", 2.0)]
    statuses = _statuses(journal)
    assert statuses[f"{older}-sl"][0] == "filled"
    assert statuses[f"{older}-tp"] == ("cancelled", "one-cancels-other sibling filled")


def test_a_restarted_paper_bot_re_arms_the_children_as_they_were_cut(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    first = Journal(path, durable=True)
    engine = paper_engine(
        first, "run-1", Scripted({0: _buy(1.0), 1: _buy(1.0), 2: _sell(1.5)}), restores_account=True
    )
    engine.run(_bars(4))
    running = _exits(engine)
    newer = _entries(first)[1]
    assert running == [(f"{newer}-sl", 0.5), (f"{newer}-tp", 0.5)]
    first.close()
    second = Journal(path, durable=True)
    restarted = paper_engine(second, "run-2", Scripted(), restores_account=True)
    carried = second.carried_state("bot")
    assert carried is not None
    restarted.restore(carried)
    assert _exits(restarted) == running
    assert _paper_exits(restarted) == running
    second.close()


@pytest.mark.parametrize("sold", [0.5, 1.0, 1.5, 2.0])
def test_the_working_exits_never_add_up_to_more_than_the_position(sold: float) -> None:
    engine = make_engine(Scripted({0: _buy(1.0), 1: _buy(1.0), 2: _sell(sold)}))
    engine.run(_bars(4))
    held = engine.position("TEST").quantity
    exits = _exits(engine)
    for suffix in ("-sl", "-tp"):
        assert sum(left for cid, left in exits if cid.endswith(suffix)) == pytest.approx(held)
