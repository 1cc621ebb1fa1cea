"""On Binance spot a bracket's stop-loss and take-profit go only together, as one OCO list: a
resting sell holds the coin, so a child resting alone holds it all and its pair's other part,
sent alone, is refused for the balance. A child an earlier run placed alone (older code, before
the list) is replaced by the list once both parts can go: the lone child is cancelled (the list
can only be placed once the coin is free), then the list placed at once — the lone child under
a derived id (``<id>-a1``: an id is placed once), its pair's other part under its own. A list
the venue refuses puts the lone stop back at once, alone (the stop matters more than the
target).

The fake Binance spot account holds USDT only; the broker is restarted on the same account."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import PREFIX, VenueHarness, base_balance, coinless_spot
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_runtime.sdk import (
    Order,
    OrderStatus,
    ReasonCode,
    bracket_children,
)

STOP, TARGET = 48_000.0, 52_000.0
OCO_PATH = "/api/v3/orderList/oco"


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


def _lone_child_left(spot: VenueHarness, entry: str, role: str) -> tuple[Order, float]:
    """An earlier run's filled entry whose ``role`` child ("sl" or "tp") rests alone at the
    venue (placed by older code, one order at a time); the broker restarted on the account,
    following what it finds. (The entry as its children protect it, what the account holds.)"""
    order = spot.order(entry, stop_loss=STOP, take_profit=TARGET)
    spot.answer(spot.broker.submit(order._replace(stop_loss=None, take_profit=None)))
    assert spot.wait_final(entry).status is OrderStatus.FILLED
    held = spot.held(entry)
    [child] = [
        c for c in bracket_children(order, held, spot.now()) if c.client_order_id.endswith(role)
    ]
    assert spot.answer(spot.broker.submit(child)).status is OrderStatus.OPEN
    assert _legs(spot, entry) == {f"{entry}-{role}": ("NEW", -1)}
    fresh = spot.restart()
    fresh.order_reports(0)  # start-up reconciliation: the new object follows the lone child
    return order, held


def _working(broker: CcxtBroker, client_order_id: str) -> bool:
    report = broker.query_order(client_order_id)
    return report is not None and report.status is OrderStatus.OPEN


def test_a_lone_stop_an_earlier_run_left_becomes_one_list_with_its_target(
    spot: VenueHarness,
) -> None:
    entry = f"{PREFIX}lone1"
    order, held = _lone_child_left(spot, entry, "sl")
    spot.broker.protect_filled(order, held)
    spot.wait_for(lambda _e: _working(spot.broker, f"{entry}-tp"))
    legs = _legs(spot, entry)
    working = {cid: list_id for cid, (status, list_id) in legs.items() if status == "NEW"}
    assert set(working) == {f"{entry}-sl-a1", f"{entry}-tp"}, legs
    (list_id,) = set(working.values())
    assert list_id >= 0
    assert legs[f"{entry}-sl"] == ("CANCELED", -1)  # the lone copy, cancelled first
    assert _working(spot.broker, f"{entry}-sl")
    assert spot.final(f"{entry}-sl") is None  # the stop never ended, for the bot
    assert base_balance(spot) == (Decimal(0), Decimal(str(held)))  # held once, by the list

    spot.trade_through(TARGET + 100.0)
    assert spot.wait_final(f"{entry}-tp").status is OrderStatus.FILLED
    stop = spot.wait_final(f"{entry}-sl")
    assert (stop.status, stop.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)
    assert base_balance(spot) == (Decimal(0), Decimal(0))
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


def test_a_refused_list_puts_the_lone_stop_back_at_once(spot: VenueHarness) -> None:
    entry = f"{PREFIX}lone3"
    order, held = _lone_child_left(spot, entry, "sl")
    spot.fake.faults.inject(
        "reject",
        path=OCO_PATH,
        method="POST",
        code=-2010,
        msg="The relationship of the prices for the orders is not correct.",
    )
    spot.broker.protect_filled(order, held)
    target = spot.wait_final(f"{entry}-tp")
    assert target.status is OrderStatus.REJECTED  # alone, the venue refuses it for the coin
    assert _list_posts(spot) == 1
    legs = _legs(spot, entry)
    working = {cid for cid, (status, _lid) in legs.items() if status == "NEW"}
    assert working == {f"{entry}-sl-a2"}, legs  # "-a1" went in the refused list
    assert legs[f"{entry}-sl-a2"] == ("NEW", -1)
    assert _working(spot.broker, f"{entry}-sl")
    assert spot.final(f"{entry}-sl") is None  # the stop never ended, for the bot
    assert base_balance(spot) == (Decimal(0), Decimal(str(held)))

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
