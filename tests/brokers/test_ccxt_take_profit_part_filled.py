"""A bracket's take-profit that executes only part of the position (walkthrough W26), through
the real ccxt broker on the fake futures venues: the stop-loss still protects what is held,
cut to it, and is neither cancelled nor said cancelled outside the bot. On Binance USDⓈ-M the
TAKE_PROFIT_MARKET triggers and meets a thin book (0.004 of 0.01 executes, the venue expires
the rest); on Bybit the reduce-only take-profit limit fills 0.004 and rests on.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.ccxt_venue_reads import pump_for, venue_position
from tests.brokers.harness import ORDER_PATH, QUANTITY, VenueHarness
from tests.brokers.test_ccxt_flatten_beside_resting_sell import _until, _venue
from tests.brokers.test_ccxt_strategy_close_guards import _Bot, _said

PART = 0.004
LEFT = QUANTITY - PART


def _venue_stop(harness: VenueHarness, stop_id: str) -> tuple[str, Decimal]:
    """The stop-loss as the venue holds it now: its status and quantity (a resize by cancel-
    replace on Binance USDⓈ-M lists it again as ``<id>-a1``)."""
    state = harness.fake.state
    with state.lock:
        if harness.name == "bybit":
            [order] = [o for o in state.orders.values() if o.link_id.startswith(stop_id)][-1:]
            return order.status, order.qty - order.cum_qty
        algos = [a for a in state.usdm.algo_orders.values() if a.client_algo_id.startswith(stop_id)]
        newest = max(algos, key=lambda a: a.seq)
        return newest.status, newest.quantity


def _take_profit_part(harness: VenueHarness) -> None:
    state = harness.fake.state
    with state.lock:
        if harness.name == "bybit":
            [tp] = [o for o in state.orders.values() if o.link_id.endswith("-tp") and o.is_open]
            state._fill(tp, Decimal(str(PART)), tp.price, True)
            return
        usdm = state.usdm
        placed = usdm.new_order

        def capped(
            account: Any, params: Any, fill_fraction: Any = None, dry_run: bool = False
        ) -> Any:
            if params.get("newClientOrderId", "").endswith("-tp"):
                fill_fraction = Decimal(str(PART)) / Decimal(str(QUANTITY))
            return placed(account, params, fill_fraction=fill_fraction, dry_run=dry_run)

        usdm.new_order = capped
        usdm._continue_partial_markets = lambda _symbol, _price: []  # a thin book
        try:
            harness.trade_through(52_100.0)
            for order in list(usdm.open_markets[harness.symbol].values()):
                usdm._unrest(order)
                order.status = "EXPIRED"
        finally:
            usdm.new_order = placed
            del usdm._continue_partial_markets


def _ends_flat(bot: _Bot) -> None:
    """Flat at the venue and in the bot, nothing working, what was bought closed once."""
    engine, symbol = bot.engine, bot.symbol
    _until(
        engine,
        lambda: engine.position(symbol).quantity == 0.0 and not engine.open_orders(),
        "flat with nothing working",
    )
    pump_for(engine, 1.0)
    assert venue_position(bot.harness) == Decimal(0)
    assert sum(t.quantity for t in engine.portfolio.trades) == pytest.approx(QUANTITY)


@pytest.mark.parametrize("venue", ["binance-usdm", "bybit"])
def test_a_take_profit_filled_in_part_leaves_the_rest_under_its_stop_cut_to_it(
    tmp_path: Path, venue: str
) -> None:
    with _venue(venue, tmp_path) as harness:
        bot = _Bot(harness)
        engine, symbol = bot.engine, bot.symbol
        stop_id = bot.guards[0]
        _take_profit_part(harness)
        _until(
            engine,
            lambda: engine.position(symbol).quantity == pytest.approx(LEFT),
            "the take-profit's part",
        )
        _until(
            engine,
            lambda: _venue_stop(harness, stop_id)[1] == Decimal(str(LEFT)),
            "the stop-loss cut to what is held",
        )
        pump_for(engine, 1.0)
        assert venue_position(harness) == Decimal(str(LEFT))
        status, quantity = _venue_stop(harness, stop_id)
        assert status in {"NEW", "New", "Untriggered"}, "the rest runs with no stop"
        assert quantity == Decimal(str(LEFT))
        [stop] = [o for o in engine.open_orders() if o.client_order_id == stop_id]
        assert stop.quantity == pytest.approx(LEFT)
        assert _said(bot.journal) == []


@pytest.mark.parametrize("venue", ["binance-usdm", "bybit"])
def test_the_strategys_close_after_a_part_of_the_take_profit_leaves_nothing(
    tmp_path: Path, venue: str
) -> None:
    """The part, then the strategy closes what is left: flat at the venue, never short, the
    stop-loss and the rest of the take-profit ended."""
    with _venue(venue, tmp_path) as harness:
        bot = _Bot(harness)
        engine, symbol = bot.engine, bot.symbol
        _take_profit_part(harness)
        _until(
            engine,
            lambda: engine.position(symbol).quantity == pytest.approx(LEFT),
            "the take-profit's part",
        )
        pump_for(engine, 0.5)
        bot.close_at_next_bar()
        _ends_flat(bot)


@pytest.mark.parametrize("venue", ["binance-usdm", "bybit"])
def test_a_take_profit_part_while_the_strategys_close_is_on_its_way_leaves_nothing(
    tmp_path: Path, venue: str
) -> None:
    """The strategy closes 0.01; before its close lands the take-profit executes 0.004. Binance
    refuses the close (-2022: reduce-only larger than the 0.006 held; Bybit trims it): the bot
    closes the 0.006 at market, says so, and ends flat, never short."""
    with _venue(venue, tmp_path) as harness:
        bot = _Bot(harness)
        engine = bot.engine
        harness.fake.faults.inject("latency", path=ORDER_PATH[venue], method="POST", delay_ms=1000)
        bot.close_at_next_bar()
        pump_for(engine, 0.3)  # the close is at the venue's door
        _take_profit_part(harness)
        _ends_flat(bot)
        resent = bot.journal.query("SELECT message FROM events WHERE kind = 'close_resent'")
        assert len(resent) == (1 if venue == "binance-usdm" else 0), resent
