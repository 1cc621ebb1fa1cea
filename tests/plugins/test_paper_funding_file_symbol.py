"""A funding history whose rows name another market than the symbol it is given for is refused,
naming the param and both markets; the same market in another spelling is taken.

``tradefleet funding-history`` writes the exchange and symbol on every row. The paper broker
ignored the column: ETH's history given to BTC (a copied path) was paid at ETH's rates, and a
backtest's funding line was wrong with nothing said (-132.16 USDT in the case that found it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_funding_history import (
    FundingHistory,
    other_market,
    parse_funding_history,
)
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.errors import DataError

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
EIGHT_H = 8 * 3600


def _downloaded(path: Path, symbol: str) -> Path:
    """A file in the columns ``tradefleet funding-history`` writes."""
    rows = ["timestamp,fundingRate,exchange,symbol"]
    for i in range(4):
        ts = T0 + i * EIGHT_H
        iso = f"2024-01-01T{(ts - T0) // 3600:02d}:00:00Z" if i < 3 else "2024-01-02T00:00:00Z"
        rows.append(f"{iso},0.0001,bybit,{symbol}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_history_naming_another_symbol_is_refused_naming_the_field_and_the_symbol(
    tmp_path: Path,
) -> None:
    eth = _downloaded(tmp_path / "eth-funding.csv", "ETH/USDT:USDT")
    with pytest.raises(DataError) as refused:
        PaperBroker(PaperBrokerParams(funding_history={"BTC/USDT:USDT": str(eth)}))
    message = str(refused.value)
    assert "funding_history.BTC/USDT:USDT" in message
    assert "ETH/USDT:USDT" in message


def test_a_history_of_the_same_market_in_either_naming_is_still_taken(tmp_path: Path) -> None:
    """The fix must not refuse the venue's id for ccxt's name of the same market."""
    btc = _downloaded(tmp_path / "btc-funding.csv", "BTC/USDT:USDT")
    PaperBroker(PaperBrokerParams(funding_history={"BTC/USDT:USDT": str(btc)}))
    PaperBroker(PaperBrokerParams(funding_history={"BTCUSDT": str(btc)}))


# A bot may name its market by the venue's own id (its csv data named as the venue names it),
# and ``tradefleet funding-history`` writes ccxt's unified symbol on every row whichever it was
# given. Before, names compared as base and quote with separators dropped: the venue's id of
# the bot's own perpetual was refused, and the settlement currency was dropped, so an inverse
# perpetual's history was paid to its linear neighbour.


def _rows_of(path: Path, exchange: str, unified: str) -> Path:
    rows = ["timestamp,fundingRate,exchange,symbol"]
    rows += [f"{T0 + i * EIGHT_H},0.0001,{exchange},{unified}" for i in range(4)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("exchange", "venue_id", "unified"),
    [
        ("okx", "BTC-USDT-SWAP", "BTC/USDT:USDT"),  # OKX's instId of its BTC perpetual
        ("krakenfutures", "PF_XBTUSD", "BTC/USD:USD"),  # Kraken: XBT, and the PF_ prefix
        ("binancecoinm", "BTCUSD_PERP", "BTC/USD:BTC"),  # Binance COIN-M's perpetual
    ],
)
def test_the_history_of_the_bots_own_market_named_by_the_venues_id_is_taken(
    tmp_path: Path, exchange: str, venue_id: str, unified: str
) -> None:
    history = _rows_of(tmp_path / "funding.csv", exchange, unified)
    PaperBroker(PaperBrokerParams(funding_history={venue_id: str(history)}))


def test_an_inverse_perpetuals_history_is_refused_for_the_linear_one(tmp_path: Path) -> None:
    inverse = _rows_of(tmp_path / "pi-xbtusd.csv", "krakenfutures", "BTC/USD:BTC")
    with pytest.raises(DataError) as refused:
        PaperBroker(PaperBrokerParams(funding_history={"BTC/USD:USD": str(inverse)}))
    message = str(refused.value)
    assert "funding_history.BTC/USD:USD" in message
    assert str(inverse) in message
    assert "funding history of BTC/USD:BTC, not BTC/USD:USD" in message


@pytest.mark.parametrize(
    ("rows", "key"),
    [
        ("ETH/USDT:USDT", "BTC-USDT-SWAP"),  # another base than the id holds
        ("BTC/USDT:USDT", "PF_XBTUSD"),  # the id's quote is USD, not USDT
        ("BTC/USDT:USDT", "USDTBTC"),  # the quote before the base
        ("BTC/USDT:USDT", "BTC/USDT:USDT-240628"),  # a dated future, not the perpetual
        ("BTC/USDT:USDT", "ETH/USDT"),
        ("BTCUSDT", "ETH-USDT"),  # two venue ids
    ],
)
def test_names_of_two_markets_are_told_apart(rows: str, key: str) -> None:
    assert other_market(_history(rows), key) == rows


@pytest.mark.parametrize(
    ("rows", "key"),
    [
        ("BTC/USDT:USDT", "BTC/USDT"),  # a settlement named on one side only
        ("BTC/USD:BTC", "XBT/USD:BTC"),  # Kraken's alias in a unified name
        ("XBTUSD", "BTC/USD"),  # the alias either way round
        ("DOGE/USD", "XDGUSD"),  # Kraken spot's DOGE
        ("BTC-USDT", "btc_usdt"),  # two venue ids: letters and digits, any case
        ("1000PEPE/USDT:USDT", "1000PEPEUSDT"),
    ],
)
def test_names_of_one_market_are_taken(rows: str, key: str) -> None:
    assert other_market(_history(rows), key) is None


def _history(symbol: str) -> FundingHistory:
    times = np.array([T0, T0 + EIGHT_H], dtype=np.int64)
    rates = np.array([0.0001, 0.0001], dtype=np.float64)
    return FundingHistory("funding.csv", times, rates, frozenset({symbol}))


# A venue id is compared by whole parts: ``USD`` is only the start of ``BTCUSDT``'s quote. A
# substring test took the coin-margined ``BTC/USD:BTC`` history for Binance USDⓈ-M's
# ``BTCUSDT``.
def _named_history(symbol: str):  # type: ignore[no-untyped-def]
    lines = [
        "symbol,calc_time,last_funding_rate",
        f"{symbol},1700000000000,0.0001",
        f"{symbol},1700028800000,0.0001",
    ]
    return parse_funding_history(lines, "funding.csv")


@pytest.mark.parametrize("file_market", ["BTC/USD:BTC", "BTC/USD:USD"])
def test_a_usdt_perpetual_named_by_its_id_refuses_another_quotes_history(file_market: str) -> None:
    assert other_market(_named_history(file_market), "BTCUSDT") == file_market


def test_a_usdt_perpetuals_own_history_is_taken_by_its_id() -> None:
    assert other_market(_named_history("BTC/USDT:USDT"), "BTCUSDT") is None


# Contract ids with a suffix after the quote (KuCoin's "M"), and ids naming no quote at all
# (Deribit's): the whole-parts rule first refused KuCoin's own file.
def _histories_of(named: str) -> FundingHistory:
    times = np.array([1_704_067_200, 1_704_067_200 + 28_800], dtype=np.int64)
    rates = np.array([0.0001, 0.0001], dtype=np.float64)
    return FundingHistory("funding.csv", times, rates, frozenset({named}))


@pytest.mark.parametrize(
    ("venue_id", "unified"),
    [
        ("XBTUSDTM", "BTC/USDT:USDT"),  # KuCoin futures, USDT-margined perpetual
        ("ETHUSDTM", "ETH/USDT:USDT"),
    ],
)
def test_a_venue_id_with_a_suffix_after_its_quote_may_name_the_market(
    venue_id: str, unified: str
) -> None:
    assert other_market(_histories_of(unified), venue_id) is None


@pytest.mark.parametrize("venue_id", ["BTC-PERPETUAL"])  # Deribit's BTC inverse perpetual
def test_a_venue_id_naming_no_quote_is_not_surely_another_market(venue_id: str) -> None:
    assert other_market(_histories_of("BTC/USD:BTC"), venue_id) is None
