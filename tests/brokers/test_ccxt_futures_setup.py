"""Linear futures: position mode checked, margin mode and leverage set before the first order;
a hedge-mode account is refused with an error saying so. And what the plugin declares."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.brokers.harness import SYMBOL, VenueHarness
from tests.venues.bybit.server import FakeBybit
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams, MarketType
from tradefleet_runtime.plugins.registry import BUILTIN_MODULE, PluginRegistry
from tradefleet_runtime.sdk import BrokerContext, Capability, PluginKind


def test_binance_usdm_margin_mode_and_leverage_are_set_at_connect(tmp_path: Path) -> None:
    harness = VenueHarness("binance-usdm", tmp_path, leverage=7, margin_mode="isolated")
    try:
        account = harness.fake.account()
        assert account.leverage[SYMBOL] == 7
        assert account.margin_type[SYMBOL] == "ISOLATED"
        paths = [r.path for r in harness.fake.requests]
        assert paths.index("/fapi/v1/positionSide/dual") < paths.index("/fapi/v1/leverage")
        assert "/fapi/v1/order" not in paths  # nothing traded to get there
        # What risk plugins are told (``knows-leverage``): the leverage the bot set.
        assert harness.broker.account_leverage() == 7.0
    finally:
        harness.close()


def test_bybit_leverage_is_set_and_a_second_connect_is_no_error(tmp_path: Path) -> None:
    harness = VenueHarness("bybit", tmp_path, leverage=5)
    try:
        assert harness.fake.account().leverage[SYMBOL] == 5
        harness.restart()  # "leverage not modified" (110043) is not a failure
        assert harness.broker.is_connected()
    finally:
        harness.close()


def test_a_hedge_mode_account_is_refused_naming_the_mode(tmp_path: Path) -> None:
    fake = FakeBybit().start()
    try:
        fake.account().position_mode[SYMBOL] = 3  # both sides (hedge mode)
        (tmp_path / "apiKey").write_text(fake.api_key)
        (tmp_path / "secret").write_text(fake.secret)
        broker = CcxtBroker(
            CcxtBrokerParams(exchange="bybit", market_type=MarketType.LINEAR, api_url=fake.url)
        )
        with pytest.raises(ValueError, match=r"hedge .*one-way"):
            broker.connect(BrokerContext("b", "live", (SYMBOL,), "USDT", 1e4, tmp_path))
        broker.close()
    finally:
        fake.stop()


def test_the_plugin_serves_live_only_and_declares_venue_execution() -> None:
    registry = PluginRegistry.from_modules(__import__(BUILTIN_MODULE, fromlist=["x"]))
    spec = registry.get(PluginKind.BROKER, "ccxt").spec
    assert spec.modes == frozenset({"live"})
    assert Capability.VENUE_EXECUTION in spec.capabilities


def test_futures_params_are_refused_for_spot_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="leverage: only for market_type 'linear'"):
        CcxtBrokerParams(exchange="binance", leverage=3)
    with pytest.raises(ValidationError, match="exchange"):
        CcxtBrokerParams(exchange="Bin ance")
