"""A live bot's first run is refused when its capital is more than the venue account holds in
the capital's currency: sizing on money the account does not have multiplies every trade's
risk, and two bots claiming the same money find their orders refused. Spot counts the quote
currency and the bot's coins at their last price; linear futures the settle currency. A
restart (its equity has moved since) is never refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.venues.binance.server import FakeBinance
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams, MarketType
from tradefleet_runtime.errors import PluginError
from tradefleet_runtime.sdk import BrokerContext

KEY = "capitalTestKey000000000000000000000000000000000000000000000000001"
SECRET = "capitalTestSecret0000000000000000000000000000000000000000000001"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    venue = FakeBinance(default_account=False).start()
    venue.api_key, venue.secret = KEY, SECRET
    try:
        yield venue
    finally:
        venue.stop()


def _credentials(folder: Path) -> Path:
    (folder / "apiKey").write_text(KEY)
    (folder / "secret").write_text(SECRET)
    return folder


def _connect(
    fake: FakeBinance,
    folder: Path,
    symbols: tuple[str, ...],
    capital: float,
    *,
    linear: bool = False,
    first_run: bool = True,
) -> CcxtBroker:
    params = (
        CcxtBrokerParams(exchange="binanceusdm", market_type=MarketType.LINEAR, api_url=fake.url)
        if linear
        else CcxtBrokerParams(exchange="binance", api_url=fake.url)
    )
    broker = CcxtBroker(params)
    context = BrokerContext(
        "b", "live", symbols, "USDT", capital, _credentials(folder), first_run=first_run
    )
    broker.connect(context)
    return broker


def _refused(
    fake: FakeBinance, folder: Path, symbols: tuple[str, ...], capital: float, **kw: bool
) -> PluginError:
    broker = None
    with pytest.raises(PluginError) as raised:
        broker = _connect(fake, folder, symbols, capital, **kw)
    assert broker is None
    return raised.value


def test_spot_capital_above_the_quote_and_coins_is_refused_naming_both_figures(
    fake: FakeBinance, tmp_path: Path
) -> None:
    fake.add_account(KEY, SECRET, spot={"USDT": 6_000, "BTC": "0.1", "ETH": 1})
    fake.set_price("BTCUSDT", 40_000)
    fake.set_price("ETHUSDT", 2_000)
    # 6,000 + 0.1 × 40,000 + 1 × 2,000 = 12,000 USDT
    error = _refused(fake, tmp_path, ("BTC/USDT", "ETH/USDT"), 100_000)
    assert str(error).startswith(
        "spec.capital.initial: 100,000 USDT is more than the account holds (12,000 USDT)"
    )
    assert "lower spec.capital.initial" in str(error)
    assert "/api/v3/order" not in [r.path for r in fake.requests]


def test_spot_capital_covered_only_with_the_coins_connects(
    fake: FakeBinance, tmp_path: Path
) -> None:
    fake.add_account(KEY, SECRET, spot={"USDT": 6_000, "BTC": "0.1"})
    fake.set_price("BTCUSDT", 40_000)
    # 6,000 USDT and 0.1 BTC at 40,000: the coins count at their last price.
    broker = _connect(fake, tmp_path, ("BTC/USDT",), 10_000)
    try:
        assert broker.is_connected()
    finally:
        broker.close()
    # Within the rounding tolerance (0.5 %): 10,040 on 10,000 connects; 10,100 does not.
    broker = _connect(fake, tmp_path, ("BTC/USDT",), 10_040)
    broker.close()
    error = _refused(fake, tmp_path, ("BTC/USDT",), 10_100)
    assert "10,100 USDT is more than the account holds (10,000 USDT)" in str(error)


def test_a_second_bot_claiming_money_another_spent_is_refused(
    fake: FakeBinance, tmp_path: Path
) -> None:
    """12,000 USDT held, a first bot spent 7,500 of it: a second bot claiming 10,000 is
    refused at its start, not at its first order."""
    fake.add_account(KEY, SECRET, spot={"USDT": 4_500})
    error = _refused(fake, tmp_path, ("BTC/USDT",), 10_000)
    assert "10,000 USDT is more than the account holds (4,500 USDT)" in str(error)


def test_linear_capital_above_the_settle_balance_is_refused_and_below_connects(
    fake: FakeBinance, tmp_path: Path
) -> None:
    fake.add_account(KEY, SECRET, spot={"USDT": 1_000_000}, futures={"USDT": 10_000})
    error = _refused(fake, tmp_path, ("BTC/USDT:USDT",), 100_000, linear=True)
    assert str(error).startswith(
        "spec.capital.initial: 100,000 USDT is more than the account holds (10,000 USDT)"
    )
    # Refused before anything was set at the venue.
    assert "/fapi/v1/leverage" not in [r.path for r in fake.requests]
    broker = _connect(fake, tmp_path, ("BTC/USDT:USDT",), 10_000, linear=True)
    try:
        assert broker.is_connected()
    finally:
        broker.close()


def test_a_restart_is_never_refused_whatever_the_account_holds(
    fake: FakeBinance, tmp_path: Path
) -> None:
    fake.add_account(KEY, SECRET, spot={"USDT": 1_000}, futures={"USDT": 1_000})
    for linear, symbol in ((False, "BTC/USDT"), (True, "BTC/USDT:USDT")):
        broker = _connect(fake, tmp_path, (symbol,), 100_000, linear=linear, first_run=False)
        try:
            assert broker.is_connected()
        finally:
            broker.close()
