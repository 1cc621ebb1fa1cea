"""A funding history whose rows name another market than the symbol it is given for is refused,
naming the param and both markets; the same market in another spelling is taken.

``tradefleet funding-history`` writes the exchange and symbol on every row. The paper broker
ignored the column: ETH's history given to BTC (a copied path) was paid at ETH's rates, and a
backtest's funding line was wrong with nothing said (-132.16 USDT in the case that found it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tradefleet_plugins.brokers.paper import PaperBroker
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
