"""``ccxt_orders.coin_fee_rate``: the share of a buy the venue keeps in the coin bought, known
before the buy fills, which the engine counts when it checks a bracket's children against the
venue's minimums (``instruments.bracket_problem``). Only the ccxt broker answers it
(``instruments.CoinFees``); the paper and MT5 brokers' fees leave a buy whole.
"""

from __future__ import annotations

from typing import Any

import pytest

from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_orders import BINANCE_SPOT_WORST_TAKER, Dialect, coin_fee_rate
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_runtime.instruments import CoinFees


@pytest.mark.parametrize("taker", [0.001, 0.00075, 0.0])
def test_binance_spot_counts_the_markets_taker_rate(taker: float) -> None:
    assert coin_fee_rate(Dialect.BINANCE_SPOT, {"taker": taker}) == (taker, True)


@pytest.mark.parametrize("taker", [None, "0.001", float("nan"), -0.001, 1.0, True])
def test_binance_spot_assumes_its_worst_documented_rate_when_the_market_does_not_say(
    taker: Any,
) -> None:
    market = {} if taker is None else {"taker": taker}
    assert coin_fee_rate(Dialect.BINANCE_SPOT, market) == (BINANCE_SPOT_WORST_TAKER, False)
    assert BINANCE_SPOT_WORST_TAKER == 0.001  # VIP 0, the highest spot rate Binance charges


@pytest.mark.parametrize("dialect", [Dialect.KRAKEN, Dialect.BINANCE_USDM, Dialect.BYBIT])
def test_other_venues_take_no_fee_in_the_coin_bought(dialect: Dialect) -> None:
    """Kraken spot takes a buy's fee in the quote (``fciq``), the perpetuals in USDT."""
    assert coin_fee_rate(dialect, {"taker": 0.0026}) == (0.0, True)


def test_only_the_ccxt_broker_tells_the_engine_a_coin_fee() -> None:
    assert issubclass(CcxtBroker, CoinFees)
    assert not issubclass(PaperBroker, CoinFees)
    assert not issubclass(Mt5Broker, CoinFees)
