"""On Binance spot a bracket's stop-loss and take-profit go only together, as one OCO list: a
resting sell holds the coin, so a child resting alone holds it all and its pair's other part,
sent alone, is refused for the balance. A take-profit an earlier run placed alone (older code,
before the list), its stop-loss never sent, is replaced by the list once both parts can go: the
lone take-profit is cancelled (the list can only be placed once the coin is free), then the list
placed at once — the take-profit under a derived id (``<id>-a1``: an id is placed once), the
stop-loss under its own. A list the venue refuses places the stop-loss alone at once. A lone
stop-loss is never cancelled for its take-profit (the position would be bare in between, and a
restart then would find the stop cancelled): the target goes alone, refused for the coin.

What the venue says of the lone take-profit once its cancel is asked decides the rest:
cancelled, the list goes; still working (the cancel refused, or failing past the retries), the
stop-loss goes alone as before the lists, and the bot hears what the venue made of it;
unanswered with its state unreadable, nothing is placed and each poll tries again; filled (in
whole or in part) first, the fill wins, the stop-loss is said ended and a part the cancel took
off goes back alone.

The fake Binance spot account holds USDT only; the broker is restarted on the same account."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import PREFIX, SYMBOL, VenueHarness, base_balance, coinless_spot
from tests.venues.binance.state import Candle
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.sdk import (
    Order,
    OrderStatus,
    ReasonCode,
    bracket_children,
)

STOP, TARGET = 48_000.0, 52_000.0
OCO_PATH = "/api/v3/orderList/oco"
ORDER_PATH = "/api/v3/order"
LOGGER = "tradefleet.brokers.ccxt"


@pytest.fixture
def spot(tmp_path: Path) -> Iterator[VenueHarness]:
    with coinless_spot(tmp_path) as harness:
        yield harness


def _legs(harness: VenueHarness, entry: str) -> dict[str, tuple[str, int]]:
    """The entry's children at the venue: venue client id -> (status, list id)."""
    return {
        o.client_order_id: (o.status, o.order_list_id)
        for o in harness.venue_orders()
        if o.client_order_id.startswith(f"{entry}-")
    }


def _list_posts(harness: VenueHarness) -> int:
    return sum(r.method == "POST" and r.path == OCO_PATH for r in harness.fake.requests)


def _lone_child_left(
    spot: VenueHarness, entry: str, role: str, fraction: float | None = None
) -> tuple[Order, float]:
    """An earlier run's filled entry whose ``role`` child ("sl" or "tp") rests alone at the
    venue (placed by older code, one order at a time); the broker restarted on the account,
    following what it finds. (The entry as its children protect it, what the account holds.)
    ``fraction``: the child's first fill stops there (the fake's ``partial_fill``)."""
    order = spot.order(entry, stop_loss=STOP, take_profit=TARGET)
    spot.answer(spot.broker.submit(order._replace(stop_loss=None, take_profit=None)))
    assert spot.wait_final(entry).status is OrderStatus.FILLED
    held = spot.held(entry)
    [child] = [
        c for c in bracket_children(order, held, spot.now()) if c.client_order_id.endswith(role)
    ]
    if fraction is not None:
        spot.fake.faults.inject("partial_fill", path=ORDER_PATH, method="POST", fraction=fraction)
    assert spot.answer(spot.broker.submit(child)).status is OrderStatus.OPEN
    assert _legs(spot, entry) == {f"{entry}-{role}": ("NEW", -1)}
    fresh = spot.restart()
    fresh.order_reports(0)  # start-up reconciliation: the new object follows the lone child
    return order, held


def _working(broker: CcxtBroker, client_order_id: str) -> bool:
    report = broker.query_order(client_order_id)
    return report is not None and report.status is OrderStatus.OPEN


def test_a_lone_stop_an_earlier_run_left_is_never_cancelled_for_its_target(
    spot: VenueHarness,
) -> None:
    """A working stop-loss is not cancelled to go with its take-profit: between the cancel and
    the list the position would have no stop, and a restart in that window would find the stop
    cancelled (as a person's cancel is) and send the target alone. The target goes alone and
    the venue refuses it for the coin the stop holds; the stop protects, and still does after
    a restart."""
    entry = f"{PREFIX}lone1"
    order, held = _lone_child_left(spot, entry, "sl")
    spot.broker.protect_filled(order, held)
    target = spot.wait_final(f"{entry}-tp")
    assert target.status is OrderStatus.REJECTED, target
    assert "insufficient balance" in target.reason.lower(), target
    spot.settle()
    assert _list_posts(spot) == 0
    assert _legs(spot, entry) == {f"{entry}-sl": ("NEW", -1)}  # never cancelled
    assert _working(spot.broker, f"{entry}-sl") and spot.final(f"{entry}-sl") is None

    fresh = spot.restart()
    fresh.order_reports(0)
    assert _working(fresh, f"{entry}-sl")
    spot.trade_through(STOP - 100.0)
    assert spot.wait_final(f"{entry}-sl").status is OrderStatus.FILLED
    assert spot.held(f"{entry}-sl") == pytest.approx(held)
    spot.assert_venue_matches()


def test_a_lone_target_an_earlier_run_left_becomes_one_list_with_its_stop(
    spot: VenueHarness,
) -> None:
    """The worst lone child: a take-profit holding the coin, its stop refused for the balance
    (the bot would then close at market, and that close too finds the coin held)."""
    entry = f"{PREFIX}lone2"
    order, held = _lone_child_left(spot, entry, "tp")
    spot.broker.protect_filled(order, held)
    spot.wait_for(lambda _e: _working(spot.broker, f"{entry}-sl"))
    working = {cid: lid for cid, (status, lid) in _legs(spot, entry).items() if status == "NEW"}
    assert set(working) == {f"{entry}-sl", f"{entry}-tp-a1"}, working
    assert len(set(working.values())) == 1 and -1 not in working.values()
    assert spot.final(f"{entry}-sl") is None and spot.final(f"{entry}-tp") is None

    spot.trade_through(STOP - 100.0)
    assert spot.wait_final(f"{entry}-sl").status is OrderStatus.FILLED
    assert spot.held(f"{entry}-sl") == pytest.approx(held)
    assert spot.wait_final(f"{entry}-tp").status is OrderStatus.CANCELLED
    spot.assert_venue_matches()


def test_a_refused_list_places_the_stop_alone_at_once(spot: VenueHarness) -> None:
    """The lone take-profit is cancelled for the list and the venue refuses the list: the
    stop-loss goes alone at once (the stop matters more than the target), and the target ends
    refused."""
    entry = f"{PREFIX}lone3"
    order, held = _lone_child_left(spot, entry, "tp")
    spot.fake.faults.inject(
        "reject",
        path=OCO_PATH,
        method="POST",
        code=-2010,
        msg="The relationship of the prices for the orders is not correct.",
    )
    spot.broker.protect_filled(order, held)
    target = spot.wait_final(f"{entry}-tp")
    assert target.status is OrderStatus.REJECTED, target
    spot.wait_for(lambda _e: _working(spot.broker, f"{entry}-sl"))
    assert _list_posts(spot) == 1
    legs = _legs(spot, entry)
    working = {cid for cid, (status, _lid) in legs.items() if status == "NEW"}
    assert working == {f"{entry}-sl"}, legs
    assert legs[f"{entry}-tp"] == ("CANCELED", -1)  # the lone copy, cancelled for the list
    assert spot.final(f"{entry}-sl") is None

    spot.trade_through(STOP - 100.0)
    assert spot.wait_final(f"{entry}-sl").status is OrderStatus.FILLED
    assert spot.held(f"{entry}-sl") == pytest.approx(held)
    spot.assert_venue_matches()


def test_a_lone_stop_that_filled_first_gets_no_list(spot: VenueHarness) -> None:
    """The stop triggered before the broker could replace it: the fill wins, nothing is placed
    for the position it closed."""
    entry = f"{PREFIX}lone4"
    order, held = _lone_child_left(spot, entry, "sl")
    spot.trade_through(STOP - 100.0)
    spot.broker.protect_filled(order, held)
    assert spot.wait_final(f"{entry}-sl").status is OrderStatus.FILLED
    spot.settle()
    assert _list_posts(spot) == 0
    assert {status for status, _lid in _legs(spot, entry).values()} == {"FILLED"}
    assert spot.held(f"{entry}-sl") == pytest.approx(held)
    assert base_balance(spot) == (Decimal(0), Decimal(0))


def _said(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and words in r.getMessage()]


def _requests(spot: VenueHarness, method: str, path: str) -> int:
    return sum(r.method == method and r.path == path for r in spot.fake.requests)


def test_a_lone_target_whose_cancel_keeps_failing_sends_its_stop_alone(
    spot: VenueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The venue keeps the lone take-profit (every cancel fails, past the broker's retries;
    look-ups answer): the stop-loss is not dropped — it goes alone, as before the lists, and
    the venue refuses it for the coin the target holds; the bot hears REJECTED (and closes the
    position at market). Never booked working while it is not at the venue."""
    entry = f"{PREFIX}lone5"
    order, held = _lone_child_left(spot, entry, "tp")
    spot.fake.faults.inject("server_error", path=ORDER_PATH, method="DELETE", status=503, times=50)
    spot.broker.protect_filled(order, held)
    stop = spot.wait_final(f"{entry}-sl")
    assert stop.status is OrderStatus.REJECTED, stop
    assert "insufficient balance" in stop.reason.lower(), stop
    [kept] = _said(caplog, "was not cancelled to go with its pair")
    assert f"{entry}-sl is placed alone instead" in kept.getMessage()
    spot.fake.faults.clear()
    spot.settle()
    assert _list_posts(spot) == 0
    assert _legs(spot, entry) == {f"{entry}-tp": ("NEW", -1)}  # the target works on
    assert spot.final(f"{entry}-tp") is None
    assert _working(spot.broker, f"{entry}-tp")


def test_a_lone_stop_whose_cancel_keeps_failing_keeps_working_and_its_target_is_said(
    spot: VenueHarness,
) -> None:
    entry = f"{PREFIX}lone6"
    order, held = _lone_child_left(spot, entry, "sl")
    spot.fake.faults.inject("server_error", path=ORDER_PATH, method="DELETE", status=503, times=50)
    spot.broker.protect_filled(order, held)
    target = spot.wait_final(f"{entry}-tp")
    assert target.status is OrderStatus.REJECTED, target  # alone: refused for the coin
    spot.fake.faults.clear()
    spot.settle()
    assert _legs(spot, entry) == {f"{entry}-sl": ("NEW", -1)}
    assert spot.final(f"{entry}-sl") is None and _working(spot.broker, f"{entry}-sl")

    spot.trade_through(STOP - 100.0)
    assert spot.wait_final(f"{entry}-sl").status is OrderStatus.FILLED
    assert spot.held(f"{entry}-sl") == pytest.approx(held)
    spot.assert_venue_matches()


def test_a_lone_target_whose_cancel_went_unanswered_places_nothing_until_the_venue_says(
    spot: VenueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The cancel lands but its answer is lost, and the venue cannot be read for a while: the
    target may have filled (a stop-loss alone could then sell other coin of the account), so
    nothing is placed and each poll tries again, said once; once the venue answers, the cancel
    is found done and the list goes. The poller never takes the join's own cancel for the
    target's end meanwhile."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    entry = f"{PREFIX}lone7"
    order, held = _lone_child_left(spot, entry, "tp")
    spot.fake.faults.inject("accept_then_drop", path=ORDER_PATH, method="DELETE")
    spot.fake.faults.inject("server_error", path=ORDER_PATH, method="GET", status=503, times=None)
    spot.broker.protect_filled(order, held)
    spot.wait_for(lambda _e: bool(_said(caplog, "went unanswered")))
    tries = _requests(spot, "DELETE", ORDER_PATH)
    deadline = time.monotonic() + 8.0
    while _requests(spot, "DELETE", ORDER_PATH) < tries + 2:  # two more polls' tries
        assert time.monotonic() < deadline, "the join was not tried again at the polls"
        time.sleep(0.05)
    spot.collect()
    assert _legs(spot, entry) == {f"{entry}-tp": ("CANCELED", -1)}  # nothing placed
    assert _requests(spot, "POST", ORDER_PATH) == 2 and _list_posts(spot) == 0  # entry, tp
    assert spot.final(f"{entry}-sl") is None and spot.final(f"{entry}-tp") is None
    assert len(_said(caplog, "went unanswered")) == 1  # said once for the wait

    spot.fake.faults.clear()
    spot.wait_for(lambda _e: _working(spot.broker, f"{entry}-sl"))
    legs = _legs(spot, entry)
    working = {cid: lid for cid, (status, lid) in legs.items() if status == "NEW"}
    assert set(working) == {f"{entry}-sl", f"{entry}-tp-a1"}, legs
    assert len(set(working.values())) == 1 and -1 not in working.values()
    assert spot.final(f"{entry}-sl") is None and spot.final(f"{entry}-tp") is None
    assert len(_said(caplog, "the venue answers again")) == 1
    assert base_balance(spot) == (Decimal(0), Decimal(str(held)))

    spot.trade_through(STOP - 100.0)
    assert spot.wait_final(f"{entry}-sl").status is OrderStatus.FILLED
    assert spot.wait_final(f"{entry}-tp").status is OrderStatus.CANCELLED
    spot.assert_venue_matches()


def test_a_lone_target_that_filled_in_part_before_its_cancel_landed_goes_on_for_the_rest(
    spot: VenueHarness,
) -> None:
    """Half of the lone take-profit fills on a wick while its cancel is on its way (the venue
    slow to answer); the cancel then takes its rest off. The fill wins: no list, the stop-loss
    (never sent) is said ended — one cancels the other, as in a list — and the rest goes back
    alone under ``<id>-a1``, as the venue would have left it. The same step puts a lone
    stop-loss's rest back, so what is left of the position keeps its stop; the fake cannot
    leave a triggered stop part-filled (its market rest fills in the same candle:
    ``Engine.apply_candle`` ends with ``_continue_partial_markets``), hence a target here."""
    entry = f"{PREFIX}lone8"
    order, held = _lone_child_left(spot, entry, "tp", fraction=0.5)
    spot.fake.faults.inject("latency", path=ORDER_PATH, method="DELETE", delay_ms=800)
    spot.broker.protect_filled(order, held)
    spot.wait_for(lambda _e: _requests(spot, "DELETE", ORDER_PATH) == 1)
    state = spot.fake.state
    with state.lock:  # before the cancel lands: a wick through the target, half of it fills
        top, start = Decimal(str(TARGET + 100.0)), Decimal("50000")
        state.spot.apply_candle(SYMBOL, Candle(state.spot.now, start, top, start, start))

    spot.wait_for(lambda _e: _legs(spot, entry).get(f"{entry}-tp-a1", ("", 0))[0] == "NEW")
    spot.settle()
    sold = spot.held(f"{entry}-tp")
    assert 0.0 < sold < held
    stop = spot.final(f"{entry}-sl")
    assert stop is not None
    assert (stop.status, stop.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)
    assert "filled first" in stop.reason
    assert _list_posts(spot) == 0
    assert _legs(spot, entry) == {
        f"{entry}-tp": ("CANCELED", -1),
        f"{entry}-tp-a1": ("NEW", -1),
    }
    rest = Decimal(str(held)) - Decimal(str(sold))
    assert base_balance(spot) == (Decimal(0), rest)  # the rest, held by its target
    assert spot.final(f"{entry}-tp") is None
    report = spot.broker.query_order(f"{entry}-tp")  # the whole order: both copies
    assert report is not None and report.status is OrderStatus.PARTIALLY_FILLED, report
    assert report.filled_quantity == pytest.approx(sold)

    spot.trade_through(TARGET + 100.0)
    assert spot.wait_final(f"{entry}-tp").status is OrderStatus.FILLED
    assert spot.held(f"{entry}-tp") == pytest.approx(held)
    assert base_balance(spot) == (Decimal(0), Decimal(0))
    spot.assert_venue_matches()
