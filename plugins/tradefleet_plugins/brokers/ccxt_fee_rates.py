"""The price of a fee taken in a third coin, read from the venue (the I/O beside ``fill_terms``).

Binance takes a trade's commission in BNB when the account pays fees with BNB (at a discount):
the fee is then neither the account's currency nor the asset traded, and booked as nothing it
would overstate every trade's result. Its price in the market's quote is the open of the
coin's 1-minute candle of the trade's minute (``rate_at``): fixed once that minute began, so
the same trade is booked at the same fee live and in a restart's reports (a coin that had not
traded yet in that minute when read is priced at the minute before's close). One read per coin
and minute, kept; a read that fails is tried again at the next trade of that minute.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from tradefleet_plugins.brokers.ccxt_orders import (
    FillRules,
    conversion_pair,
    rate_at,
    third_coin_fee,
)
from tradefleet_plugins.brokers.ccxt_venue import VenueFailure

log = logging.getLogger(__name__)

_MINUTE_MS = 60_000
# Prices kept (coin, minute); the oldest half goes when full. A bot trades a few minutes a day.
_KEPT = 4096
# Minutes read before the trade's: a coin that has not traded yet in it has the close before.
_LOOK_BACK = 5


class _Reader(Protocol):
    async def once(self, method: str, *args: Any) -> Any: ...


class FeeRates:
    """Third coins' prices by (pair, minute), read through ``venue`` (one request each)."""

    def __init__(self, venue: _Reader, symbols: Mapping[str, Any]) -> None:
        self._venue = venue
        self._symbols = symbols  # the exchange's markets, by unified symbol
        self._prices: dict[tuple[str, int], float] = {}

    async def of(self, trades: Sequence[Mapping[str, Any]], rules: FillRules) -> dict[str, float]:
        """The third coin's price (in the market's quote, ``rules.quote``) of each of
        ``trades`` whose fee was taken in one, by trade id; none read for the others. A trade
        whose price could not be had is left out (its fee is then booked as 0, and the caller
        says so)."""
        rates: dict[str, float] = {}
        for trade in trades:
            coin = third_coin_fee(trade, rules)
            if coin is None:
                continue
            pair = conversion_pair(coin, rules.quote, self._symbols)
            if pair is None:
                continue
            stamp = trade.get("timestamp")
            if stamp is None:
                continue
            rate = await self._at(pair, int(stamp) // _MINUTE_MS * _MINUTE_MS)
            if rate is not None:
                rates[str(trade.get("id"))] = rate
        return rates

    async def _at(self, pair: str, minute_ms: int) -> float | None:
        key = (pair, minute_ms)
        known = self._prices.get(key)
        if known is not None:
            return known
        try:
            candles = await self._venue.once(
                "fetch_ohlcv", pair, "1m", minute_ms - _LOOK_BACK * _MINUTE_MS, _LOOK_BACK + 2
            )
        except VenueFailure as error:
            log.warning(
                "ccxt broker: the price of %s could not be read for a fee (%s)",
                pair,
                error.failure.message,
            )
            return None
        rate = rate_at(candles if isinstance(candles, list) else [], minute_ms)
        if rate is not None:
            if len(self._prices) >= _KEPT:
                for old in sorted(self._prices, key=lambda k: k[1])[: _KEPT // 2]:
                    del self._prices[old]
            self._prices[key] = rate
        return rate


__all__ = ["FeeRates"]
