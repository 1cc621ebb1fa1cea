"""A replacement the bot died before cutting is cut by the restart, before the bot trades.

Binance spot amends by cancel-replace: the replacement ``<id>-a1`` is sized on what the broker
last read of the order (0.004 of a limit buy of 0.01: 0.006 left). When the old copy fills
more between that read and the venue's cancel (0.002), the broker cuts the replacement to what
is left (``<id>-a2``, or cancels it when nothing is): ``_resize_after_race``. A bot that died
after the cancel-replace but before that cut left 0.006 working for 0.004 left; the restarted
broker adopted the copies as one order of 0.012 (what they executed + the replacement), and
the account could buy 0.012 for an order of 0.01.

Now the restart, adopting the copies as one order, sees that what they executed and the
replacement's rest exceed the order's whole quantity (its first copy's 0.01), says so naming
both, and cuts the replacement (or cancels it when nothing is left) before the bot's first
bar; each fill reaches the bot once and the coin balance is what the bot booked.

Against the fake Binance spot with the real ccxt, through a real ``BotSession`` restart, on
an account holding USDT only (its coin balance is what the bot bought).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.ccxt_restart_life import (
    LIMIT,
    MOVED,
    QUANTITY,
    Killed,
    LimitEntry,
    Step,
    VenueOrders,
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
from tests.brokers.harness import SYMBOL, VenueHarness
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_orders import copies_whole_quantity
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.reconcile import ReconcilePlan
from tradefleet_runtime.sdk import Bar
from tradefleet_runtime.session import BotSession

READ, RACED = 0.004, 0.002  # of the order: filled as last read; filled unread
REPLACE_PATH = "/api/v3/order/cancelReplace"


# -- the venue ------------------------------------------------------------------------------


def _executed(harness: VenueHarness, cid: str) -> Decimal:
    """What every copy of the order executed at the venue: what the account bought."""
    with harness.fake.state.lock:
        return sum(
            (
                o.executed_qty
                for o in harness.fake.orders("spot")
                if o.client_order_id.startswith(cid)
            ),
            Decimal(0),
        )


def _replaces(harness: VenueHarness) -> int:
    return sum(1 for r in list(harness.fake.requests) if r.path == REPLACE_PATH)


# -- the bot --------------------------------------------------------------------------------


def _raced_and_died(harness: VenueHarness, cid_out: list[str], would_cut: threading.Event) -> Step:
    """The first life's end: the bot's buy filled ``READ``, booked; moved to ``MOVED`` while
    the old copy fills ``RACED`` more before the venue takes the cancel-replace (the
    replacement asks for 0.006, 0.004 being left); the broker sees the race and would cut the
    replacement (``would_cut``) — and the process dies before it does."""

    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        [order] = engine.open_orders()
        cid = order.client_order_id
        cid_out.append(cid)
        part_fill(harness, cid, READ, LIMIT)
        until(engine, lambda: engine.position(SYMBOL).quantity > 0.0, "the first fill")
        broker = bot_broker(session)
        harness.fake.faults.inject("latency", path=REPLACE_PATH, method="POST", delay_ms=800)
        sent = _replaces(harness)
        broker.amend(cid, None, MOVED)
        deadline = time.monotonic() + 5.0
        while _replaces(harness) == sent:
            assert time.monotonic() < deadline, "the cancel-replace never left"
            time.sleep(0.01)
        part_fill(harness, cid, RACED, LIMIT)  # at the venue, before its cancel
        assert would_cut.wait(10.0), "the broker did not see the race"
        harness.fake.faults.clear()
        raise Killed

    return step


@dataclass
class _Second:
    plan: ReconcilePlan | None = None
    at_first_bar: VenueOrders | None = None
    position_at_end: float = 0.0
    finals: list[str] = field(default_factory=list)


def _restarted(harness: VenueHarness, cid: str, second: _Second, fill_rest: bool) -> Step:
    def step(session: BotSession, engine: Engine, journal: Journal) -> None:
        second.plan = session.reconciliation
        if fill_rest:
            harness.trade_through(MOVED - 100)
        until(engine, lambda: not engine.open_orders(), "the order's end")
        time.sleep(0.3)  # later polls: nothing more may come
        engine.pump()
        second.position_at_end = engine.position(SYMBOL).quantity
        second.finals = statuses_of(journal, cid)

    return step


def _second_life(
    tmp_path: Path,
    harness: VenueHarness,
    bars: list[Bar],
    cid: str,
    caplog: pytest.LogCaptureFixture,
    *,
    fill_rest: bool,
) -> tuple[_Second, Path]:
    """Run the restarted life, its warnings captured (``caplog``): what it saw, with the
    venue's copies of ``cid`` as the bot's first bar found them, and the journal's path."""
    second = _Second()

    def look() -> None:
        if second.at_first_bar is None:
            second.at_first_bar = venue_orders(harness, cid)

    strategy = LimitEntry(at=bars[0].ts, look=look)
    with caplog.at_level(logging.WARNING, logger="tradefleet"):
        path = life(
            tmp_path, harness, bars, _restarted(harness, cid, second, fill_rest), strategy=strategy
        )
    return second, path


def _first_life(
    tmp_path: Path, harness: VenueHarness, bars: list[Bar], monkeypatch: pytest.MonkeyPatch
) -> str:
    """Run the first life to its death; the bot's order id."""
    would_cut = threading.Event()
    cids: list[str] = []
    with monkeypatch.context() as patch:
        # The process stops where the cut would be sent: nothing of it reaches the venue.
        patch.setattr(
            CcxtBroker, "_resize_after_race", lambda _self, _tracked, _executed: would_cut.set()
        )
        life(tmp_path, harness, bars[:1], _raced_and_died(harness, cids, would_cut))
    [cid] = cids
    assert venue_orders(harness, cid) == {
        cid: ("CANCELED", QUANTITY, READ + RACED),
        f"{cid}-a1": ("NEW", QUANTITY - READ, 0.0),
    }
    return cid


def _assert_books_what_the_account_bought(
    harness: VenueHarness, cid: str, path: Path, end: float
) -> None:
    fills = journal_fills(path)
    assert {c for c, _f, _q in fills} == {cid}
    assert sorted(f for _c, f, _q in fills) == venue_trade_ids(harness, cid)  # once each
    assert _executed(harness, cid) == Decimal(str(QUANTITY))  # not 0.012
    assert float(btc(harness)) == pytest.approx(sum(q for _c, _f, q in fills), abs=1e-12)
    assert end == pytest.approx(float(btc(harness)), abs=1e-12)


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueHarness]:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        yield harness


def test_a_restart_cuts_a_replacement_left_for_more_than_is_left(
    harness: VenueHarness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The copies executed 0.006 and the replacement works 0.006 of an order of 0.01: the
    restart cuts it to ``-a2`` for 0.004 before the bot's first bar, with a warning naming
    both; the bot works its order of 0.01 and, the market through its price, bought 0.01."""
    bars = hourly_bars(3)
    cid = _first_life(tmp_path, harness, bars, monkeypatch)

    second, path = _second_life(tmp_path, harness, bars, cid, caplog, fill_rest=True)
    assert second.at_first_bar == {
        cid: ("CANCELED", QUANTITY, READ + RACED),
        f"{cid}-a1": ("CANCELED", QUANTITY - READ, 0.0),
        f"{cid}-a2": ("NEW", pytest.approx(QUANTITY - READ - RACED), 0.0),
    }
    plan = second.plan
    assert plan is not None and not plan.degraded
    [adopted] = plan.adopted
    assert adopted.client_order_id == cid
    assert (adopted.quantity, adopted.filled_quantity) == pytest.approx((QUANTITY, READ + RACED))
    [said] = [r.getMessage() for r in caplog.records if "exceed" in r.getMessage()]
    assert cid in said and "0.012" in said and "0.01" in said and "0.004" in said
    assert second.finals[-1] == "filled"
    _assert_books_what_the_account_bought(harness, cid, path, second.position_at_end)


def test_a_restart_cancels_a_replacement_when_nothing_is_left(
    harness: VenueHarness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the bot was down the replacement filled 0.004 of its 0.006: with the copies'
    0.006 the order's 0.01 is bought. The restart cancels the replacement's 0.002 before the
    bot's first bar; the bot's order ends, having bought 0.01."""
    bars = hourly_bars(3)
    cid = _first_life(tmp_path, harness, bars, monkeypatch)
    part_fill(harness, f"{cid}-a1", QUANTITY - READ - RACED, MOVED)

    second, path = _second_life(tmp_path, harness, bars, cid, caplog, fill_rest=False)
    assert second.at_first_bar is not None
    status, ordered, executed = second.at_first_bar[f"{cid}-a1"]
    assert status == "CANCELED"
    assert (ordered, executed) == pytest.approx((QUANTITY - READ, QUANTITY - READ - RACED))
    assert set(second.at_first_bar) == {cid, f"{cid}-a1"}
    [said] = [r.getMessage() for r in caplog.records if "exceed" in r.getMessage()]
    assert cid in said and "cancelled" in said
    assert second.finals[-1] == "cancelled"
    plan = second.plan  # cancelled at connect, before the reconciliation read it
    assert plan is not None and not plan.degraded and plan.adopted == ()
    [(closed, report)] = plan.closed
    assert closed == cid
    assert (report.quantity, report.filled_quantity) == pytest.approx((QUANTITY, QUANTITY))
    _assert_books_what_the_account_bought(harness, cid, path, second.position_at_end)


@pytest.mark.parametrize(
    ("copies", "whole"),
    [
        ([(1.0, 0.4)], 1.0),  # one copy before the newest: its own quantity
        ([(1.0, 0.6), (0.6, 0.0)], 1.0),  # a raced copy (sized on 0.4) does not raise it
        ([(1.0, 0.4), (0.4, 0.1)], 0.8),  # moved down to 0.8 once: 0.4 + 0.4
        ([(1.0, 0.0), (1.0, 0.0)], 1.0),
    ],
)
def test_copies_whole_quantity_is_the_least_the_earlier_copies_show(
    copies: list[tuple[float, float]], whole: float
) -> None:
    assert copies_whole_quantity(copies) == pytest.approx(whole)
