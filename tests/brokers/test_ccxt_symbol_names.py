"""The bot's symbols as the ccxt broker resolves them at connect, against the fake venues.

A symbol is a market's ccxt symbol (``BTC/USDT``) or the venue's id for it (``BTCUSDT``), so one
market has two names. Two of the bot's symbols naming one market would split it: orders booked
under one name, their fills coming back under the other, a position in each, and a rule that
reads positions (no pyramiding, exposure caps) blind to one of them. It is refused at connect,
naming both fields. A symbol the venue does not list is refused the same clean way (a
PluginError the runtime reports without a traceback), naming its field and what the venue has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.venues.binance.server import FakeBinance
from tests.venues.bybit.server import FakeBybit
from tests.venues.kraken.server import FakeKraken
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams, MarketType
from tradefleet_runtime.errors import PluginError
from tradefleet_runtime.sdk import BrokerContext
from tradefleet_runtime.spec.model import Mode

# Each verified venue's fake: how to start it, the broker's params, the capital's currency.
_Venue = tuple[Callable[[], Any], Callable[[str], CcxtBrokerParams], str]
VENUES: dict[str, _Venue] = {
    "binance": (
        FakeBinance,
        lambda url: CcxtBrokerParams(exchange="binance", api_url=url, poll_interval_s=0.05),
        "USDT",
    ),
    "bybit": (
        FakeBybit,
        lambda url: CcxtBrokerParams(
            exchange="bybit", market_type=MarketType.LINEAR, api_url=url, poll_interval_s=0.05
        ),
        "USDT",
    ),
    "kraken": (
        FakeKraken,
        lambda url: CcxtBrokerParams(
            exchange="kraken", api_url=url, poll_interval_s=0.05, rate_limit_ms=10
        ),
        "USD",
    ),
}


@contextmanager
def _venue(name: str, tmp_path: Path) -> Iterator[Callable[..., CcxtBroker]]:
    """The fake venue started, and a function connecting a new broker there to the given
    symbols (it raises what connect raises, the broker closed)."""
    start, params, currency = VENUES[name]
    fake = start().start()
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "apiKey").write_text(fake.api_key)
    (credentials / "secret").write_text(fake.secret)
    brokers: list[CcxtBroker] = []

    def connect(*symbols: str) -> CcxtBroker:
        broker = CcxtBroker(params(fake.url))
        brokers.append(broker)
        try:
            broker.connect(BrokerContext("names", Mode.LIVE, symbols, currency, 100.0, credentials))
        except BaseException:
            # A refused connect leaves nothing open.
            assert not broker.is_connected()
            raise
        return broker

    try:
        yield connect
    finally:
        for broker in brokers:
            broker.close()
        fake.stop()


@pytest.mark.parametrize(
    ("venue", "symbols", "refusal"),
    [
        (
            "binance",
            ("BTC/USDT", "BTCUSDT"),
            r"spec\.market\.symbols\[1\]: BTCUSDT is the same binance market as "
            r"spec\.market\.symbols\[0\] \(BTC/USDT\); list it once",
        ),
        (
            "bybit",
            ("BTCUSDT", "ETH/USDT:USDT", "BTC/USDT:USDT"),
            r"spec\.market\.symbols\[2\]: BTC/USDT:USDT is the same bybit market as "
            r"spec\.market\.symbols\[0\] \(BTCUSDT\); list it once",
        ),
        (
            "kraken",
            ("XXBTZUSD", "BTC/USD"),
            r"spec\.market\.symbols\[1\]: BTC/USD is the same kraken market as "
            r"spec\.market\.symbols\[0\] \(XXBTZUSD\); list it once",
        ),
    ],
)
def test_two_names_of_one_market_are_refused_naming_both_fields(
    tmp_path: Path, venue: str, symbols: tuple[str, ...], refusal: str
) -> None:
    with _venue(venue, tmp_path) as connect:
        with pytest.raises(PluginError, match=refusal):
            connect(*symbols)
        # Each name alone is the market it names: a bot listing it once connects.
        broker = connect(*symbols[1:])
        assert broker.is_connected()
        assert [broker.instrument(s).symbol for s in symbols[1:]] == list(symbols[1:])


@pytest.mark.parametrize(
    ("venue", "symbols", "refusal"),
    [
        # Not listed: the venue's markets are shown.
        (
            "binance",
            ("BTC/USDT", "DOGE/USDT"),
            r"^spec\.market\.symbols\[1\]: DOGE/USDT is not a spot market of binance "
            r"\(spec\.broker\.params\.market_type is spot\); it lists 4: BNB/USDT, BTC/USDT, "
            r"ETH/BTC, ETH/USDT$",
        ),
        # Those of the same base coin first.
        (
            "binance",
            ("ETH/DOGE",),
            r"^spec\.market\.symbols\[0\]: ETH/DOGE .*; it lists 4: ETH/BTC, ETH/USDT, ",
        ),
        # Listed but spelled otherwise: the venue's spelling is suggested.
        (
            "binance",
            ("btc/usdt",),
            r"^spec\.market\.symbols\[0\]: btc/usdt is not a spot market of binance; "
            r"did you mean BTC/USDT\?",
        ),
        ("binance", ("ETH/USDT", "ethusdt"), r"^spec\.market\.symbols\[1\]: .* mean ETH/USDT\?"),
        # A linear contract's ccxt symbol carries its settle currency.
        (
            "bybit",
            ("BTC/USDT",),
            r"^spec\.market\.symbols\[0\]: BTC/USDT is not a linear market of bybit; "
            r"did you mean BTC/USDT:USDT\?",
        ),
        ("kraken", ("btc/usd",), r"^spec\.market\.symbols\[0\]: .* did you mean BTC/USD\?"),
    ],
)
def test_a_symbol_the_venue_does_not_list_is_refused_naming_its_field(
    tmp_path: Path, venue: str, symbols: tuple[str, ...], refusal: str
) -> None:
    with _venue(venue, tmp_path) as connect, pytest.raises(PluginError, match=refusal):
        connect(*symbols)


def test_a_contract_name_on_a_spot_broker_is_not_matched_to_the_spot_market(
    tmp_path: Path,
) -> None:
    """``BTC/USDT:USDT`` is a perpetual: pointing a spot bot at ``BTC/USDT`` instead would
    trade another product, so no spelling is suggested; the field and the market type are
    named."""
    with _venue("binance", tmp_path) as connect, pytest.raises(PluginError) as refused:
        connect("BTC/USDT:USDT")
    message = str(refused.value)
    assert message.startswith("spec.market.symbols[0]: BTC/USDT:USDT is not a spot market")
    assert "spec.broker.params.market_type is spot" in message
    assert "did you mean" not in message
