"""``FeeRates``: a third coin's price for fees, read once per coin and minute."""

from __future__ import annotations

import asyncio
from typing import Any

from tradefleet_plugins.brokers.ccxt_errors import Failure, Retry
from tradefleet_plugins.brokers.ccxt_fee_rates import FeeRates
from tradefleet_plugins.brokers.ccxt_orders import FillRules
from tradefleet_plugins.brokers.ccxt_venue import VenueFailure
from tradefleet_runtime.sdk import ReasonCode

MINUTE = 1_700_000_040_000 // 60_000 * 60_000
RULES = FillRules(frozenset({"USDT"}), "BTC", 0.00001, spot=True, quote="USDT")


class Reader:
    """The venue: 1-minute BNB/USDT candles, each read counted; ``down`` fails them."""

    def __init__(self) -> None:
        self.reads: list[tuple[Any, ...]] = []
        self.down = False

    async def once(self, method: str, *args: Any) -> Any:
        self.reads.append((method, *args))
        if self.down:
            raise VenueFailure(Failure(ReasonCode.VENUE_UNAVAILABLE, Retry.SAFE, "503"))
        return [[MINUTE, 600.0, 0, 0, 610.0, 1], [MINUTE + 60_000, 620.0, 0, 0, 630.0, 1]]


def _trade(trade_id: str, ts: int, currency: str = "BNB") -> dict[str, Any]:
    return {"id": trade_id, "timestamp": ts, "fee": {"cost": 0.000625, "currency": currency}}


def test_one_read_per_coin_and_minute_and_only_for_third_coin_fees() -> None:
    reader = Reader()
    rates = FeeRates(reader, {"BNB/USDT": {}, "BTC/USDT": {}})
    trades = [
        _trade("t1", MINUTE + 5_000),
        _trade("t2", MINUTE + 59_000),
        _trade("t3", MINUTE + 61_000),
        _trade("t4", MINUTE + 1_000, "USDT"),
    ]
    got = asyncio.run(rates.of(trades, RULES))
    assert got == {"t1": 600.0, "t2": 600.0, "t3": 620.0}
    assert [read[:3] for read in reader.reads] == [("fetch_ohlcv", "BNB/USDT", "1m")] * 2
    asyncio.run(rates.of(trades[:1], RULES))
    assert len(reader.reads) == 2  # kept


def test_a_failed_read_prices_nothing_and_is_tried_again() -> None:
    reader = Reader()
    rates = FeeRates(reader, {"BNB/USDT": {}})
    reader.down = True
    assert asyncio.run(rates.of([_trade("t1", MINUTE)], RULES)) == {}
    reader.down = False
    assert asyncio.run(rates.of([_trade("t1", MINUTE)], RULES)) == {"t1": 600.0}
    assert len(reader.reads) == 2


def test_a_coin_the_venue_does_not_price_is_not_read() -> None:
    reader = Reader()
    rates = FeeRates(reader, {"BTC/USDT": {}})
    assert asyncio.run(rates.of([_trade("t1", MINUTE)], RULES)) == {}
    assert reader.reads == []
