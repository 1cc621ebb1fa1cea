"""``spent_uncovered``: at a restart, the part of a bracket entry that filled beyond what its
children covered, once a child filled (its bracket ended), is what the engine closes at market
(``bracket_spent``); pure."""

from __future__ import annotations

from tests.runtime.helpers import Scripted, make_engine
from tradefleet_runtime.brackets import bracket_children, bracket_role
from tradefleet_runtime.model import (
    CarriedState,
    Fill,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    Side,
)
from tradefleet_runtime.reconcile import (
    ReconcilePlan,
    SpentUncovered,
    spent_close_id,
    spent_uncovered,
)

ENTRY = Order(
    "tfentry",
    "BTC",
    Side.BUY,
    1.0,
    OrderType.LIMIT,
    49_000.0,
    stop_loss=47_000.0,
    take_profit=53_000.0,
)


def _fill(cid: str, quantity: float, n: int, side: Side = Side.BUY) -> Fill:
    return Fill(cid, "BTC", side, quantity, 49_000.0, 0.0, n, f"f{n}")


def _working(covered: float) -> list[tuple[Order, float]]:
    """The entry working with 0.4 filled, its children journaled for ``covered``."""
    return [(ENTRY, 0.4), *((child, 0.0) for child in bracket_children(ENTRY, covered, 1))]


def test_what_filled_beyond_the_children_once_the_stop_filled_is_uncovered() -> None:
    fills = [_fill("tfentry", 0.4, 1)]
    missed = [_fill("tfentry", 0.6, 2), _fill("tfentry-sl", 0.4, 3, Side.SELL)]
    assert spent_uncovered(_working(0.4), fills, missed, {}) == (
        SpentUncovered("tfentry", "BTC", Side.SELL, 0.6),
    )


def test_nothing_while_no_child_filled_the_engine_grows_them() -> None:
    fills = [_fill("tfentry", 0.4, 1)]
    assert spent_uncovered(_working(0.4), fills, [_fill("tfentry", 0.6, 2)], {}) == ()


def test_nothing_when_the_children_covered_all_that_filled() -> None:
    fills = [_fill("tfentry", 0.4, 1)]
    missed = [_fill("tfentry-tp", 0.4, 2, Side.SELL)]
    assert spent_uncovered(_working(0.4), fills, missed, {}) == ()


def test_a_childs_cut_counts_as_covered() -> None:
    """A child cut from 0.4 to 0.1 as its position got smaller still covered the 0.4."""
    fills = [_fill("tfentry", 0.4, 1)]
    missed = [_fill("tfentry-sl", 0.1, 2, Side.SELL)]
    cuts = {"tfentry-sl": 0.3, "tfentry-tp": 0.3}
    assert spent_uncovered(_working(0.1), fills, missed, cuts) == ()


def test_an_entry_whose_children_are_not_journaled_working_is_left_out() -> None:
    fills = [_fill("tfentry", 0.4, 1)]
    missed = [_fill("tfentry", 0.6, 2), _fill("tfentry-sl", 0.4, 3, Side.SELL)]
    assert spent_uncovered([(ENTRY, 0.4)], fills, missed, {}) == ()


def test_the_close_id_is_the_entrys_and_no_bracket_role() -> None:
    assert spent_close_id("tfentry") == "tfentry-bs"
    assert bracket_role(spent_close_id("tfentry")) is None


def test_the_summary_counts_an_orphan_to_cancel_as_not_adopted() -> None:
    tp = OrderReport(
        "tfentry-tp", "v1", "BTC", Side.SELL, OrderType.LIMIT, 0.4, 0.0, OrderStatus.OPEN, 1
    )
    plan = ReconcilePlan(adopted=(tp,), orphaned=("tfentry-tp",))
    assert "0 working order(s) adopted" in plan.summary()
    assert "1 bracket order(s) whose sibling filled to be cancelled" in plan.summary()


def _restart(known: frozenset[str]) -> tuple[list[str], list[str]]:
    """A restart of a bot whose entry's rest (0.6) filled while down and whose 0.4 stop then
    fired (``Engine.restore_from_venue`` on a paper engine): the ids of the orders it sent,
    and the kinds of the events it journaled. ``known``: ids earlier runs journaled."""
    engine = make_engine(Scripted(), symbols=("BTC",))
    working = _working(0.4)
    state = CarriedState(
        initial_capital=10_000.0,
        fills=[_fill("tfentry", 0.4, 1)],
        working=working,
        known_order_ids=known | {order.client_order_id for order, _ in working},
    )
    missed = (_fill("tfentry", 0.6, 2), _fill("tfentry-sl", 0.4, 3, Side.SELL))
    closed = tuple(
        (
            order.client_order_id,
            OrderReport(
                order.client_order_id,
                "v",
                "BTC",
                order.side,
                order.order_type,
                order.quantity,
                order.quantity,
                OrderStatus.FILLED,
                3,
            ),
        )
        for order, _ in working[:2]
    )
    plan = ReconcilePlan(missed_fills=missed, closed=closed, adopted=(), orphaned=())
    engine.restore_from_venue(state, plan, 10)
    sent = [str(cid) for (cid,) in engine.journal.query("SELECT client_order_id FROM orders")]  # type: ignore[attr-defined]
    kinds = [str(kind) for (kind,) in engine.journal.query("SELECT kind FROM events")]  # type: ignore[attr-defined]
    return sent, kinds


def test_the_restart_closes_the_uncovered_part_under_the_entrys_derived_id_once() -> None:
    sent, kinds = _restart(frozenset())
    assert spent_close_id("tfentry") in sent and "bracket_spent" in kinds
    # A later restart that finds that id journaled (the close sent, whatever became of it)
    # does not send it again.
    sent, kinds = _restart(frozenset({spent_close_id("tfentry")}))
    assert spent_close_id("tfentry") not in sent and "order_known" in kinds
