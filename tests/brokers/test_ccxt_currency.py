"""A market priced in another currency than the bot's capital is refused at connect, naming
the symbol's field: the runtime would book its profit (BTC for ETH/BTC, USDT for a USDT-settled
contract) as if it were the capital's currency, and its risk rules would decide on that."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.venues.binance.server import FakeBinance
from tests.venues.bybit.server import FakeBybit
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams, MarketType
from tradefleet_runtime.errors import PluginError
from tradefleet_runtime.sdk import BrokerContext


def _credentials(tmp_path: Path, api_key: str, secret: str) -> Path:
    (tmp_path / "apiKey").write_text(api_key)
    (tmp_path / "secret").write_text(secret)
    return tmp_path


def test_a_spot_market_quoted_in_another_coin_is_refused_naming_the_symbol(
    tmp_path: Path,
) -> None:
    fake = FakeBinance().start()
    try:
        broker = CcxtBroker(CcxtBrokerParams(exchange="binance", api_url=fake.url))
        context = BrokerContext(
            "b",
            "live",
            ("BTC/USDT", "ETH/BTC"),
            "USDT",
            1e4,
            _credentials(tmp_path, fake.api_key, fake.secret),
        )
        with pytest.raises(PluginError, match=r"spec\.market\.symbols\[1\]: ETH/BTC .* in BTC"):
            broker.connect(context)
        assert not broker.is_connected()
        assert "/api/v3/order" not in [r.path for r in fake.requests]
        # The same account with every market in the capital's currency connects.
        broker = CcxtBroker(CcxtBrokerParams(exchange="binance", api_url=fake.url))
        broker.connect(BrokerContext("b", "live", ("BTC/USDT", "ETH/USDT"), "USDT", 1e4, tmp_path))
        assert broker.is_connected()
        broker.close()
    finally:
        fake.stop()


def test_a_contract_settled_in_another_currency_is_refused_naming_the_capital(
    tmp_path: Path,
) -> None:
    fake = FakeBybit().start()
    try:
        broker = CcxtBroker(
            CcxtBrokerParams(exchange="bybit", market_type=MarketType.LINEAR, api_url=fake.url)
        )
        context = BrokerContext(
            "b",
            "live",
            ("BTC/USDT:USDT",),
            "USD",
            1e4,
            _credentials(tmp_path, fake.api_key, fake.secret),
        )
        with pytest.raises(PluginError, match=r"spec\.capital\.currency to USDT"):
            broker.connect(context)
        assert not broker.is_connected()
    finally:
        fake.stop()
