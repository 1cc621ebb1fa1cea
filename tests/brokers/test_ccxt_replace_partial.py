"""A partly filled limit order amended by cancel-replace on Binance spot.

Binance spot amends an order by ``POST /api/v3/order/cancelReplace``: the old copy is cancelled
(its executed part stays executed, its trades keep its orderId) and a new order is placed for
the quantity the request gives — Binance does not subtract what the old copy executed. The
ccxt broker used to send the order's whole quantity: a buy of 1.0 that had filled 0.4 was
replaced by a buy of 1.0, and the account bought 1.4. It also compared the new copy's own
executed quantity (which counts from zero) with every copy's fills, so a part fill of the new
copy waited for a later poll, or was never reported when the copy ended otherwise (a person
cancelling it at the venue).

Now the replacement asks for what is left (the amend's quantity is the whole order's, as on
the venues that amend in place), the broker counts the copies' executed quantities together,
and a fill of the old copy between the broker's last read and the venue's cancel (the
replacement then asks for too much) is found by reading the cancelled copy and the
replacement cut to what is left.

Against the fake Binance spot with the real ccxt, on an account holding USDT only (so its coin
balance is what the bot bought): a buy's fee is 0.1 % of the coin bought, the lot step 0.00001
BTC.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.brokers.harness import (
    PREFIX,
    START_PRICE,
    SYMBOL,
    VenueHarness,
    base_balance,
    coinless_spot,
    harness_for,
    updates,
)
from tests.venues.binance.state import Candle
from tradefleet_plugins.brokers.ccxt_orders import replacement_quantity
from tradefleet_runtime.reconcile import plan_reconciliation
from tradefleet_runtime.sdk import Fill, OrderStatus, OrderType, ReasonCode

LIMIT, MOVED = 49_000.0, 49_500.0
CID = f"{PREFIX}rp1"
REPLACE_PATH = "/api/v3/order/cancelReplace"


def _part_fill(harness: VenueHarness, venue_cid: str, quantity: float, low: float) -> None:
    """The venue fills ``quantity`` more of its open order ``venue_cid`` (a buy resting at or
    above ``low``): the market dips to ``low`` and closes back at the start price, the fill
    capped by the fake's own partial-fill knob (``Order.fill_cap``)."""
    state = harness.fake.state
    with state.lock:
        spot = state.spot
        [order] = [
            o
            for o in spot.orders.values()
            if o.client_order_id == venue_cid and o.account == harness.fake.api_key and o.is_open
        ]
        order.fill_cap = order.executed_qty + Decimal(str(quantity))
        top = Decimal(str(START_PRICE))
        spot.apply_candle(SYMBOL, Candle(spot.now, top, top, Decimal(str(low)), top))


def _venue_orders(harness: VenueHarness) -> dict[str, tuple[str, float, float]]:
    """The bot's order and its copies at the venue: client id -> (status, ordered, executed)."""
    with harness.fake.state.lock:
        return {
            o.client_order_id: (o.status, float(o.orig_qty), float(o.executed_qty))
            for o in harness.fake.orders("spot")
            if o.client_order_id.startswith(CID)
        }


def _venue_trade_ids(harness: VenueHarness) -> list[str]:
    with harness.fake.state.lock:
        return [
            str(t.id)
            for o in harness.fake.orders("spot")
            if o.client_order_id.startswith(CID)
            for t in o.fills
        ]


def _fills(harness: VenueHarness) -> list[Fill]:
    return [e for e in harness.events if isinstance(e, Fill) and e.client_order_id == CID]


def _btc(harness: VenueHarness) -> Decimal:
    free, locked = base_balance(harness)
    return free + locked


def _working_part_filled(harness: VenueHarness, filled: float) -> None:
    """The bot's limit buy of 1.0 at ``LIMIT``, ``filled`` of it filled and reported."""
    order = harness.order(CID, quantity=1.0, order_type=OrderType.LIMIT, price=LIMIT)
    harness.answer(harness.broker.submit(order))
    _part_fill(harness, CID, filled, LIMIT)
    harness.wait_for(
        lambda e: any(u.status is OrderStatus.PARTIALLY_FILLED for u in updates(e, CID))
    )
    assert harness.filled(CID) == pytest.approx(filled)


def _amended(harness: VenueHarness, quantity: float | None, price: float | None) -> None:
    before = len(updates(harness.events, CID))
    assert harness.broker.amend(CID, quantity, price) is None
    harness.wait_for(lambda e: any(u.reason == "amended" for u in updates(e, CID)[before:]))


def _settled(harness: VenueHarness) -> None:
    """Later polls bring nothing new."""
    time.sleep(6 * harness.params.poll_interval_s)
    harness.collect()


def _assert_venue_agrees(harness: VenueHarness, btc_before: Decimal) -> None:
    """Every trade of the order and its copies reached the bot once, under the bot's id, and
    what the bot holds of them is what the account's coin balance moved by."""
    fills = _fills(harness)
    assert sorted(f.fill_id for f in fills) == sorted(_venue_trade_ids(harness))
    assert len({f.fill_id for f in fills}) == len(fills)
    held = sum(Decimal(str(f.quantity)) for f in fills)
    assert held == _btc(harness) - btc_before


def test_the_replacement_asks_for_what_is_left_and_every_fill_is_reported_once(
    tmp_path: Path,
) -> None:
    """A buy of 1.0 filled 0.4, moved to 49,500: the replacement asks for 0.6; the old copy's
    fill is reported once, the replacement's part fill (0.3, below what the old copy filled)
    within a few polls, then the rest; the bot bought 1.0 in all, as the account did."""
    with coinless_spot(tmp_path) as harness:
        btc_before = _btc(harness)
        _working_part_filled(harness, 0.4)
        [first] = _fills(harness)

        _amended(harness, None, MOVED)
        assert _venue_orders(harness) == {
            CID: ("CANCELED", 1.0, 0.4),
            f"{CID}-a1": ("NEW", 0.6, 0.0),
        }
        report = harness.broker.query_order(CID)  # the whole order, not the copy's
        assert report is not None and report.status is OrderStatus.PARTIALLY_FILLED
        assert (report.quantity, report.filled_quantity) == pytest.approx((1.0, 0.4))
        assert report.price == pytest.approx(MOVED)

        _part_fill(harness, f"{CID}-a1", 0.3, MOVED)
        harness.wait_for(lambda _e: harness.filled(CID) == pytest.approx(0.7), timeout=3.0)
        partial = [
            u for u in updates(harness.events, CID) if u.status is OrderStatus.PARTIALLY_FILLED
        ]
        assert partial[-1].filled_quantity == pytest.approx(harness.held(CID))

        harness.trade_through(49_400.0)
        final = harness.wait_final(CID)
        _settled(harness)
        assert final.status is OrderStatus.FILLED
        assert final.filled_quantity == pytest.approx(harness.held(CID))
        assert harness.filled(CID) == pytest.approx(1.0)
        assert _fills(harness)[0] == first  # the old copy's fill, once, as it was
        assert _venue_orders(harness) == {
            CID: ("CANCELED", 1.0, 0.4),
            f"{CID}-a1": ("FILLED", 0.6, 0.6),
        }
        _assert_venue_agrees(harness, btc_before)


def test_a_part_filled_replacement_cancelled_at_the_venue_keeps_its_fill(tmp_path: Path) -> None:
    """The replacement filled 0.3 (less than the old copy's 0.4), then a person cancelled it
    at the venue: the bot is told the 0.3 before the cancel, and the cancel says 0.7 filled."""
    with coinless_spot(tmp_path) as harness:
        btc_before = _btc(harness)
        _working_part_filled(harness, 0.4)
        _amended(harness, None, MOVED)
        with harness.fake.state.lock:  # neither poll nor fill between these two
            _part_fill(harness, f"{CID}-a1", 0.3, MOVED)
            state = harness.fake.state
            state.spot.cancel_order(
                state.accounts[harness.fake.api_key],
                {"symbol": SYMBOL, "origClientOrderId": f"{CID}-a1"},
            )
        final = harness.wait_final(CID)
        _settled(harness)
        assert final.status is OrderStatus.CANCELLED
        assert final.code is ReasonCode.CANCELLED_BY_VENUE
        assert harness.filled(CID) == pytest.approx(0.7)
        assert final.filled_quantity == pytest.approx(harness.held(CID))
        _assert_venue_agrees(harness, btc_before)


def test_a_new_quantity_is_the_whole_orders_and_one_not_above_the_filled_part_is_refused(
    tmp_path: Path,
) -> None:
    """An amend's quantity is the whole order's (as USDⓈ-M and Bybit amend in place): 0.8 of
    a buy filled 0.4 places 0.4 more. 0.3, less than what filled, is refused by the broker and
    changes nothing (sent, the venue would cancel the order and place another 0.3)."""
    with coinless_spot(tmp_path) as harness:
        _working_part_filled(harness, 0.4)
        replaces = sum(1 for r in list(harness.fake.requests) if r.path == REPLACE_PATH)
        before = len(updates(harness.events, CID))
        harness.broker.amend(CID, 0.3, MOVED)
        harness.wait_for(lambda e: len(updates(e, CID)) > before)
        [refused] = updates(harness.events, CID)[before:]
        assert refused.status is OrderStatus.OPEN
        assert refused.code is ReasonCode.INVALID_QUANTITY
        assert refused.reason == (
            f"amend refused: quantity 0.3 is not above the 0.4 of {CID} already filled"
        )
        assert sum(1 for r in list(harness.fake.requests) if r.path == REPLACE_PATH) == replaces
        assert _venue_orders(harness) == {CID: ("PARTIALLY_FILLED", 1.0, 0.4)}

        _amended(harness, 0.8, MOVED)
        assert _venue_orders(harness) == {
            CID: ("CANCELED", 1.0, 0.4),
            f"{CID}-a1": ("NEW", 0.4, 0.0),
        }
        harness.trade_through(49_400.0)
        assert harness.wait_final(CID).status is OrderStatus.FILLED
        assert harness.filled(CID) == pytest.approx(0.8)


def test_a_fill_of_the_old_copy_while_the_replace_is_on_its_way_is_not_bought_twice(
    tmp_path: Path,
) -> None:
    """The broker sized the replacement on the 0.4 it had read (0.6 left); before the venue
    took the cancel-replace (1.5 s on the way), the old copy filled 0.2 more. The broker reads
    the cancelled copy (0.6 executed), cuts the replacement to the 0.4 left (``-a2``) and the
    order buys 1.0 in all, not 1.2."""
    with harness_for("binance-spot", tmp_path, timeout_ms=6_000) as harness:
        assert isinstance(harness, VenueHarness)
        btc_before = _btc(harness)
        _working_part_filled(harness, 0.4)
        harness.fake.faults.inject("latency", path=REPLACE_PATH, method="POST", delay_ms=1_500)
        sent = sum(1 for r in list(harness.fake.requests) if r.path == REPLACE_PATH)
        harness.broker.amend(CID, None, MOVED)
        harness.wait_for(
            lambda _e: sum(1 for r in list(harness.fake.requests) if r.path == REPLACE_PATH) > sent
        )
        _part_fill(harness, CID, 0.2, LIMIT)  # at the venue, before the cancel
        harness.wait_for(
            lambda _e: _venue_orders(harness).get(f"{CID}-a2", ("",))[0] == "NEW", timeout=10.0
        )
        assert _venue_orders(harness) == {
            CID: ("CANCELED", 1.0, 0.6),
            f"{CID}-a1": ("CANCELED", 0.6, 0.0),
            f"{CID}-a2": ("NEW", 0.4, 0.0),
        }
        harness.trade_through(49_400.0)
        assert harness.wait_final(CID).status is OrderStatus.FILLED
        _settled(harness)
        assert harness.filled(CID) == pytest.approx(1.0)
        _assert_venue_agrees(harness, btc_before)


def test_a_restart_between_the_replacements_fills_counts_each_fill_once(tmp_path: Path) -> None:
    """The bot stops after the replacement filled 0.3 of its 0.6; the restarted broker's
    reports (what start-up reconciliation reads) hold no fill the bot had not booked and no
    position it does not hold, and the rest of the replacement reaches the bot once."""
    with coinless_spot(tmp_path) as harness:
        btc_before = _btc(harness)
        _working_part_filled(harness, 0.4)
        _amended(harness, None, MOVED)
        _part_fill(harness, f"{CID}-a1", 0.3, MOVED)
        harness.wait_for(lambda _e: harness.filled(CID) == pytest.approx(0.7), timeout=3.0)
        booked = _fills(harness)
        working = harness.order(CID, quantity=1.0, order_type=OrderType.LIMIT, price=MOVED)

        broker = harness.restart()
        since = min(f.ts for f in booked) - 60
        plan = plan_reconciliation(
            prefix=PREFIX,
            symbols=(SYMBOL,),
            journal_fills=booked,
            journal_working={CID: working},
            known_order_ids=frozenset({CID}),
            venue_orders=broker.order_reports(since),
            venue_fills=broker.fill_reports(since),
            venue_positions=broker.position_reports(),
            now=int(time.time()),
        )
        assert plan.missed_fills == ()
        assert plan.mismatches == ()
        [adopted] = plan.adopted  # the bot's order, working as its replacement, whole
        assert adopted.client_order_id == CID
        assert (adopted.quantity, adopted.filled_quantity) == pytest.approx((1.0, 0.7))

        harness.trade_through(49_400.0)
        harness.wait_for(lambda _e: harness.final(CID) is not None)
        _settled(harness)
        later = [e for e in harness.events if isinstance(e, Fill) and e not in booked]
        assert [f.client_order_id for f in later] == [CID]
        every = [*booked, *later]
        assert sorted(f.fill_id for f in every) == sorted(_venue_trade_ids(harness))
        assert sum(Decimal(str(f.quantity)) for f in every) == _btc(harness) - btc_before


@pytest.mark.parametrize(
    ("total", "executed", "step", "rest"),
    [
        (1.0, 0.4, 0.00001, 0.6),
        (1.0, 0.7, 0.00001, 0.3),  # 1.0 - 0.7 is 0.30000000000000004 in floats
        (0.3, 0.1, 0.00001, 0.2),  # 0.3 - 0.1 is 0.19999999999999998: ccxt would cut a step
        (0.1 + 0.2, 0.1, 0.00001, 0.2),
        (1.0, 0.0, 0.00001, 1.0),
        (1.0, 1.0, 0.00001, 0.0),
        (1.0, 0.123456, 0.0, 0.876544),  # no step known: the decimal difference
    ],
)
def test_replacement_quantity_is_the_rest_on_the_lot_step(
    total: float, executed: float, step: float, rest: float
) -> None:
    assert replacement_quantity(total, executed, step) == rest


def test_replacement_quantity_of_an_overfilled_order_is_negative() -> None:
    assert replacement_quantity(1.0, 1.2, 0.00001) < 0.0
