"""A spot order amended by cancel-replace keeps its identity across a restart.

Binance spot amends an order by cancel-replace: the copy the venue cancels keeps what it
executed, and the replacement works under a derived client id, ``<id>-a<n>``
(``sdk.venue_replacement_id``), for what is left. While the bot runs, the ccxt broker calls
every copy by the bot's own id. At a restart it reported the venue's rows as they are: the
cancelled first copy under ``<id>`` and the replacement under ``<id>-a1`` with the copy's own
quantity and fills. Start-up reconciliation then closed the bot's order as CANCELLED and
adopted ``<id>-a1`` as an order the bot never sent (a limit buy of 0.01 that had filled
0.004, moved: ``<id>`` cancelled, ``<id>-a1`` adopted for 0.006); a later fill of the
replacement was booked against that stranger, a fill made while the bot was down too, and an
amend of the bot's order after the restart was refused (no working order ``<id>``).

Now the broker reports (and follows) the order's newest copy under the bot's id, with the whole
order's quantity and what every copy executed: the restarted bot's ``<id>`` is the working
order, nothing is adopted, each fill is booked once against ``<id>``.

Against the fake Binance spot with the real ccxt, on an account holding USDT only (so its coin
balance is what the bot bought): a buy's fee is 0.1 % of the coin bought, the lot step
0.00001 BTC.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import (
    LIMIT,
    MOVED,
    QUANTITY,
    Killed,
    Step,
    bot_broker,
    btc,
    coinless_spot_for_a_bot,
    hourly_bars,
    journal_fills,
    life,
    part_fill,
    statuses_of,
    until,
    venue_orders,
    venue_trade_ids,
)
from tests.brokers.harness import (
    PREFIX,
    SYMBOL,
    VenueHarness,
    coinless_spot,
    harness_for,
    updates,
)
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.reconcile import ReconcilePlan
from tradefleet_runtime.sdk import Fill, OrderStatus, OrderType, ReasonCode, Side
from tradefleet_runtime.session import BotSession

FIRST = 0.004  # what the order's first copy filled before the move


@dataclass
class _First:
    """What the first life left: the bot's order id and what it booked of it."""

    cid: str = ""
    booked: float = 0.0


def _part_filled_and_moved(harness: VenueHarness, first: _First) -> Step:
    """The first life's end: the bot's limit buy fills ``FIRST``, the bot books it, the order
    is moved to ``MOVED`` (Binance: ``<id>-a1`` for the rest), and the process dies."""

    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        [order] = engine.open_orders()
        first.cid = cid = order.client_order_id
        part_fill(harness, cid, FIRST, LIMIT)
        until(engine, lambda: engine.position(SYMBOL).quantity > 0.0, "the first fill")
        first.booked = engine.position(SYMBOL).quantity
        broker = bot_broker(session)
        broker.amend(cid, None, MOVED)
        until(
            engine,
            lambda: (
                venue_orders(harness, cid).get(f"{cid}-a1", ("",))[0] == "NEW"
                and len(statuses_of(journal, cid)) >= 4
            ),  # then its "amended" update
            "the amend",
        )
        raise Killed

    return step


def _journal_orders(path: Path) -> dict[str, tuple[str, float]]:
    """The orders of the journal's newest run (the restarted one): id -> (latest status,
    quantity)."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT client_order_id, status, quantity FROM order_status WHERE run_id = "
            "(SELECT run_id FROM runs ORDER BY rowid DESC LIMIT 1)"
        ).fetchall()
    finally:
        db.close()
    return {str(cid): (str(status), float(quantity)) for cid, status, quantity in rows}


@dataclass
class _Second:
    plan: ReconcilePlan | None = None
    working: list[tuple[str, float, float]] | None = None  # (id, quantity, filled)
    position_after_restart: float = 0.0
    position_at_end: float = 0.0
    finals: list[str] | None = None


def _restarted(harness: VenueHarness, first: _First, second: _Second, fill_rest: bool) -> Step:
    """The second life: what reconciliation made of the order, then (``fill_rest``) the
    market trades through the moved price and the replacement fills."""

    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        second.plan = session.reconciliation
        second.working = []
        for order in engine.open_orders():
            working = engine.book.get(order.client_order_id)
            assert working is not None
            second.working.append((order.client_order_id, order.quantity, working.filled))
        second.position_after_restart = engine.position(SYMBOL).quantity
        if fill_rest:
            harness.trade_through(MOVED - 100)
            until(engine, lambda: not engine.open_orders(), "the replacement's fill")
            time.sleep(0.3)  # later polls: nothing more may come
            engine.pump()
        second.position_at_end = engine.position(SYMBOL).quantity
        second.finals = statuses_of(journal, first.cid)

    return step


def test_a_restarted_bot_keeps_its_amended_order_and_books_the_replacements_fill_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot's limit buy of 0.01 filled 0.004, was moved (``<id>-a1`` for 0.006), and the
    bot died. Restarted, it still works ``<id>`` for 0.01 with 0.004 filled, adopts nothing
    and journals no other order; the replacement's fill is booked once, against ``<id>``, which
    ends FILLED; the bot holds what the account bought."""
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        bars = hourly_bars(3)
        first = _First()
        life(tmp_path, harness, bars[:1], _part_filled_and_moved(harness, first))
        cid = first.cid
        assert venue_orders(harness, cid) == {
            cid: ("CANCELED", QUANTITY, FIRST),
            f"{cid}-a1": ("NEW", QUANTITY - FIRST, 0.0),
        }

        second = _Second()
        path = life(tmp_path, harness, bars, _restarted(harness, first, second, fill_rest=True))
        plan = second.plan
        assert plan is not None and not plan.degraded
        [adopted] = plan.adopted  # the bot's own order, whole: nothing beside it
        assert adopted.client_order_id == cid
        assert (adopted.quantity, adopted.filled_quantity) == pytest.approx((QUANTITY, FIRST))
        assert plan.closed == () and plan.never_sent == () and plan.missed_fills == ()
        assert second.working is not None
        [(working_id, quantity, filled)] = second.working
        assert working_id == cid
        assert (quantity, filled) == pytest.approx((QUANTITY, FIRST))
        assert second.position_after_restart == pytest.approx(first.booked)

        assert second.finals is not None and second.finals[-1] == "filled"
        assert venue_orders(harness, cid)[f"{cid}-a1"] == ("FILLED", QUANTITY - FIRST, 0.006)
        fills = journal_fills(path)
        assert {c for c, _f, _q in fills} == {cid}
        assert sorted(f for _c, f, _q in fills) == venue_trade_ids(harness, cid)
        assert float(btc(harness)) == pytest.approx(sum(q for _c, _f, q in fills), abs=1e-12)
        assert second.position_at_end == pytest.approx(float(btc(harness)), abs=1e-12)
        orders = _journal_orders(path)
        assert set(orders) == {cid}
        assert orders[cid] == ("filled", QUANTITY)


def test_a_replacement_filled_while_the_bot_was_down_fills_the_bots_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replacement fills while the bot is down: the restarted bot books that fill once,
    against ``<id>``, and closes ``<id>`` FILLED; nothing is adopted."""
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        bars = hourly_bars(3)
        first = _First()
        life(tmp_path, harness, bars[:1], _part_filled_and_moved(harness, first))
        cid = first.cid
        harness.trade_through(MOVED - 100)  # while the bot is down
        deadline = time.monotonic() + 5.0
        while venue_orders(harness, cid)[f"{cid}-a1"][0] != "FILLED":
            assert time.monotonic() < deadline, "the replacement did not fill"
            time.sleep(0.02)

        second = _Second()
        path = life(tmp_path, harness, bars, _restarted(harness, first, second, fill_rest=False))
        plan = second.plan
        assert plan is not None and not plan.degraded
        assert plan.adopted == ()
        assert [(f.client_order_id, f.reason) for f in plan.missed_fills] == [(cid, "limit")]
        [(closed, report)] = plan.closed
        assert closed == cid and report.status is OrderStatus.FILLED
        assert (report.quantity, report.filled_quantity) == pytest.approx((QUANTITY, QUANTITY))
        assert second.working == []
        fills = journal_fills(path)
        assert {c for c, _f, _q in fills} == {cid}
        assert sorted(f for _c, f, _q in fills) == venue_trade_ids(harness, cid)
        assert second.position_at_end == pytest.approx(float(btc(harness)), abs=1e-12)
        orders = _journal_orders(path)
        assert set(orders) == {cid}
        assert orders[cid][0] == "filled"


def test_a_restarted_broker_amends_the_replacement_again_for_what_is_left(
    tmp_path: Path,
) -> None:
    """After a restart the broker follows ``<id>`` at its copy ``<id>-a1`` (0.004 of 0.01
    filled by the first copy, 0.003 by the replacement): ``query_order`` answers for the whole
    order, a second move replaces that copy (``<id>-a2`` for the 0.003 left), and its fill
    reaches the bot under ``<id>``. The fills count as one order's (a rest below the lot step
    carries from copy to copy): the order's final word and its fills hold what the account
    bought."""
    with coinless_spot(tmp_path) as harness:
        cid = f"{PREFIX}rr1"
        order = harness.order(cid, quantity=QUANTITY, order_type=OrderType.LIMIT, price=LIMIT)
        harness.answer(harness.broker.submit(order))
        part_fill(harness, cid, FIRST, LIMIT)
        harness.wait_for(lambda _e: harness.filled(cid) == pytest.approx(FIRST))
        before = len(updates(harness.events, cid))
        harness.broker.amend(cid, None, MOVED)
        harness.wait_for(lambda e: any(u.reason == "amended" for u in updates(e, cid)[before:]))
        part_fill(harness, f"{cid}-a1", 0.003, MOVED)
        harness.wait_for(lambda _e: harness.filled(cid) == pytest.approx(0.007))
        booked = [e for e in harness.events if isinstance(e, Fill)]

        broker = harness.restart()
        [report] = [r for r in broker.order_reports(0) if r.client_order_id.startswith(cid)]
        assert report.client_order_id == cid
        assert report.status is OrderStatus.PARTIALLY_FILLED
        assert (report.quantity, report.filled_quantity) == pytest.approx((QUANTITY, 0.007))
        assert [f.client_order_id for f in broker.fill_reports(0)] == [cid, cid]
        query = broker.query_order(cid)
        assert query is not None and query.status is OrderStatus.PARTIALLY_FILLED
        assert (query.quantity, query.filled_quantity) == pytest.approx((QUANTITY, 0.007))

        harness.events = []
        broker.amend(cid, None, MOVED + 100)
        harness.wait_for(lambda e: bool(updates(e, cid)))
        [amended] = updates(harness.events, cid)
        assert (amended.status, amended.reason) == (OrderStatus.OPEN, "amended")
        assert venue_orders(harness, cid) == {
            cid: ("CANCELED", QUANTITY, FIRST),
            f"{cid}-a1": ("CANCELED", 0.006, 0.003),
            f"{cid}-a2": ("NEW", 0.003, 0.0),
        }

        harness.trade_through(MOVED)
        final = harness.wait_final(cid)
        assert final.status is OrderStatus.FILLED
        later = [e for e in harness.events if isinstance(e, Fill)]
        assert [f.client_order_id for f in later] == [cid]
        every = [*booked, *later]
        assert sorted(f.fill_id for f in every) == venue_trade_ids(harness, cid)
        assert sum(Decimal(str(f.quantity)) for f in every) == btc(harness)
        assert final.filled_quantity == pytest.approx(float(btc(harness)), abs=1e-12)


def test_a_moved_bracket_found_at_a_restart_is_still_the_bots_stop_and_target(
    tmp_path: Path,
) -> None:
    """A bracket's stop-loss moved before the restart works at the venue, with its
    take-profit, as the list ``<entry>-sl-a1``/``<entry>-tp-a1``. The restarted broker reports
    and follows them as the bot's ``<entry>-sl`` and ``<entry>-tp``: moved again, the list is
    placed as ``-a2``; the stop's fill and the target's end reach the bot under their ids."""
    stop_at, target_at, moved = 48_000.0, 52_000.0, 48_500.0
    with coinless_spot(tmp_path) as harness:
        entry = f"{PREFIX}rr2"
        stop, target = f"{entry}-sl", f"{entry}-tp"
        order = harness.order(entry, stop_loss=stop_at, take_profit=target_at)
        harness.answer(harness.broker.submit(order))
        assert harness.wait_final(entry).status is OrderStatus.FILLED
        held = harness.held(entry)
        harness.wait_for(lambda _e: venue_orders(harness, stop).get(stop, ("",))[0] == "NEW")
        harness.broker.amend(stop, None, moved)
        harness.wait_for(lambda e: any(u.reason == "amended" for u in updates(e, stop)))

        broker = harness.restart()
        reports = {r.client_order_id: r for r in broker.order_reports(0)}
        assert set(reports) == {entry, stop, target}
        for leg in (stop, target):
            assert reports[leg].status is OrderStatus.OPEN
            assert reports[leg].quantity == pytest.approx(held)
        assert reports[stop].price == pytest.approx(moved)

        harness.events = []
        broker.amend(stop, None, moved + 500)
        harness.wait_for(lambda e: any(u.reason == "amended" for u in updates(e, stop)))
        working = {
            cid: venue_order
            for cid, venue_order in venue_orders(harness, entry).items()
            if venue_order[0] == "NEW"
        }
        assert set(working) == {f"{stop}-a2", f"{target}-a2"}

        harness.trade_through(moved)  # through the stop, now at 49,000
        assert harness.wait_final(stop).status is OrderStatus.FILLED
        ended = harness.wait_final(target)
        assert (ended.status, ended.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)
        assert harness.held(stop) == pytest.approx(held)
        assert {e.client_order_id for e in harness.events if isinstance(e, Fill)} == {stop}


def test_a_resized_stops_earlier_copy_left_open_is_cancelled_after_a_restart(
    tmp_path: Path,
) -> None:
    """Binance USDⓈ-M resizes a stop by placing ``<id>-a1`` and then cancelling ``<id>``;
    that cancel failed and the bot stopped before a poll cancelled it. The restarted broker
    reports the one order ``<id>`` at its new size and cancels the earlier copy (reduce-only,
    it could act on a later position), as the earlier run was doing."""
    with harness_for("binance-usdm", tmp_path, max_retries=1) as harness:
        assert isinstance(harness, VenueHarness)
        cid = f"{PREFIX}rr3"
        stop = harness.order(cid, side=Side.SELL, price=45_000.0, order_type=OrderType.STOP)
        harness.broker.submit(stop)
        harness.wait_for(lambda e: any(u.status is OrderStatus.OPEN for u in updates(e, cid)))
        # Every cancel of a conditional order fails while the first broker runs.
        harness.fake.faults.inject(
            "server_error", path="/fapi/v1/algoOrder", method="DELETE", times=1_000
        )
        harness.broker.amend(cid, harness.quantity * 2, None)
        harness.wait_for(lambda e: any(u.reason == "amended" for u in updates(e, cid)))
        harness.broker.close()
        assert _algo_orders(harness) == {cid: "NEW", f"{cid}-a1": "NEW"}
        harness.fake.faults.clear()

        broker = harness.restart()
        [report] = [r for r in broker.order_reports(0) if r.client_order_id.startswith(cid)]
        assert report.client_order_id == cid
        assert report.status is OrderStatus.OPEN
        assert report.quantity == pytest.approx(harness.quantity * 2)
        harness.wait_for(lambda _e: _algo_orders(harness)[cid] == "CANCELED")
        assert _algo_orders(harness) == {cid: "CANCELED", f"{cid}-a1": "NEW"}


def _algo_orders(harness: VenueHarness) -> dict[str, str]:
    """The conditional orders of the fake USDⓈ-M account: client id -> status."""
    with harness.fake.state.lock:
        return {a.client_algo_id: a.status for a in harness.fake.state.usdm.algo_orders.values()}
