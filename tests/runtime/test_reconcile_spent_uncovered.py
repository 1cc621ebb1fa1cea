"""``spent_uncovered``: at a restart, the part of a bracket entry that filled beyond what its
children covered, once a child filled (its bracket ended), is what the engine closes at market
(``bracket_spent``); and the engine's restart around it (``Engine.restore_from_venue``): never
beside a close already owed or on its way, covered as the venue reports the children, a later
close only for what an earlier one did not close, and a stop the bot may have cancelled itself
never said as cancelled outside."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tests.runtime.helpers import Scripted, make_engine
from tradefleet_runtime.brackets import BRACKET_SPENT_TAG, bracket_children, bracket_role
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.model import (
    CarriedState,
    Fill,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    Side,
)
from tradefleet_runtime.order_ids import original_order_id
from tradefleet_runtime.reconcile import (
    ReconcilePlan,
    SpentUncovered,
    spent_close_id,
    spent_entry_of,
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
SL, TP, BS = "tfentry-sl", "tfentry-tp", "tfentry-bs"


def _fill(cid: str, quantity: float, n: int, side: Side = Side.BUY) -> Fill:
    return Fill(cid, "BTC", side, quantity, 49_000.0, 0.0, n, f"f{n}")


def _working(covered: float) -> list[tuple[Order, float]]:
    """The entry working with 0.4 filled, its children journaled for ``covered``."""
    return [(ENTRY, 0.4), *((child, 0.0) for child in bracket_children(ENTRY, covered, 1))]


def _report(
    order: Order,
    quantity: float,
    filled: float,
    status: OrderStatus = OrderStatus.FILLED,
) -> OrderReport:
    return OrderReport(
        order.client_order_id,
        "v",
        order.symbol,
        order.side,
        order.order_type,
        quantity,
        filled,
        status,
        3,
        reduce_only=order.reduce_only,
    )


def _children_at_venue(sl: float, tp: float) -> dict[str, OrderReport]:
    """The stop filled for ``sl``, the take-profit open for ``tp`` (as the venue says)."""
    stop, target = bracket_children(ENTRY, 0.4, 1)
    return {
        SL: _report(stop, sl, sl),
        TP: _report(target, tp, 0.0, OrderStatus.OPEN),
    }


def _journaled(working: Sequence[tuple[Order, float]]) -> dict[str, Order]:
    return {order.client_order_id: order for order, _ in working}


# -- the pure rule ---------------------------------------------------------------------------


def test_what_filled_beyond_the_children_once_the_stop_filled_is_uncovered() -> None:
    fills = [_fill("tfentry", 0.4, 1), _fill("tfentry", 0.6, 2), _fill(SL, 0.4, 3, Side.SELL)]
    assert spent_uncovered(_journaled(_working(0.4)), fills, {}, _children_at_venue(0.4, 0.4)) == (
        SpentUncovered("tfentry", "BTC", Side.SELL, 0.6),
    )


def test_nothing_while_no_child_filled_the_engine_grows_them() -> None:
    fills = [_fill("tfentry", 0.4, 1), _fill("tfentry", 0.6, 2)]
    assert spent_uncovered(_journaled(_working(0.4)), fills, {}, {}) == ()


def test_nothing_when_the_children_covered_all_that_filled() -> None:
    fills = [_fill("tfentry", 0.4, 1), _fill(TP, 0.4, 2, Side.SELL)]
    stop, target = bracket_children(ENTRY, 0.4, 1)
    reports = {SL: _report(stop, 0.4, 0.0, OrderStatus.OPEN), TP: _report(target, 0.4, 0.4)}
    assert spent_uncovered(_journaled(_working(0.4)), fills, {}, reports) == ()


def test_a_childs_cut_counts_as_covered() -> None:
    """A child cut from 0.4 to 0.1 as its position got smaller still covered the 0.4."""
    fills = [_fill("tfentry", 0.4, 1), _fill(SL, 0.1, 2, Side.SELL)]
    cuts = {SL: 0.3, TP: 0.3}
    stop, target = bracket_children(ENTRY, 0.1, 1)
    reports = {SL: _report(stop, 0.1, 0.1), TP: _report(target, 0.1, 0.0, OrderStatus.OPEN)}
    assert spent_uncovered(_journaled(_working(0.1)), fills, cuts, reports) == ()


def test_an_entry_whose_children_the_venue_does_not_report_is_left_out() -> None:
    fills = [_fill("tfentry", 0.4, 1), _fill("tfentry", 0.6, 2), _fill(SL, 0.4, 3, Side.SELL)]
    assert spent_uncovered(_journaled(_working(0.4)), fills, {}, {}) == ()


def test_covered_is_what_the_venue_reports_not_the_journal() -> None:
    """R32 (2): the journal holds the children grown to 1.0 (the bot decided it as it saw the
    fill), but the venue never took the resize: its stop was 0.4 and sold 0.4. Uncovered is
    the venue's 0.6; the journal's 1.0 would have said nothing is."""
    fills = [_fill("tfentry", 0.4, 1), _fill("tfentry", 0.6, 2), _fill(SL, 0.4, 3, Side.SELL)]
    assert spent_uncovered(_journaled(_working(1.0)), fills, {}, _children_at_venue(0.4, 0.4)) == (
        SpentUncovered("tfentry", "BTC", Side.SELL, 0.6),
    )


def test_what_an_earlier_restarts_close_filled_is_not_owed_again() -> None:
    fills = [
        _fill("tfentry", 0.4, 1),
        _fill("tfentry", 0.6, 2),
        _fill(SL, 0.4, 3, Side.SELL),
        _fill(BS, 0.25, 4, Side.SELL),
    ]
    assert spent_uncovered(_journaled(_working(0.4)), fills, {}, _children_at_venue(0.4, 0.4)) == (
        SpentUncovered("tfentry", "BTC", Side.SELL, 0.35),
    )


def test_the_close_ids_are_the_entrys_and_no_bracket_role() -> None:
    assert spent_close_id("tfentry") == BS
    assert spent_close_id("tfentry", 2) == "tfentry-bs2"
    for attempt in (1, 2, 9):
        close_id = spent_close_id("tfentry", attempt)
        assert bracket_role(close_id) is None and original_order_id(close_id) == close_id
        assert spent_entry_of(close_id) == "tfentry"
    assert spent_entry_of("tfentry-sl") is None and spent_entry_of("tfentry") is None


def test_the_summary_counts_an_orphan_to_cancel_as_not_adopted() -> None:
    tp = OrderReport(TP, "v1", "BTC", Side.SELL, OrderType.LIMIT, 0.4, 0.0, OrderStatus.OPEN, 1)
    plan = ReconcilePlan(adopted=(tp,), orphaned=(TP,))
    assert "0 working order(s) adopted" in plan.summary()
    assert "1 bracket order(s) whose sibling filled to be cancelled" in plan.summary()


# -- the engine's restart --------------------------------------------------------------------


def _restart(
    known: frozenset[str] = frozenset(),
    *,
    journal_covered: float = 0.4,
    events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    extra_adopted: Sequence[OrderReport] = (),
) -> Engine:
    """A restart of a bot whose entry's rest (0.6) filled while down and whose 0.4 stop then
    fired (``Engine.restore_from_venue`` on a paper engine); the take-profit, still open for
    0.4, is orphaned. ``known``: ids earlier runs journaled; ``journal_covered``: the
    children's size as journaled; ``events``: journaled before the restart (a halt with its
    flatten, a close owed); ``extra_adopted``: other orders the venue still works."""
    engine = make_engine(Scripted(), symbols=("BTC",))
    for kind, data in events:
        engine.journal.record_event(0, kind, kind, dict(data))
    working = _working(journal_covered)
    state = CarriedState(
        initial_capital=100_000.0,
        fills=[_fill("tfentry", 0.4, 1)],
        working=working,
        known_order_ids=known | {order.client_order_id for order, _ in working},
    )
    missed = (_fill("tfentry", 0.6, 2), _fill(SL, 0.4, 3, Side.SELL))
    venue = _children_at_venue(0.4, 0.4)
    plan = ReconcilePlan(
        missed_fills=missed,
        closed=((ENTRY.client_order_id, _report(ENTRY, 1.0, 1.0)), (SL, venue[SL])),
        adopted=(venue[TP], *extra_adopted),
        orphaned=(TP,),
    )
    engine.restore_from_venue(state, plan, 10)
    return engine


def _sent(engine: Engine) -> list[tuple[str, float, str]]:
    """(id, quantity, tag) of each order this run journaled as new and reduce-only, but the
    bracket's own children (carried over)."""
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT client_order_id, quantity, tag FROM orders WHERE reduce_only = 1"
        " AND parent_id IS NULL"
    )
    return [(str(cid), float(qty), str(tag)) for cid, qty, tag in rows]


def _kinds(engine: Engine) -> list[str]:
    return [str(kind) for (kind,) in engine.journal.query("SELECT kind FROM events")]  # type: ignore[attr-defined]


def test_the_restart_closes_the_uncovered_part_under_the_entrys_derived_id_once() -> None:
    engine = _restart()
    assert _sent(engine) == [(BS, 0.6, BRACKET_SPENT_TAG)]
    assert "bracket_spent" in _kinds(engine)


def test_a_later_restart_sends_the_next_id_only_for_what_the_earlier_close_left() -> None:
    """R32 (3): the first restart's ``-bs`` close of 0.6 executed 0.25 and the venue ended the
    rest; the next restart (still holding the entry working) closes the 0.35 left under
    ``-bs2`` — never ``-bs`` again (a known id), never the 0.25 already closed again."""
    engine = make_engine(Scripted(), symbols=("BTC",))
    close = Order(BS, "BTC", Side.SELL, 0.6, reduce_only=True, tag=BRACKET_SPENT_TAG)
    working = [*_working(0.4), (close, 0.0)]
    state = CarriedState(
        initial_capital=100_000.0,
        fills=[_fill("tfentry", 0.4, 1), _fill("tfentry", 0.6, 2), _fill(SL, 0.4, 3, Side.SELL)],
        working=working,
        known_order_ids=frozenset(order.client_order_id for order, _ in working),
    )
    venue = _children_at_venue(0.4, 0.4)
    plan = ReconcilePlan(
        missed_fills=(_fill(BS, 0.25, 4, Side.SELL),),
        closed=(
            (ENTRY.client_order_id, _report(ENTRY, 1.0, 1.0)),
            (SL, venue[SL]),
            (BS, _report(close, 0.6, 0.25, OrderStatus.CANCELLED)),
        ),
        adopted=(venue[TP],),
        orphaned=(TP,),
    )
    engine.restore_from_venue(state, plan, 10)
    assert engine.portfolio.position("BTC").quantity == 0.35
    new = [row for row in _sent(engine) if row[0] != BS]
    assert new == [("tfentry-bs2", 0.35, BRACKET_SPENT_TAG)], _sent(engine)


def test_a_close_left_part_filled_with_its_entry_ended_owes_only_its_rest() -> None:
    """The entry's end was journaled by the restart that sent ``-bs``; the next restart finds
    only ``-bs`` working, ended by the venue after 0.25 of 0.6: ``-bs2`` for the 0.35."""
    engine = make_engine(Scripted(), symbols=("BTC",))
    close = Order(BS, "BTC", Side.SELL, 0.6, reduce_only=True, tag=BRACKET_SPENT_TAG)
    state = CarriedState(
        initial_capital=100_000.0,
        fills=[_fill("tfentry", 1.0, 1), _fill(SL, 0.4, 3, Side.SELL)],
        working=[(close, 0.0)],
        known_order_ids=frozenset({ENTRY.client_order_id, SL, TP, BS}),
    )
    plan = ReconcilePlan(
        missed_fills=(_fill(BS, 0.25, 4, Side.SELL),),
        closed=((BS, _report(close, 0.6, 0.25, OrderStatus.CANCELLED)),),
    )
    engine.restore_from_venue(state, plan, 10)
    assert [row for row in _sent(engine) if row[0] != BS] == [
        ("tfentry-bs2", 0.35, BRACKET_SPENT_TAG)
    ]


def test_a_known_close_id_is_never_sent_again() -> None:
    """Every derived id already journaled (and nothing of them filled): none sent."""
    known = frozenset(spent_close_id("tfentry", n) for n in range(1, 10))
    engine = _restart(known)
    assert _sent(engine) == []


def test_covered_comes_from_the_venue_at_the_restart() -> None:
    """R32 (2), through the restart: the journal holds the children at 1.0, the venue's stop
    was 0.4 and sold 0.4; the 0.6 held with no stop is closed."""
    engine = _restart(journal_covered=1.0)
    assert _sent(engine) == [(BS, 0.6, BRACKET_SPENT_TAG)]


_FLATTEN_OWED = ("halted", {"who": "alice", "reason": "kill switch", "flatten": True})


def test_no_spent_close_beside_a_flatten_owed_the_flatten_closes_it_all() -> None:
    """R32 (1): a person's emergency stop with flatten was journaled before the kill and its
    close never filled; the restart resumes it (``BotSession``: ``flatten`` right after the
    reconciliation). The spent close is not sent beside it, and the flatten's one close is
    for the whole 0.6 — not shrunk, not doubled."""
    engine = _restart(events=[_FLATTEN_OWED])
    assert _sent(engine) == []
    engine.flatten("alice", "kill switch")
    sent = _sent(engine)
    assert len(sent) == 1 and sent[0][1] == 0.6 and sent[0][2] != BRACKET_SPENT_TAG, sent


def test_no_spent_close_beside_a_close_owed_for_its_symbol() -> None:
    """R32 (1), the stop policy's close owed: resumed after the reconciliation, it closes the
    whole position alone."""
    owed = ("close_owed", {"symbol": "BTC", "owed": True, "by": "stop-flatten"})
    engine = _restart(events=[owed])
    assert _sent(engine) == []
    engine.resume_closes({"BTC": ("stop-flatten", None)})
    sent = _sent(engine)
    assert len(sent) == 1 and sent[0][1] == 0.6 and sent[0][2] == "stop-flatten", sent


def test_no_spent_close_beside_a_close_still_working_at_the_venue() -> None:
    """R32 (1), the other order: a close an earlier run sent still works at the venue
    (adopted): it is on its way, and no second close is sent beside it."""
    working = OrderReport(
        "tfother", "v9", "BTC", Side.SELL, OrderType.MARKET, 0.6, 0.0, OrderStatus.OPEN, 2,
        reduce_only=True,
    )  # fmt: skip
    engine = _restart(extra_adopted=[working])
    assert [row for row in _sent(engine) if row[0] != "tfother"] == []


def _stop_ended(filled: float) -> Engine:
    """The bot saw the whole entry fill and its stop grew to 1.0; the venue reports the stop
    ended (cancelled) with ``filled`` executed; the take-profit, open, is orphaned."""
    engine = make_engine(Scripted(), symbols=("BTC",))
    stop, target = bracket_children(ENTRY, 1.0, 1)
    working = [(ENTRY, 1.0), (stop, 0.0), (target, 0.0)]
    state = CarriedState(
        initial_capital=100_000.0,
        fills=[_fill("tfentry", 1.0, 1)],
        working=working,
        known_order_ids=frozenset(order.client_order_id for order, _ in working),
    )
    missed = (_fill(SL, filled, 3, Side.SELL),) if filled else ()
    plan = ReconcilePlan(
        missed_fills=missed,
        closed=(
            (ENTRY.client_order_id, _report(ENTRY, 1.0, 1.0)),
            (SL, _report(stop, 1.0, filled, OrderStatus.CANCELLED)),
        ),
        adopted=(_report(target, 1.0, 0.0, OrderStatus.OPEN),),
        orphaned=(TP,) if filled else (),
    )
    engine.restore_from_venue(state, plan, 10)
    return engine


def test_a_stop_ended_part_executed_while_down_is_said() -> None:
    assert _kinds(_stop_ended(0.3)).count("stop_cancelled") == 1


def test_a_stop_ended_with_nothing_executed_is_not_said_it_may_be_the_bots_own_cancel() -> None:
    """R32 (4): the bot asked the stop's cancel itself before it died (a cut to nothing, an
    exit ending its children, a flatten) — the journal does not keep that ask — and the
    venue's cancel is all a restart sees: not said as cancelled outside the bot."""
    assert "stop_cancelled" not in _kinds(_stop_ended(0.0))
