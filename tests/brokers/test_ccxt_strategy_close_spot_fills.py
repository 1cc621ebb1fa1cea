"""A strategy's ``ctx.close`` on Binance spot through the real ccxt broker, on an account
holding a person's own coins beside the bot's (walkthrough W21's account): a bracketed entry
(its OCO at the venue), then the strategy closes while the take-profit trades.

What a careful user expects: one sale of what the bot holds in all, the person's coins
untouched, the bot flat, and the wait's end said.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.harness import QUANTITY, START_PRICE, VenueHarness, base_balance, coinless_spot
from tests.brokers.test_ccxt_flatten_keeps_stops import TP, _events, _until
from tests.brokers.test_ccxt_strategy_close_waits import (
    CANCEL,
    PERSONS,
    _bought_with_exits,
    _sold_and_bought,
)
from tests.venues.binance.state import Candle


def _take_profit_id(harness: VenueHarness) -> str:
    with harness.fake.state.lock:
        legs = [
            o.client_order_id
            for o in harness.fake.state.spot.orders.values()
            if o.side == "SELL" and o.is_open and o.client_order_id.endswith("-tp")
        ]
    [tp] = legs
    return str(tp)


def _flat_and_said(engine: Any, journal: Any, symbol: str) -> None:
    _until(
        engine,
        lambda: (
            engine.position(symbol).quantity == 0.0
            and not engine.open_orders()
            and len(_events(journal, "close_waits")) >= 2
        ),
    )


def test_take_profit_filled_as_the_cancel_arrives_unknown_order_sells_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The take-profit fills an instant before the cancel reaches the venue: the venue answers
    the cancel -2011 "Unknown order sent."; the bot must not sell again."""
    with coinless_spot(tmp_path) as harness:
        engine, journal, close_bar = _bought_with_exits(harness)
        symbol = harness.symbol
        held = Decimal(str(engine.position(symbol).quantity))
        spot = harness.fake.state.spot
        cancel = spot.cancel_with_list
        spiked: list[bool] = []

        def fill_first(account: Any, params: dict[str, str]) -> Any:
            if not spiked:
                spiked.append(True)
                top = Decimal(str(TP + 500))
                spot.apply_candle(symbol, Candle(spot.now, top, top, top, top))
            return cancel(account, params)

        monkeypatch.setattr(spot, "cancel_with_list", fill_first)
        close_bar()
        _flat_and_said(engine, journal, symbol)
        assert spiked
        sold, bought = _sold_and_bought(harness)
        assert bought == Decimal(str(QUANTITY)) and sold == held  # the take-profit, once
        assert sum(base_balance(harness)) == PERSONS
        assert "nothing is left" in _events(journal, "close_waits")[-1][0]
        rows = journal.query("SELECT tag FROM orders WHERE tag = 'close'")
        assert rows == []  # no close order journaled


def test_take_profit_part_filled_before_its_cancel_lands_close_sells_the_rest(
    tmp_path: Path,
) -> None:
    with coinless_spot(tmp_path) as harness:
        engine, journal, close_bar = _bought_with_exits(harness)
        symbol = harness.symbol
        held = Decimal(str(engine.position(symbol).quantity))
        harness.fake.faults.inject("latency", delay_ms=800, times=None, **CANCEL)
        tp = _take_profit_id(harness)
        close_bar()
        [(_message, data)] = _events(journal, "close_waits")
        assert tp in list(data["waiting_for"])  # type: ignore[call-overload]
        part = Decimal("0.004")
        with harness.fake.state.lock:
            spot = harness.fake.state.spot
            [order] = [o for o in spot.orders.values() if o.client_order_id == tp]
            order.fill_cap = part
            top, last = Decimal(str(TP + 500)), Decimal(str(START_PRICE))
            spot.apply_candle(symbol, Candle(spot.now, last, top, last, last))
        _flat_and_said(engine, journal, symbol)
        sold, _bought = _sold_and_bought(harness)
        assert sold == held  # the part, then one close of the rest
        assert sum(base_balance(harness)) == PERSONS
        [(quantity,)] = journal.query("SELECT quantity FROM orders WHERE tag = 'close'")
        assert Decimal(str(quantity)) == held - part
        said = _events(journal, "close_waits")[-1]
        assert "the strategy's close goes" in said[0]
