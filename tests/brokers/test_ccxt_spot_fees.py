"""Binance spot takes a buy's commission from the coin bought: a buy of 0.01 BTC leaves the
account 0.00999. The broker's fill is what the account holds (on the lot step; the rest, and
the fee, as the fill's fee at its price), so the bot's exit and its bracket's stop sell what is
there, on an account that held none of the coin before."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness, base_balance, coinless_spot
from tradefleet_runtime.sdk import Fill, OrderStatus, OrderType, Side

PRICE = 50_000.0  # the fake's start price
STEP = Decimal("0.00001")  # the fake's BTCUSDT lot step


@pytest.fixture
def spot(tmp_path: Path) -> Iterator[VenueHarness]:
    with coinless_spot(tmp_path) as harness:
        yield harness


def _fills(harness: VenueHarness, client_order_id: str) -> list[Fill]:
    return [
        e for e in harness.events if isinstance(e, Fill) and e.client_order_id == client_order_id
    ]


def test_a_round_trip_sells_what_the_buy_left_not_what_it_asked(spot: VenueHarness) -> None:
    spot.answer(spot.broker.submit(spot.order("fee1", quantity=0.01)))
    assert spot.wait_final("fee1").status is OrderStatus.FILLED
    (fill,) = _fills(spot, "fee1")
    # 0.01 less the 0.1 % taker fee in BTC: what the account holds, to the satoshi.
    assert fill.quantity == 0.00999
    assert base_balance(spot) == (Decimal("0.00999"), Decimal(0))
    assert spot.final("fee1").filled_quantity == 0.00999  # type: ignore[union-attr]
    # The cash the fill books is what the buy cost: 0.01 × 50,000.
    assert fill.quantity * fill.price + fill.fee == pytest.approx(500.0, abs=1e-9)
    assert fill.fee == pytest.approx(0.5, abs=1e-9)

    spot.answer(spot.broker.submit(spot.order("fee2", Side.SELL, quantity=fill.quantity)))
    exit_ = spot.wait_final("fee2")
    assert exit_.status is OrderStatus.FILLED, exit_.reason
    assert base_balance(spot) == (Decimal(0), Decimal(0))


def test_a_fee_off_the_lot_step_leaves_dust_the_bot_counts_as_fee(spot: VenueHarness) -> None:
    spot.answer(spot.broker.submit(spot.order("dust1", quantity=0.01234)))
    spot.wait_final("dust1")
    (fill,) = _fills(spot, "dust1")
    # The account holds 0.01234 - 0.00001234 = 0.01232766; the bot counts what it can sell.
    assert base_balance(spot)[0] == Decimal("0.01232766")
    assert fill.quantity == 0.01232
    assert fill.fee == pytest.approx((0.01234 - 0.01232) * PRICE, abs=1e-9)
    assert fill.quantity * fill.price + fill.fee == pytest.approx(0.01234 * PRICE, abs=1e-9)

    spot.answer(spot.broker.submit(spot.order("dust2", Side.SELL, quantity=fill.quantity)))
    assert spot.wait_final("dust2").status is OrderStatus.FILLED
    free, _locked = base_balance(spot)
    assert Decimal(0) < free < STEP  # dust no order can sell, not a position the bot holds


def test_a_stop_loss_covers_what_the_account_holds_and_closes_all_of_it(
    spot: VenueHarness,
) -> None:
    spot.answer(spot.broker.submit(spot.order("sl1", quantity=0.01, stop_loss=48_000.0)))
    spot.wait_final("sl1")
    held = spot.held("sl1")
    assert held == 0.00999
    spot.wait_for(
        lambda _e: (
            (r := spot.broker.query_order("sl1-sl")) is not None
            and r.status is OrderStatus.OPEN
            and r.quantity == pytest.approx(held)
            and r.order_type is OrderType.STOP
        )
    )
    spot.trade_through(47_900.0)
    stop = spot.wait_final("sl1-sl")
    assert stop.status is OrderStatus.FILLED, stop.reason
    assert spot.held("sl1-sl") == pytest.approx(held)
    assert base_balance(spot) == (Decimal(0), Decimal(0))
    spot.assert_venue_matches()


def test_an_order_filled_in_parts_leaves_under_one_step_uncounted(spot: VenueHarness) -> None:
    """Each part's rest below the step counts in the next part: the order's fills hold what
    the account holds less under one step, not one step a part."""
    spot.fake.faults.inject("partial_fill", path="/api/v3/order", method="POST", fraction=0.4)
    spot.answer(
        spot.broker.submit(
            spot.order("prt1", quantity=0.01, price=50_500.0, order_type=OrderType.LIMIT)
        )
    )
    spot.wait_for(lambda _e: spot.held("prt1") > 0.0)
    spot.trade_through(50_400.0)
    assert spot.wait_final("prt1").status is OrderStatus.FILLED
    fills = _fills(spot, "prt1")
    assert len(fills) == 2
    # 0.004 bought less its fee leaves 0.003996: 0.00399 counted, the rest in the next part's
    # count (0.006 less 0.000006, and 0.000006): the account's 0.00999 to the satoshi.
    assert [f.quantity for f in fills] == [0.00399, 0.006]
    free, _locked = base_balance(spot)
    assert sum(Decimal(repr(f.quantity)) for f in fills) == free == Decimal("0.00999")
    # A restart's reports count the same trades the same way (the journal's fills by id).
    reported = [f for f in spot.broker.fill_reports(0) if f.client_order_id == "prt1"]
    assert [(f.fill_id, f.quantity) for f in reported] == [(f.fill_id, f.quantity) for f in fills]


BNB_PRICE = 600.0


def _pays_in_bnb(harness: VenueHarness, bnb: str = "1") -> None:
    """The account's "Using BNB to pay for fees" switched on, with ``bnb`` BNB, BNB at 600."""
    fake = harness.fake
    with fake.state.lock:
        account = fake.state.accounts[fake.api_key]
        account.bnb_fees = True
        account.spot_free["BNB"] = Decimal(bnb)
    fake.set_price("BNBUSDT", BNB_PRICE, market="spot")


def test_a_fee_paid_in_bnb_is_booked_at_bnbs_price_and_the_coin_bought_whole(
    spot: VenueHarness,
) -> None:
    """With BNB paying the fees the account holds all it bought, and the fee is worth what the
    BNB taken was worth (booked as 0 it would overstate every trade's result): the same live
    and in a restart's reports."""
    _pays_in_bnb(spot)
    spot.answer(spot.broker.submit(spot.order("bnb1", quantity=0.01)))
    assert spot.wait_final("bnb1").status is OrderStatus.FILLED
    (fill,) = _fills(spot, "bnb1")
    assert fill.quantity == 0.01
    assert base_balance(spot) == (Decimal("0.01"), Decimal(0))
    # 500 USDT x 0.1 % x 0.75 = 0.375 USDT, taken as 0.000625 BNB at 600.
    assert fill.fee == pytest.approx(0.375, abs=1e-9)

    spot.answer(spot.broker.submit(spot.order("bnb2", Side.SELL, quantity=0.01)))
    assert spot.wait_final("bnb2").status is OrderStatus.FILLED
    assert base_balance(spot) == (Decimal(0), Decimal(0))
    (sold,) = _fills(spot, "bnb2")
    assert sold.fee == pytest.approx(0.375, abs=1e-9)

    fresh = spot.restart()
    reported = {f.fill_id: f.fee for f in fresh.fill_reports(0)}
    assert reported == {fill.fill_id: fill.fee, sold.fill_id: sold.fee}


def test_a_fee_in_bnb_with_no_price_for_bnb_is_booked_as_nothing_and_said(
    spot: VenueHarness, caplog: pytest.LogCaptureFixture
) -> None:
    _pays_in_bnb(spot)
    with spot.fake.state.lock:
        spot.fake.state.spot.candles["BNBUSDT"].clear()  # no candle: the venue has no price
    spot.answer(spot.broker.submit(spot.order("bnb3", quantity=0.01)))
    assert spot.wait_final("bnb3").status is OrderStatus.FILLED
    (fill,) = _fills(spot, "bnb3")
    assert (fill.quantity, fill.fee) == (0.01, 0.0)
    assert "fees charged in BNB are not converted" in caplog.text
