"""Kraken spot has no OCO order, and each resting sell holds the coin it sells: a bracket's
take-profit resting beside its stop-loss needs the position twice, and the venue refuses it on
an account holding only the position. The stop-loss rests at the venue (it acts while the bot
is down); the broker watches the take-profit and, when the price reaches it, lifts the stop
and sells at market under the take-profit's id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import PREFIX, VenueHarness, harness_for, updates, wait_children_open
from tradefleet_runtime.sdk import Fill, OrderStatus, ReasonCode, Side, bracket_children

STOP, TARGET = 48_000.0, 52_000.0


@pytest.fixture
def kraken(tmp_path: Path) -> Iterator[VenueHarness]:
    """The fake Kraken account funded in USD only (no bitcoin)."""
    with harness_for("kraken", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        with harness.fake.state.lock:
            harness.fake.account().balances["XXBT"] = Decimal(0)
        yield harness


def _bracket(harness: VenueHarness, entry: str) -> float:
    """A market buy with its bracket, filled; both children working for the bot: what it
    holds."""
    order = harness.order(entry, stop_loss=STOP, take_profit=TARGET)
    harness.answer(harness.broker.submit(order))
    assert harness.wait_final(entry).status is OrderStatus.FILLED
    held = harness.held(entry)
    wait_children_open(harness, harness.broker, entry, held)
    return held


def _at_venue(harness: VenueHarness) -> dict[str, str]:
    """The bot's orders at the venue: bot id → the venue's status."""
    ids = harness.venue_client_ids()
    return {cid: str(o.status) for cid, o in zip(ids, harness.venue_orders(), strict=True)}


def test_the_take_profit_is_watched_while_the_stop_rests_at_the_venue(
    kraken: VenueHarness,
) -> None:
    held = _bracket(kraken, "ktp1")
    venue = _at_venue(kraken)
    assert venue.get("ktp1-sl") == "open"
    assert "ktp1-tp" not in venue  # never sent: it would need the coin the stop holds
    assert kraken.fake.balance("XXBT") == Decimal(str(held))
    kraken.wait_for(lambda events: bool(updates(events, "ktp1-tp")))
    opened = updates(kraken.events, "ktp1-tp")
    assert [u.status for u in opened] == [OrderStatus.OPEN]
    assert "watched by the bot" in opened[0].reason


def test_the_price_reaching_the_target_sells_at_market_under_its_id(
    kraken: VenueHarness,
) -> None:
    held = _bracket(kraken, "ktp2")
    kraken.trade_through(TARGET + 100.0)
    target = kraken.wait_final("ktp2-tp")
    assert target.status is OrderStatus.FILLED
    sold = [e for e in kraken.events if isinstance(e, Fill) and e.client_order_id == "ktp2-tp"]
    assert sum(f.quantity for f in sold) == pytest.approx(held)
    assert all(f.side is Side.SELL and f.price >= TARGET for f in sold)
    stop = kraken.wait_final("ktp2-sl")
    assert (stop.status, stop.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)
    assert kraken.fake.balance("XXBT") == 0
    assert _at_venue(kraken)["ktp2-sl"] == "canceled"
    kraken.assert_venue_matches()
    # Between the stop's cancel and the sell the position has no stop at the venue: nothing
    # else is asked of the venue there (a read waits seconds for Kraken's rate limiter).
    paths = [r.path for r in kraken.fake.requests]
    cancel = paths.index("/0/private/CancelOrder")
    assert paths[cancel + 1] == "/0/private/AddOrder", paths[cancel : cancel + 3]


def test_the_stop_acting_first_ends_the_watched_target_without_a_sell(
    kraken: VenueHarness,
) -> None:
    held = _bracket(kraken, "ktp3")
    kraken.trade_through(STOP - 100.0)
    kraken.wait_filled("ktp3-sl", held)
    target = kraken.wait_final("ktp3-tp")
    assert (target.status, target.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)
    assert "ktp3-tp" not in _at_venue(kraken)
    assert kraken.fake.balance("XXBT") == 0


def test_a_resize_of_the_watched_target_stays_with_the_broker(kraken: VenueHarness) -> None:
    held = _bracket(kraken, "ktp4")
    kraken.broker.amend("ktp4-tp", held / 2, None)
    kraken.wait_for(
        lambda _e: any(u.reason == "amended" for u in updates(kraken.events, "ktp4-tp"))
    )
    report = kraken.broker.query_order("ktp4-tp")
    assert report is not None and report.quantity == pytest.approx(held / 2)
    assert "ktp4-tp" not in _at_venue(kraken)


def test_a_sell_the_venue_refuses_ends_the_lifted_stop_as_refused(
    kraken: VenueHarness,
) -> None:
    """The stop is no longer at the venue: said as refused, the bot closes the position at
    market (as for any refused stop) — the take-profit was selling it anyway."""
    _bracket(kraken, "ktp5")
    kraken.fake.faults.inject(
        "reject", path="/0/private/AddOrder", error="EOrder:Insufficient funds", times=1
    )
    kraken.trade_through(TARGET + 100.0)
    target = kraken.wait_final("ktp5-tp")
    assert target.status is OrderStatus.REJECTED
    stop = kraken.wait_final("ktp5-sl")
    assert stop.status is OrderStatus.REJECTED
    assert "lifted at the venue for its take-profit" in stop.reason
    assert _at_venue(kraken)["ktp5-sl"] == "canceled"


def test_after_a_restart_the_take_profit_sent_again_is_watched_again(
    kraken: VenueHarness,
) -> None:
    """The venue never had the take-profit, so a restarted bot sends it again (its position
    open: reconciliation's ``resend``); the new broker object watches it as the old one did."""
    entry = f"{PREFIX}ktp6"  # the bot's own ids: a restart knows them from the venue
    held = _bracket(kraken, entry)
    order = kraken.order(entry, stop_loss=STOP, take_profit=TARGET)
    (_stop, target) = bracket_children(order, held, kraken.now())
    fresh = kraken.restart()
    reports = {r.client_order_id: r for r in fresh.order_reports(0)}
    assert reports[f"{entry}-sl"].status is OrderStatus.OPEN and f"{entry}-tp" not in reports
    assert fresh.submit(target).status is OrderStatus.PENDING
    kraken.wait_for(
        lambda _e: (
            (r := fresh.query_order(f"{entry}-tp")) is not None and r.status is OrderStatus.OPEN
        )
    )
    assert f"{entry}-tp" not in _at_venue(kraken)
    kraken.trade_through(TARGET + 100.0)
    assert kraken.wait_final(f"{entry}-tp").status is OrderStatus.FILLED
    assert kraken.wait_final(f"{entry}-sl").status is OrderStatus.CANCELLED
    assert kraken.fake.balance("XXBT") == 0


def test_a_take_profit_cancelled_while_its_stop_is_lifted_leaves_no_stop_believed(
    kraken: VenueHarness,
) -> None:
    """The price reaches the target and the broker lifts the stop; the bot cancels the
    take-profit alone before the lift's answer comes (a strategy moving its target). Nothing
    is sold, and the stop is no longer at the venue: it is said refused (the bot closes the
    position at market, as for any refused stop), never left open in the bot's books while
    the position has no stop at the venue."""
    _bracket(kraken, "ktp7")
    kraken.fake.faults.inject("latency", path="/0/private/CancelOrder", times=1, delay_ms=700)
    kraken.trade_through(TARGET + 100.0)
    kraken.wait_for(
        lambda _e: any(r.path == "/0/private/CancelOrder" for r in kraken.fake.requests)
    )
    kraken.broker.cancel("ktp7-tp")
    target = kraken.wait_final("ktp7-tp")
    assert target.status is OrderStatus.CANCELLED
    stop = kraken.wait_final("ktp7-sl")
    assert stop.status is OrderStatus.REJECTED
    assert "lifted at the venue for its take-profit" in stop.reason
    kraken.wait_for(lambda _e: _at_venue(kraken)["ktp7-sl"] == "canceled")
    # The lift answered: without the guard the sale goes at once, under the target's id. A
    # negative check, so bounded: a second is many times what the sale takes to be asked.
    lifted = [r.path for r in kraken.fake.requests].index("/0/private/CancelOrder")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        after = [r.path for r in kraken.fake.requests[lifted + 1 :]]
        assert "/0/private/AddOrder" not in after, after
        time.sleep(0.05)
    kraken.collect()
    assert not any(isinstance(e, Fill) and e.client_order_id == "ktp7-tp" for e in kraken.events)
