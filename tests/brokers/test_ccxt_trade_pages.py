"""More of the bot's orders and trades than one page of the venue's lists: every working order
is reported, and every fill reaches the bot.

Bybit's execution list and Kraken's trade history answer newest first, a page at a time (50
rows unless asked otherwise; Bybit at most 100). A poll that read one page from its last trade
on would take the newest page, move past the rest, and never see them: those orders would
stay open in the bot's book for ever and their part of the position would be missing. The
same holds for the fills a restart reconciles (``fill_reports``). Binance answers oldest
first from the start asked; it is here as the control.

One price move fills more resting orders at once than a page holds (120: more than Bybit's
largest page and two of Kraken's)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.brokers.harness import VENUE_SETUPS, Harness, VenueHarness, harness_for
from tradefleet_runtime.sdk import Fill, OrderStatus, OrderType, OrderUpdate, Side

ORDERS = 120
QUANTITY = 0.003  # above every fake's minimum order value at 49,000


def _rest_many(harness: Harness) -> list[str]:
    ids = [f"pg{n:03d}" for n in range(ORDERS)]
    for cid in ids:
        order = harness.order(
            cid, quantity=QUANTITY, order_type=OrderType.LIMIT, price=harness.px(49_000)
        )
        answer = harness.broker.submit(order)
        assert not answer.status.is_final, answer

    def all_open(events: list[Fill | OrderUpdate]) -> bool:
        opened = {
            e.client_order_id
            for e in events
            if isinstance(e, OrderUpdate) and e.status is OrderStatus.OPEN
        }
        return opened >= set(ids)

    harness.wait_for(all_open, timeout=60)
    return ids


def _settled_polls(harness: VenueHarness) -> None:
    """Until the poller looks no order up by its id (a cycle that began while the orders were
    being placed looks up those it did not see listed, one at a time)."""
    deadline = time.monotonic() + 30
    while True:
        seen = len(harness.fake.requests)
        time.sleep(0.5)
        fresh = list(harness.fake.requests)[seen:]
        if not any(r.params.get("orderLinkId") or r.params.get("cl_ord_id") for r in fresh):
            return
        assert time.monotonic() < deadline, "the poller kept looking orders up"


@pytest.mark.parametrize("name", VENUE_SETUPS)
def test_more_fills_than_a_page_between_two_polls_all_reach_the_bot(
    name: str, tmp_path: Path
) -> None:
    # ccxt's spacing made short (the fakes keep no rate limit): 120 orders and their look-ups.
    with harness_for(name, tmp_path, rate_limit_ms=10) as harness:
        ids = _rest_many(harness)
        # A restart finds every working order (Bybit lists open orders 20 a page unless asked).
        working = {r.client_order_id: r.status for r in harness.broker.order_reports(0)}
        assert {cid: working.get(cid) for cid in ids} == dict.fromkeys(ids, OrderStatus.OPEN)
        assert isinstance(harness, VenueHarness)
        _settled_polls(harness)
        before = len(harness.fake.requests)
        harness.trade_through(harness.px(48_000))

        def all_done(_events: list[Fill | OrderUpdate]) -> bool:
            return all(harness.final(cid) is not None for cid in ids)

        harness.wait_for(all_done, timeout=60)
        if name == "bybit":
            # The orders that left the open list are found among Bybit's newest ended orders
            # (50 a call), not looked up one call each.
            asked = list(harness.fake.requests)[before:]
            one_by_one = [r for r in asked if r.params.get("orderLinkId")]
            assert len(one_by_one) < 10, len(one_by_one)
            assert sum(r.path == "/v5/order/history" for r in asked) <= 8
        for cid in ids:
            final = harness.final(cid)
            assert final is not None and final.status is OrderStatus.FILLED, (cid, final)
            assert harness.filled(cid) == pytest.approx(QUANTITY), cid
        harness.assert_venue_matches()

        # A restart reconciles from the venue's own list of the bot's fills: all of them.
        reports = harness.broker.fill_reports(0)
        counts = Counter(f.client_order_id for f in reports)
        assert {cid: counts[cid] for cid in ids} == dict.fromkeys(ids, 1)
        assert sum(harness.executed(f) for f in reports) == pytest.approx(ORDERS * QUANTITY)


def test_a_stop_cancelled_before_it_triggered_is_in_bybits_order_reports(tmp_path: Path) -> None:
    """Bybit names such an order "Deactivated": neither filled nor cancelled. A restart's
    reconciliation reads every ended order, so it finds it, cancelled, not missing."""
    with harness_for("bybit", tmp_path, rate_limit_ms=10) as harness:
        stop = harness.order("dst1", Side.SELL, order_type=OrderType.STOP, price=harness.px(45_000))
        harness.broker.submit(stop)
        harness.answer(harness.broker.submit(harness.order("dst2")))  # a market order beside
        harness.wait_for(
            lambda events: any(
                isinstance(e, OrderUpdate) and e.client_order_id == "dst1" for e in events
            )
        )
        harness.broker.cancel("dst1")
        assert harness.wait_final("dst1").status is OrderStatus.CANCELLED
        assert isinstance(harness, VenueHarness)
        assert [o.status for o in harness.venue_orders() if o.link_id == "dst1"] == ["Deactivated"]
        reports = {r.client_order_id: r for r in harness.broker.order_reports(0)}
        assert reports["dst1"].status is OrderStatus.CANCELLED
        assert reports["dst2"].status is OrderStatus.FILLED


def test_fills_over_more_than_a_week_reach_a_restarted_bot_on_bybit(tmp_path: Path) -> None:
    """Bybit answers at most seven days a request (only a start: the seven days after it). A
    bot restarted after more than a week reconciles every fill since it went down, not the
    first week's."""
    with harness_for("bybit", tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        for cid in ("wk1", "wk2"):
            harness.broker.submit(harness.order(cid))
            harness.wait_filled(cid)
        now_ms = harness.fake.state.clock.now_ms()
        with harness.fake.state.lock:
            first = next(
                x for x in harness.fake.state.executions[harness.fake.api_key] if x.link_id == "wk1"
            )
            first.time = now_ms - 9 * 86_400_000  # nine days ago
        reports = harness.broker.fill_reports(now_ms // 1000 - 10 * 86_400)
        assert sorted(f.client_order_id for f in reports) == ["wk1", "wk2"]
