"""The broker contract (``venue-execution``), the same cases for every broker setup.

Paper is the reference; the ccxt broker runs them against the fake Binance spot, Binance
USDⓈ-M and Bybit v5 linear, the MT5 broker against the emulated terminal (netting, EURUSD in
lots) directly and through the bridge; after each case the venue's own orders and fills must
equal what the broker reported, with no client order id placed twice (``conftest.setup``).
Prices are written around 50,000 and mapped onto each setup's market by ``setup.px``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.brokers.contract.conftest import not_on, venue_only
from tests.brokers.harness import (
    MT5_SETUPS,
    ORDER_PATH,
    PREFIX,
    Harness,
    updates,
    wait_children_open,
)
from tradefleet_runtime.sdk import (
    TAKE_PROFIT_TAG,
    Fill,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
)


def test_the_instrument_carries_the_venues_rules(setup: Harness) -> None:
    instrument = setup.broker.instrument(setup.symbol)
    assert instrument.symbol == setup.symbol
    assert instrument.tick_size > 0 and instrument.lot_step > 0
    assert instrument.min_quantity > 0
    assert instrument.min_notional > 0 or not setup.has_min_notional
    assert instrument.contract_size == setup.contract_size


def test_a_market_order_fills_and_its_report_says_so(setup: Harness) -> None:
    update = setup.broker.submit(setup.order("mkt1"))
    assert update.status in (OrderStatus.OPEN, OrderStatus.PENDING)
    assert setup.answer(update).status is not OrderStatus.REJECTED
    setup.settle()
    setup.wait_filled("mkt1")
    fills = [e for e in setup.events if isinstance(e, Fill) and e.client_order_id == "mkt1"]
    assert setup.filled("mkt1") == pytest.approx(setup.quantity)
    assert setup.held("mkt1") <= setup.quantity + 1e-12
    assert all(f.side is Side.BUY and f.symbol == setup.symbol and f.fee >= 0 for f in fills)
    report = setup.broker.query_order("mkt1")
    assert report is not None and report.status is OrderStatus.FILLED
    assert report.filled_quantity == pytest.approx(setup.quantity)
    assert report.average_price == pytest.approx(fills[0].price, rel=1e-3)


def test_a_fill_names_its_orders_tag_or_else_its_type(setup: Harness) -> None:
    """``Fill.reason`` is the order's tag (a strategy's own, ``emergency-flatten``, a risk
    plugin's), or, untagged, its type: the trades' entry and exit reasons, which the report
    groups into signal, risk, stop-loss and take-profit exits, are read from it."""
    setup.answer(setup.broker.submit(setup.order("tag1", tag="emergency-flatten")))
    setup.answer(setup.broker.submit(setup.order("plain1", side=Side.SELL)))
    setup.settle()
    setup.wait_filled("tag1")
    setup.wait_filled("plain1")
    reasons = {e.client_order_id: e.reason for e in setup.events if isinstance(e, Fill)}
    assert reasons == {"tag1": "emergency-flatten", "plain1": "market"}


def test_a_limit_order_rests_then_fills_when_the_market_trades_through(setup: Harness) -> None:
    setup.answer(
        setup.broker.submit(
            setup.order("lim1", price=setup.px(49_000.0), order_type=OrderType.LIMIT)
        )
    )
    setup.trade_through(setup.px(49_500.0))
    setup.collect()
    assert setup.filled("lim1") == 0.0
    report = setup.broker.query_order("lim1")
    assert report is not None and report.status is OrderStatus.OPEN
    assert report.price == pytest.approx(setup.px(49_000.0))
    setup.trade_through(setup.px(48_900.0))
    setup.wait_filled("lim1")
    fill = next(e for e in setup.events if isinstance(e, Fill) and e.client_order_id == "lim1")
    assert fill.price <= setup.px(49_000.0)


def test_a_stop_order_triggers_when_the_market_trades_through(setup: Harness) -> None:
    answer = setup.answer(
        setup.broker.submit(
            setup.order("stp1", order_type=OrderType.STOP, price=setup.px(51_000.0))
        )
    )
    assert answer.status is OrderStatus.OPEN
    setup.trade_through(setup.px(50_500.0))
    setup.collect()
    assert setup.filled("stp1") == 0.0
    setup.trade_through(setup.px(51_200.0))
    setup.settle()
    setup.wait_filled("stp1")
    report = setup.broker.query_order("stp1")
    assert report is not None and report.status is OrderStatus.FILLED


def test_a_bracket_places_its_children_and_one_cancels_the_other(setup: Harness) -> None:
    entry = setup.order("brk1", stop_loss=setup.px(48_000.0), take_profit=setup.px(52_000.0))
    setup.answer(setup.broker.submit(entry))
    setup.settle()
    setup.wait_filled("brk1")
    if setup.venue:
        # The children go to the venue after the entry filled.
        setup.wait_for(
            lambda _e: all(
                (r := setup.broker.query_order(c)) is not None and r.status is OrderStatus.OPEN
                for c in ("brk1-sl", "brk1-tp")
            )
        )
    setup.trade_through(setup.px(52_100.0))
    setup.settle()
    setup.wait_filled("brk1-tp", setup.held("brk1"))  # what the account holds
    exits = [e for e in setup.events if isinstance(e, Fill) and e.client_order_id == "brk1-tp"]
    assert {e.reason for e in exits} == {TAKE_PROFIT_TAG}
    cancelled = setup.wait_final("brk1-sl")
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.code is ReasonCode.CANCELLED_BY_VENUE
    assert setup.filled("brk1-sl") == 0.0
    if not setup.spot:  # spot: the base balance is the "position"
        assert [p for p in setup.broker.position_reports() if p.symbol == setup.symbol] == []


def test_a_partial_fill_reports_progress_then_the_rest(setup: Harness) -> None:
    venue_only(setup, "the simulator fills whole orders")
    not_on(
        setup,
        setup.name not in MT5_SETUPS,
        "an MT5 deal's unfilled volume expires with it (FOK/IOC filling; the emulated "
        "market-execution account executes a pending order whole): no partly filled order "
        "rests for the rest (the part-and-expire path: test_mt5_faults)",
    )
    path = ORDER_PATH[setup.name]
    setup.fake.faults.inject("partial_fill", path=path, method="POST", fraction=0.4)
    # A marketable limit: 40 % fills at once, the rest on a later move.
    setup.answer(
        setup.broker.submit(
            setup.order("part1", price=setup.px(50_500.0), order_type=OrderType.LIMIT)
        )
    )
    setup.wait_for(
        lambda _e: any(
            u.status is OrderStatus.PARTIALLY_FILLED for u in updates(setup.events, "part1")
        )
    )
    assert setup.filled("part1") == pytest.approx(setup.quantity * 0.4)
    partial = [
        u for u in updates(setup.events, "part1") if u.status is OrderStatus.PARTIALLY_FILLED
    ]
    assert partial[0].filled_quantity == pytest.approx(setup.held("part1"))
    setup.trade_through(setup.px(50_400.0))
    setup.wait_filled("part1")
    final = setup.wait_final("part1")
    assert final.status is OrderStatus.FILLED and final.filled_quantity == pytest.approx(
        setup.held("part1")
    )


@pytest.mark.parametrize(
    ("order_type", "side"), [(OrderType.LIMIT, Side.BUY), (OrderType.STOP, Side.SELL)]
)
def test_amend_moves_a_working_order(setup: Harness, order_type: OrderType, side: Side) -> None:
    """A limit's price or a stop's trigger moves (a trailing stop): natively, by cancel-replace
    (Binance spot) or, where the venue cannot modify a conditional order (Binance USDⓈ-M),
    placed again under a derived id; the bot still calls it by its own id."""
    stop = order_type is OrderType.STOP
    not_on(setup, not (stop and setup.name in MT5_SETUPS), "the MT5 broker's stops are levels")
    cid = "amd3" if stop else "amd1"
    order = setup.order(cid, side=side, price=setup.px(45_000.0), order_type=order_type)
    setup.answer(setup.broker.submit(order))
    answer = setup.broker.amend(cid, None, setup.px(46_000.0))
    if answer is None:
        setup.wait_for(lambda _e: any(u.reason == "amended" for u in updates(setup.events, cid)))
    else:
        assert answer.status is OrderStatus.OPEN
    report = setup.broker.query_order(cid)
    assert report is not None and report.status is OrderStatus.OPEN
    assert report.price == pytest.approx(setup.px(46_000.0))
    assert report.client_order_id == cid
    setup.trade_through(setup.px(45_900.0))
    if stop:
        setup.settle()  # the triggered stop is a market order
    setup.wait_filled(cid)


def test_an_amend_below_the_minimum_is_refused_and_changes_nothing(setup: Harness) -> None:
    setup.answer(
        setup.broker.submit(
            setup.order("amd2", price=setup.px(45_000.0), order_type=OrderType.LIMIT)
        )
    )
    answer = setup.broker.amend("amd2", 0.0000001, None)
    if answer is None:
        setup.wait_for(
            lambda _e: any(u.code is not ReasonCode.NONE for u in updates(setup.events, "amd2"))
        )
        answer = [u for u in updates(setup.events, "amd2") if u.code is not ReasonCode.NONE][-1]
    assert answer.code in (ReasonCode.INVALID_QUANTITY, ReasonCode.BELOW_MIN_QUANTITY)
    report = setup.broker.query_order("amd2")
    assert report is not None and report.status is OrderStatus.OPEN
    assert report.quantity == pytest.approx(setup.quantity)


def test_cancel_all_cancels_every_working_order_of_the_symbol(setup: Harness) -> None:
    for cid, price in (("ca1", setup.px(45_000.0)), ("ca2", setup.px(44_000.0))):
        setup.answer(setup.broker.submit(setup.order(cid, price=price, order_type=OrderType.LIMIT)))
    setup.broker.cancel_all(setup.symbol)
    for cid in ("ca1", "ca2"):
        final = setup.wait_final(cid)
        assert final.status is OrderStatus.CANCELLED
        assert final.code is ReasonCode.CANCELLED_BY_USER
        report = setup.broker.query_order(cid)
        assert report is not None and report.status is OrderStatus.CANCELLED
    setup.trade_through(setup.px(43_000.0))
    setup.settle()
    setup.collect()
    assert setup.filled("ca1") == setup.filled("ca2") == 0.0


def test_a_quantity_below_the_minimum_is_refused_before_it_leaves(setup: Harness) -> None:
    minimum = setup.broker.instrument(setup.symbol).min_quantity
    update = setup.broker.submit(
        setup.order(
            "min1", quantity=minimum / 10, price=setup.px(45_000.0), order_type=OrderType.LIMIT
        )
    )
    assert update.status is OrderStatus.REJECTED
    assert update.code in (ReasonCode.BELOW_MIN_QUANTITY, ReasonCode.INVALID_QUANTITY)
    assert setup.venue_client_ids() == []


def test_a_notional_below_the_minimum_is_refused_naming_the_limit(setup: Harness) -> None:
    venue_only(setup, "the engine checks the minimum notional before a paper order")
    not_on(setup, setup.has_min_notional, "MT5 has no minimum order value (a minimum volume only)")
    instrument = setup.broker.instrument(setup.symbol)
    quantity = max(instrument.min_quantity, instrument.lot_step)
    price = instrument.min_notional / quantity / 2
    update = setup.broker.submit(
        setup.order("not1", quantity=quantity, price=round(price, 1), order_type=OrderType.LIMIT)
    )
    assert update.status is OrderStatus.REJECTED
    assert update.code is ReasonCode.BELOW_MIN_NOTIONAL
    assert "minimum notional" in update.reason
    assert setup.venue_client_ids() == []


def test_quantities_and_prices_are_rounded_with_the_venues_precision(setup: Harness) -> None:
    venue_only(setup, "the engine rounds a paper order to the instrument before it is sent")
    wanted = setup.quantity * 1.23456  # off the lot grid
    update = setup.broker.submit(
        setup.order("rnd1", quantity=wanted, price=setup.px(45_000.0), order_type=OrderType.LIMIT)
    )
    setup.answer(update)
    report = setup.broker.query_order("rnd1")
    assert report is not None
    step = setup.broker.instrument(setup.symbol).lot_step
    assert report.quantity <= wanted
    assert report.quantity == pytest.approx(round(report.quantity / step) * step)


def test_a_duplicate_client_id_never_creates_a_second_order(setup: Harness) -> None:
    order = setup.order("dup1", price=setup.px(45_000.0), order_type=OrderType.LIMIT)
    setup.answer(setup.broker.submit(order))
    again = setup.broker.submit(order)
    assert again.status is OrderStatus.REJECTED
    assert again.code is ReasonCode.DUPLICATE_CLIENT_ID
    if setup.venue:
        assert setup.venue_client_ids().count("dup1") == 1


def test_query_by_client_id_known_and_unknown(setup: Harness) -> None:
    setup.answer(
        setup.broker.submit(
            setup.order(
                "qry1", side=Side.SELL, price=setup.px(55_000.0), order_type=OrderType.LIMIT
            )
        )
    )
    report = setup.broker.query_order("qry1")
    assert report is not None
    assert (report.client_order_id, report.symbol, report.side) == ("qry1", setup.symbol, Side.SELL)
    assert report.order_type is OrderType.LIMIT and report.status is OrderStatus.OPEN
    assert report.quantity == pytest.approx(setup.quantity) and report.venue_order_id
    assert setup.broker.query_order("never-sent") is None


def test_order_fill_and_position_reports(setup: Harness) -> None:
    setup.answer(setup.broker.submit(setup.order("rep1")))
    setup.settle()
    setup.wait_filled("rep1")
    setup.answer(
        setup.broker.submit(
            setup.order("rep2", price=setup.px(45_000.0), order_type=OrderType.LIMIT)
        )
    )
    orders = {r.client_order_id: r for r in setup.broker.order_reports(0)}
    assert orders["rep1"].status is OrderStatus.FILLED
    assert orders["rep2"].status is OrderStatus.OPEN
    fills = setup.broker.fill_reports(0)
    mine = [f for f in fills if f.client_order_id == "rep1"]
    assert sum(setup.executed(f) for f in mine) == pytest.approx(setup.quantity)
    assert sum(f.quantity for f in mine) == pytest.approx(setup.held("rep1"))
    reported = {e.fill_id for e in setup.events if isinstance(e, Fill)}
    assert {f.fill_id for f in mine} <= reported  # the same execution, the same id
    assert [f.fill_id for f in setup.broker.fill_reports(0)] == [f.fill_id for f in fills]
    positions = {p.symbol: p for p in setup.broker.position_reports()}
    if setup.spot:  # the account's 1 BTC, and what the bot bought
        assert positions[setup.symbol].quantity == pytest.approx(1.0 + setup.quantity, rel=1e-3)
    else:
        assert positions[setup.symbol].quantity == pytest.approx(setup.quantity)


def test_a_new_broker_on_the_same_account_reports_what_the_old_one_left(setup: Harness) -> None:
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    old1, old2 = f"{PREFIX}old1", f"{PREFIX}old2"
    setup.answer(setup.broker.submit(setup.order(old1)))
    setup.wait_filled(old1)
    setup.answer(
        setup.broker.submit(setup.order(old2, price=setup.px(45_000.0), order_type=OrderType.LIMIT))
    )
    before_positions = setup.broker.position_reports()
    before_fills = [f.fill_id for f in setup.broker.fill_reports(0)]
    fresh = setup.restart()
    orders = {r.client_order_id: r for r in fresh.order_reports(0)}
    assert orders[old1].status is OrderStatus.FILLED
    assert orders[old2].status is OrderStatus.OPEN
    assert [f.fill_id for f in fresh.fill_reports(0)] == before_fills
    assert [(p.symbol, p.quantity) for p in fresh.position_reports()] == [
        (p.symbol, p.quantity) for p in before_positions
    ]
    report = fresh.query_order(old2)
    assert report is not None and report.status is OrderStatus.OPEN
    # The new object knows the old ids: sending one again is refused, never a second order.
    again = fresh.submit(setup.order(old1))
    assert again.code is ReasonCode.DUPLICATE_CLIENT_ID


def test_a_new_broker_follows_and_cancels_the_orders_an_earlier_run_left(setup: Harness) -> None:
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    kept, dropped = f"{PREFIX}keep1", f"{PREFIX}drop1"
    for cid, price in ((kept, setup.px(45_000.0)), (dropped, setup.px(40_000.0))):
        setup.answer(setup.broker.submit(setup.order(cid, price=price, order_type=OrderType.LIMIT)))
    fresh = setup.restart()
    # Re-armed after the restart: refused as a duplicate, then followed to its fill.
    rearmed = fresh.submit(setup.order(kept, price=setup.px(45_000.0), order_type=OrderType.LIMIT))
    assert rearmed.code is ReasonCode.DUPLICATE_CLIENT_ID
    fresh.cancel(dropped)
    final = setup.wait_final(dropped)
    assert final.status is OrderStatus.CANCELLED and final.code is ReasonCode.CANCELLED_BY_USER
    setup.trade_through(setup.px(44_900.0))
    setup.wait_filled(kept)
    if setup.fill_ends_with_update:
        assert setup.wait_final(kept).status is OrderStatus.FILLED
    report = fresh.query_order(kept)
    assert report is not None and report.status is OrderStatus.FILLED


def _bracket_then_restart(setup: Harness, entry: str) -> tuple[str, str, Any]:
    """An entry with a stop-loss and take-profit, filled with both children working at the
    venue; then the broker object is replaced (a restarted bot). The (stop, target) ids and the
    new broker."""
    order = setup.order(entry, stop_loss=setup.px(48_000.0), take_profit=setup.px(52_000.0))
    setup.answer(setup.broker.submit(order))
    setup.settle()
    setup.wait_filled(entry)
    stop, target = f"{entry}-sl", f"{entry}-tp"
    setup.wait_for(
        lambda _e: all(
            (r := setup.broker.query_order(c)) is not None and r.status is OrderStatus.OPEN
            for c in (stop, target)
        )
    )
    return stop, target, setup.restart()


_WATCHED_TARGET = (
    "Kraken's take-profit is watched by the broker, not at the venue: a restarted bot sends it "
    "again (tests/brokers/test_ccxt_kraken_take_profit.py)"
)


def test_a_new_broker_cancels_a_bracket_an_earlier_run_left(setup: Harness) -> None:
    """A new broker object (a restarted bot) reports an earlier run's bracket children as
    working and cancels them: the take-profit whose stop filled while the bot was down (start-up
    reconciliation does), either one a person cancels. On Binance USDⓈ-M both are conditional
    orders, which a cancel must look for among those; on MT5 the open position's SL and TP."""
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    not_on(setup, setup.name != "kraken", _WATCHED_TARGET)
    stop, target, fresh = _bracket_then_restart(setup, f"{PREFIX}brk2")
    children = (target, stop)
    # Start-up reconciliation's input: both children working, so the bot adopts them (a child
    # missing here would be closed in the journal as never sent while it works at the venue).
    reports = {r.client_order_id: r for r in fresh.order_reports(0)}
    assert [reports[c].status for c in children] == [OrderStatus.OPEN] * 2
    for cid in children:
        fresh.cancel(cid)
        final = setup.wait_final(cid)
        assert final.status is OrderStatus.CANCELLED, cid
        report = fresh.query_order(cid)
        if setup.name in MT5_SETUPS:  # a level of the position, removed: nothing to report
            assert report is None, cid
        else:
            assert report is not None and report.status is OrderStatus.CANCELLED, cid
    if setup.name in MT5_SETUPS:
        held = [p for p in setup.mt5.terminal.positions_get() or () if p.symbol == setup.symbol]
        assert [(p.sl, p.tp) for p in held] == [(0.0, 0.0)]


def test_a_bracket_an_earlier_run_left_still_cancels_the_other_child(setup: Harness) -> None:
    """After a restart the take-profit fills: the new broker object cancels the stop, as the
    old one would have (a stop left working would act on the next position), and the fill
    reads as a take-profit exit."""
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    not_on(setup, setup.name != "kraken", _WATCHED_TARGET)
    stop, target, fresh = _bracket_then_restart(setup, f"{PREFIX}brk3")
    fresh.order_reports(0)  # start-up reconciliation: the new object follows what it finds
    setup.trade_through(setup.px(52_100.0))
    setup.settle()
    setup.wait_filled(target, setup.held(f"{PREFIX}brk3"))
    exits = [e for e in setup.events if isinstance(e, Fill) and e.client_order_id == target]
    assert {e.reason for e in exits} == {TAKE_PROFIT_TAG}
    cancelled = setup.wait_final(stop)
    assert cancelled.status is OrderStatus.CANCELLED
    report = fresh.query_order(stop)
    if setup.name in MT5_SETUPS:  # a level of the closed position: nothing left to report
        assert report is None
    else:
        assert report is not None and report.status is OrderStatus.CANCELLED


def _limit_bracket(setup: Harness, entry: str, price: float) -> Any:
    """A limit buy at ``price`` with its stop-loss at 48,000 and take-profit at 52,000."""
    return setup.order(
        entry,
        price=setup.px(price),
        order_type=OrderType.LIMIT,
        stop_loss=setup.px(48_000.0),
        take_profit=setup.px(52_000.0),
    )


def _part_filled_bracket(setup: Harness, entry: str) -> Any:
    """A marketable limit entry with a stop-loss and take-profit, 40 % filled at once (the rest
    rests), its children working for that part at the venue: the order."""
    path = ORDER_PATH[setup.name]
    setup.fake.faults.inject("partial_fill", path=path, method="POST", fraction=0.4)
    order = _limit_bracket(setup, entry, 50_500.0)
    setup.answer(setup.broker.submit(order))
    setup.wait_filled(entry, setup.quantity * 0.4)
    wait_children_open(setup, setup.broker, entry, setup.held(entry))
    return order


_NO_RESTING_PART = (
    "an MT5 deal's unfilled volume expires with it: no partly filled entry rests unprotected"
)


def test_a_part_filled_bracket_entry_is_protected_for_what_filled(setup: Harness) -> None:
    """A limit entry can rest part-filled for hours: what filled has its stop-loss and
    take-profit at the venue at once, sized on it, and they grow with each fill (amended, or
    replaced under a derived id where the venue cannot amend), so the stop closes all of it."""
    venue_only(setup, "the simulator fills whole orders")
    not_on(setup, setup.name not in MT5_SETUPS, _NO_RESTING_PART)
    entry = "pbk1"
    _part_filled_bracket(setup, entry)
    setup.trade_through(setup.px(50_400.0))
    setup.wait_filled(entry)
    wait_children_open(setup, setup.broker, entry, setup.held(entry))
    setup.trade_through(setup.px(47_900.0))
    setup.wait_filled(f"{entry}-sl", setup.held(entry))
    assert setup.filled(f"{entry}-sl") == pytest.approx(setup.held(entry))
    cancelled = setup.wait_final(f"{entry}-tp")
    assert cancelled.status is OrderStatus.CANCELLED
    if not setup.spot:  # spot: the base balance is the "position"
        assert [p for p in setup.broker.position_reports() if p.symbol == setup.symbol] == []


def test_a_bracket_entry_adopted_after_a_restart_is_protected_when_it_fills(
    setup: Harness,
) -> None:
    """The venue keeps no entry's stop-loss: after a restart the bot tells the new broker
    object (``follows-brackets``), which places the children when the entry fills."""
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    not_on(setup, setup.name not in MT5_SETUPS, "MT5 sends an entry's SL/TP with it")
    entry = f"{PREFIX}pbk2"
    order = _limit_bracket(setup, entry, 49_000.0)
    setup.answer(setup.broker.submit(order))
    fresh = setup.restart()
    reports = {r.client_order_id: r for r in fresh.order_reports(0)}  # start-up reconciliation
    assert reports[entry].status is OrderStatus.OPEN
    fresh.follow_bracket(order)
    setup.trade_through(setup.px(48_900.0))
    setup.wait_filled(entry)
    wait_children_open(setup, fresh, entry, setup.held(entry))
    setup.trade_through(setup.px(52_100.0))
    setup.wait_filled(f"{entry}-tp", setup.held(entry))
    assert setup.wait_final(f"{entry}-sl").status is OrderStatus.CANCELLED


def test_the_bracket_of_an_entry_that_filled_while_the_bot_was_down_is_placed_when_asked(
    setup: Harness,
) -> None:
    """The entry filled while the bot was down, so no child was placed: after the restart the
    bot asks the new broker object (``protect_filled``) to place them on what the account
    holds, as at the fill — on Binance spot one order list, both legs working on the coin."""
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    not_on(setup, setup.name not in MT5_SETUPS, "MT5 sends an entry's SL/TP with it")
    entry = f"{PREFIX}pbk5"
    order = setup.order(entry, stop_loss=setup.px(48_000.0), take_profit=setup.px(52_000.0))
    # Sent without its bracket: this broker object never places the children.
    setup.answer(setup.broker.submit(order._replace(stop_loss=None, take_profit=None)))
    setup.wait_filled(entry)
    fresh = setup.restart()
    fresh.order_reports(0)
    fresh.protect_filled(order, setup.held(entry))
    wait_children_open(setup, fresh, entry, setup.held(entry))
    setup.trade_through(setup.px(52_100.0))
    setup.wait_filled(f"{entry}-tp", setup.held(entry))
    assert setup.wait_final(f"{entry}-sl").status is OrderStatus.CANCELLED
    assert setup.venue_client_ids().count(f"{entry}-sl") == 1


def test_children_placed_for_part_of_an_entry_grow_when_the_rest_filled_while_down(
    setup: Harness,
) -> None:
    """Part of the entry had filled (its children work for that part) when the bot stopped,
    and the rest filled while it was down: the bot asks the new broker object to protect all
    that filled (``protect_filled``), which grows the children at the venue."""
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    not_on(setup, setup.name not in MT5_SETUPS, _NO_RESTING_PART)
    entry = f"{PREFIX}pbk6"
    order = _part_filled_bracket(setup, entry)
    fresh = setup.restart()
    setup.trade_through(setup.px(50_400.0))  # the rest fills before the bot is back
    fresh.order_reports(0)  # start-up reconciliation: the children are adopted
    total = sum(f.quantity for f in fresh.fill_reports(0) if f.client_order_id == entry)
    assert total > setup.held(entry)
    fresh.protect_filled(order, total)
    wait_children_open(setup, fresh, entry, total)
    setup.trade_through(setup.px(47_900.0))
    setup.wait_filled(f"{entry}-sl", total)
    assert setup.filled(f"{entry}-sl") == pytest.approx(total)
    assert setup.wait_final(f"{entry}-tp").status is OrderStatus.CANCELLED


def test_a_part_filled_bracket_entry_adopted_after_a_restart_keeps_growing_its_children(
    setup: Harness,
) -> None:
    """Part of the entry filled (its children work for that part) when the bot restarted: the
    new broker object follows the children and resizes them as the rest fills."""
    venue_only(setup, "a simulated account lives in its process (restored from the journal)")
    not_on(setup, setup.name not in MT5_SETUPS, _NO_RESTING_PART)
    entry = f"{PREFIX}pbk3"
    order = _part_filled_bracket(setup, entry)
    fresh = setup.restart()
    fresh.order_reports(0)
    fresh.follow_bracket(order)
    setup.trade_through(setup.px(50_400.0))
    setup.wait_filled(entry)
    wait_children_open(setup, fresh, entry, setup.held(entry))
