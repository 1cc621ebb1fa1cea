"""On Binance spot a bracket's stop-loss and take-profit go as one OCO order list: the coin is
held once for both, so an account funded in USDT only gets both children (as two orders, the
second was refused for the balance). When one leg fills or triggers, the venue expires the
other; the bot hears it cancelled by the venue."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import (
    PREFIX,
    VenueHarness,
    base_balance,
    coinless_spot,
    updates,
    wait_children_open,
)
from tradefleet_runtime.sdk import OrderStatus, OrderType, ReasonCode

STOP, TARGET = 48_000.0, 52_000.0


@pytest.fixture
def spot(tmp_path: Path) -> Iterator[VenueHarness]:
    with coinless_spot(tmp_path) as harness:
        yield harness


def _legs(harness: VenueHarness, entry: str) -> dict[str, tuple[str, int, Decimal]]:
    """The entry's children at the venue: venue client id → (status, list id, quantity)."""
    return {
        o.client_order_id: (o.status, o.order_list_id, o.orig_qty)
        for o in harness.venue_orders()
        if o.client_order_id.startswith(f"{entry}-")
    }


def _bracket(harness: VenueHarness, entry: str) -> float:
    """A market entry of 0.01 with its stop-loss and take-profit; what the account holds."""
    harness.answer(harness.broker.submit(harness.order(entry, stop_loss=STOP, take_profit=TARGET)))
    assert harness.wait_final(entry).status is OrderStatus.FILLED
    held = harness.held(entry)
    wait_children_open(harness, harness.broker, entry, held)
    return held


def test_both_children_work_as_one_list_holding_the_coin_once(spot: VenueHarness) -> None:
    held = _bracket(spot, "oco1")
    legs = _legs(spot, "oco1")
    assert set(legs) == {"oco1-sl", "oco1-tp"}
    (list_id,) = {list_id for _status, list_id, _qty in legs.values()}
    assert list_id >= 0
    free, locked = base_balance(spot)
    assert free == 0  # held once, by the list
    assert float(locked) == pytest.approx(held)

    spot.trade_through(TARGET + 100.0)
    assert spot.wait_final("oco1-tp").status is OrderStatus.FILLED
    stop = spot.wait_final("oco1-sl")
    assert (stop.status, stop.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)
    assert spot.held("oco1-tp") == pytest.approx(held)
    assert base_balance(spot) == (Decimal(0), Decimal(0))
    spot.assert_venue_matches()


def test_the_stop_triggering_ends_the_target(spot: VenueHarness) -> None:
    held = _bracket(spot, "oco2")
    spot.trade_through(STOP - 100.0)
    assert spot.wait_final("oco2-sl").status is OrderStatus.FILLED
    target = spot.wait_final("oco2-tp")
    assert (target.status, target.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)
    assert spot.held("oco2-sl") == pytest.approx(held)
    assert base_balance(spot) == (Decimal(0), Decimal(0))


def test_a_part_filled_entrys_list_grows_as_it_fills(spot: VenueHarness) -> None:
    """The list is cancelled and placed again for the larger quantity, under derived ids: no
    id twice at the venue, one list working, the coin held once."""
    spot.fake.faults.inject("partial_fill", path="/api/v3/order", method="POST", fraction=0.4)
    entry = spot.order(
        "oco3",
        price=50_500.0,
        order_type=OrderType.LIMIT,
        stop_loss=STOP,
        take_profit=TARGET,
    )
    spot.answer(spot.broker.submit(entry))
    spot.wait_for(lambda _e: spot.held("oco3") > 0.0)
    wait_children_open(spot, spot.broker, "oco3", spot.held("oco3"))
    spot.trade_through(50_400.0)
    assert spot.wait_final("oco3").status is OrderStatus.FILLED
    held = spot.held("oco3")
    wait_children_open(spot, spot.broker, "oco3", held)
    legs = _legs(spot, "oco3")
    working = {cid: v for cid, v in legs.items() if v[0] == "NEW"}
    assert set(working) == {"oco3-sl-a1", "oco3-tp-a1"}
    assert len({v[1] for v in working.values()}) == 1
    assert {v[0] for cid, v in legs.items() if cid not in working} == {"CANCELED"}
    free, locked = base_balance(spot)
    assert free == 0
    assert float(locked) == pytest.approx(held)
    assert "amended" in {u.reason for u in updates(spot.events, "oco3-sl")}
    spot.trade_through(STOP - 100.0)
    assert spot.wait_final("oco3-sl").status is OrderStatus.FILLED
    assert spot.held("oco3-sl") == pytest.approx(held)
    assert base_balance(spot) == (Decimal(0), Decimal(0))
    spot.assert_venue_matches()


def test_cancelling_the_bracket_frees_the_coin(spot: VenueHarness) -> None:
    held = _bracket(spot, "oco4")
    spot.broker.cancel("oco4-sl")
    spot.broker.cancel("oco4-tp")
    assert spot.wait_final("oco4-sl").status is OrderStatus.CANCELLED
    assert spot.wait_final("oco4-tp").status is OrderStatus.CANCELLED
    free, locked = base_balance(spot)
    assert float(free) == pytest.approx(held)
    assert locked == 0


def test_a_new_broker_follows_a_list_an_earlier_run_left(spot: VenueHarness) -> None:
    """After a restart the target fills: the venue expires the stop and the new broker
    object says so (its bracket's trade is over)."""
    _bracket(spot, f"{PREFIX}oco5")
    fresh = spot.restart()
    fresh.order_reports(0)  # start-up reconciliation: the new object follows what it finds
    spot.trade_through(TARGET + 100.0)
    assert spot.wait_final(f"{PREFIX}oco5-tp").status is OrderStatus.FILLED
    stop = spot.wait_final(f"{PREFIX}oco5-sl")
    assert (stop.status, stop.code) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_VENUE)


OCO_PATH = "/api/v3/orderList/oco"


def _list_posts(harness: VenueHarness) -> int:
    return sum(r.method == "POST" and r.path == OCO_PATH for r in harness.fake.requests)


def test_a_list_whose_answer_was_lost_is_found_not_sent_again(spot: VenueHarness) -> None:
    spot.fake.faults.inject("accept_then_timeout", path=OCO_PATH, method="POST", hold_s=4)
    held = _bracket(spot, "oco6")
    assert _list_posts(spot) == 1  # looked up by its legs' ids, never resent
    assert {v[0] for v in _legs(spot, "oco6").values()} == {"NEW"}
    spot.trade_through(STOP - 100.0)
    assert spot.wait_final("oco6-sl").status is OrderStatus.FILLED
    assert spot.held("oco6-sl") == pytest.approx(held)
    spot.assert_venue_matches()


def test_a_list_the_venue_refuses_goes_as_two_orders(spot: VenueHarness) -> None:
    """Refused as a list (its price rule: a take-profit already below the market cannot rest
    as a maker), the children go one by one as before: the stop-loss works, and on an account
    holding only the position the take-profit is refused for the coin the stop holds."""
    spot.fake.faults.inject(
        "reject",
        path=OCO_PATH,
        method="POST",
        code=-2010,
        msg="The relationship of the prices for the orders is not correct.",
    )
    spot.answer(spot.broker.submit(spot.order("oco7", stop_loss=STOP, take_profit=TARGET)))
    spot.wait_final("oco7")
    target = spot.wait_final("oco7-tp")
    assert (target.status, target.code) == (OrderStatus.REJECTED, ReasonCode.INSUFFICIENT_FUNDS)
    spot.wait_for(
        lambda _e: (
            (r := spot.broker.query_order("oco7-sl")) is not None and r.status is OrderStatus.OPEN
        )
    )
    assert _list_posts(spot) == 1
    legs = _legs(spot, "oco7")
    assert {cid: list_id for cid, (_s, list_id, _q) in legs.items()} == {"oco7-sl": -1}


def test_moving_the_stop_places_the_list_again_with_the_new_price(spot: VenueHarness) -> None:
    held = _bracket(spot, "oco8")
    spot.broker.amend("oco8-sl", None, 48_500.0)
    spot.wait_for(lambda _e: any(u.reason == "amended" for u in updates(spot.events, "oco8-sl")))
    working = {
        o.client_order_id: o
        for o in spot.venue_orders()
        if o.client_order_id.startswith("oco8-") and o.status == "NEW"
    }
    assert set(working) == {"oco8-sl-a1", "oco8-tp-a1"}
    assert float(working["oco8-sl-a1"].stop_price) == 48_500.0
    assert float(working["oco8-tp-a1"].price) == TARGET
    assert working["oco8-sl-a1"].order_list_id == working["oco8-tp-a1"].order_list_id
    spot.trade_through(48_400.0)
    assert spot.wait_final("oco8-sl").status is OrderStatus.FILLED
    assert spot.held("oco8-sl") == pytest.approx(held)
    spot.assert_venue_matches()


def test_a_list_cancel_whose_answer_was_lost_still_gets_its_new_list(spot: VenueHarness) -> None:
    """The cancel landed, its answer did not; the retry hears "unknown order list". The legs
    are cancelled at the venue with nothing filled: the new list is placed all the same (not
    left unplaced with the bot believing the old one works)."""
    held = _bracket(spot, "oco9")
    spot.fake.faults.inject(
        "accept_then_timeout", path="/api/v3/orderList", method="DELETE", hold_s=4
    )
    spot.broker.amend("oco9-sl", None, 48_500.0)
    spot.wait_for(
        lambda _e: any(u.reason == "amended" for u in updates(spot.events, "oco9-sl")),
        timeout=15.0,
    )
    working = {o.client_order_id for o in spot.venue_orders() if o.status == "NEW"}
    assert working == {"oco9-sl-a1", "oco9-tp-a1"}
    spot.trade_through(48_400.0)
    assert spot.wait_final("oco9-sl").status is OrderStatus.FILLED
    assert spot.held("oco9-sl") == pytest.approx(held)


def test_a_refused_stop_leaves_no_take_profit_holding_the_coin(spot: VenueHarness) -> None:
    """The market is already below the stop when the entry fills: the venue refuses the list
    (its prices), then the stop alone ("would trigger immediately"). The bot closes the
    position at market; a take-profit placed now would hold the coin that close must sell, so
    it is not placed (said cancelled)."""
    entry = spot.order(
        "oco10",
        price=50_500.0,
        order_type=OrderType.LIMIT,
        stop_loss=50_200.0,  # above the 50,000 the entry fills at
        take_profit=TARGET,
    )
    spot.answer(spot.broker.submit(entry))
    assert spot.wait_final("oco10").status is OrderStatus.FILLED
    stop = spot.wait_final("oco10-sl")
    assert stop.status is OrderStatus.REJECTED
    target = spot.wait_final("oco10-tp")
    assert target.status is OrderStatus.CANCELLED
    assert _legs(spot, "oco10") == {}  # neither at the venue
    free, locked = base_balance(spot)
    assert float(free) == pytest.approx(spot.held("oco10"))
    assert locked == 0


def test_an_entry_filled_while_the_bot_was_down_gets_its_children_as_one_list(
    spot: VenueHarness,
) -> None:
    """The restarted bot asks for the bracket of an entry that filled while it was down
    (``protect_filled``): the same one list, not two orders (the target would be refused)."""
    order = spot.order("oco9", stop_loss=STOP, take_profit=TARGET)
    spot.answer(spot.broker.submit(order._replace(stop_loss=None, take_profit=None)))
    assert spot.wait_final("oco9").status is OrderStatus.FILLED
    held = spot.held("oco9")
    fresh = spot.restart()
    fresh.order_reports(0)
    fresh.protect_filled(order, held)
    wait_children_open(spot, spot.broker, "oco9", held)
    legs = _legs(spot, "oco9")
    assert set(legs) == {"oco9-sl", "oco9-tp"}
    (list_id,) = {list_id for _status, list_id, _qty in legs.values()}
    assert list_id >= 0
    assert base_balance(spot) == (Decimal(0), Decimal(str(held)))
    spot.trade_through(STOP - 100.0)
    assert spot.wait_final("oco9-sl").status is OrderStatus.FILLED
    assert spot.wait_final("oco9-tp").status is OrderStatus.CANCELLED
    assert base_balance(spot) == (Decimal(0), Decimal(0))
    spot.assert_venue_matches()
