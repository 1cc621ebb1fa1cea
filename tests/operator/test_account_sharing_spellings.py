"""One venue account and one instrument, however a TradingBot writes them: the account key reads
the ccxt params as the broker and ccxt do (``options.defaultType`` moves no order; ``sandbox`` is
a lax pydantic bool), and a dated future's ccxt symbol and venue id are one contract. Each was a
missed share (two bots netting one position, admitted) or a false refusal before."""

from __future__ import annotations

from typing import Any

import ccxt
import kopf
import pytest

from tests.operator.test_account_sharing import account, bot, key_of
from tradefleet_operator import admission
from tradefleet_operator.account_sharing import shared_symbols, venue_symbol
from tradefleet_operator.bot_api import TradingBot
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.plugins.registry import PluginRegistry

USDM = {"exchange": "binanceusdm", "market_type": "linear"}

#: Binance's exchangeInfo rows, as ccxt parses them (only what ``parse_market`` reads).
_SPOT_ROW = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "quoteAssetPrecision": 8,
    "isSpotTradingAllowed": True,
    "isMarginTradingAllowed": True,
    "filters": [],
    "orderTypes": ["LIMIT"],
    "permissions": ["SPOT"],
    "permissionSets": [["SPOT"]],
}
_USDM_ROW = {
    "symbol": "BTCUSDT",
    "pair": "BTCUSDT",
    "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000,
    "onboardDate": 1,
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "pricePrecision": 1,
    "quantityPrecision": 3,
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "underlyingType": "COIN",
    "filters": [],
    "orderTypes": ["LIMIT"],
    "timeInForce": ["GTC"],
}
_DATED_ROW = {
    **_USDM_ROW,
    "symbol": "BTCUSDT_250328",
    "contractType": "CURRENT_QUARTER",
    "deliveryDate": 1743148800000,
}

#: The order endpoints of ccxt's Binance classes: spot, spot margin, USDⓈ-M, portfolio margin.
_ENDPOINTS = ("privatePostOrder", "sapiPostMarginOrder", "fapiPrivatePostOrder", "papiPostUmOrder")


def _endpoint_of_an_order(klass: Any, row: dict[str, Any], options: dict[str, Any]) -> str:
    """The endpoint ccxt sends a limit order on ``row``'s market to, offline."""
    exchange = klass({"apiKey": "k", "secret": "s", "options": options})
    for pairs in ("crossMarginPairsData", "isolatedMarginPairsData"):  # spot's parse_market
        exchange.options.setdefault(pairs, [])
    market = exchange.parse_market(row)
    exchange.set_markets([market])
    called: list[str] = []

    def recorder(name: str) -> Any:
        def endpoint(request: dict[str, Any], *_: Any) -> dict[str, Any]:
            called.append(name)
            return {}

        return endpoint

    for name in _ENDPOINTS:
        setattr(exchange, name, recorder(name))
    exchange.create_order(market["symbol"], "limit", "buy", 1, 100)
    (endpoint,) = called
    return endpoint


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return admission.default_registry()


# --- options.defaultType ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("klass", "row", "endpoint"),
    [
        (ccxt.binance, _SPOT_ROW, "privatePostOrder"),
        (ccxt.binanceusdm, _USDM_ROW, "fapiPrivatePostOrder"),
    ],
)
def test_ccxt_sends_an_order_to_its_markets_wallet_whatever_default_type(
    klass: Any, row: dict[str, Any], endpoint: str
) -> None:
    """Why the key leaves ``options.defaultType`` out: the wallet follows the market (only the
    market type's markets loaded, as the broker loads them: ``ccxt_venue``'s fetchMarkets)."""
    for default_type in (None, "spot", "margin", "future", "delivery"):
        options = {} if default_type is None else {"defaultType": default_type}
        assert _endpoint_of_an_order(klass, row, options) == endpoint, default_type
    if klass is ccxt.binance:
        # Binance's legacy ``swap`` reads a spot symbol as its perpetual, which is not loaded:
        # the order fails, it reaches no other wallet.
        with pytest.raises(ccxt.BadSymbol):
            _endpoint_of_an_order(klass, row, {"defaultType": "swap"})
    else:
        assert _endpoint_of_an_order(klass, row, {"defaultType": "swap"}) == endpoint


def test_a_default_type_written_out_is_the_same_wallet_and_a_share() -> None:
    # binanceusdm: ``future`` and ``swap`` both name the USDⓈ-M wallet.
    alpha = bot("alpha", ["BTC/USDT:USDT"], params=USDM)
    beta = bot("beta", ["BTCUSDT"], params={**USDM, "options": {"defaultType": "future"}})
    assert key_of(alpha) == key_of(beta)
    assert [s.other for s in shared_symbols(account(beta), [account(alpha)])] == ["alpha"]
    # Binance spot: ``margin`` does not move a spot market's order to the margin wallet.
    margin = {"exchange": "binance", "options": {"defaultType": "margin"}}
    gamma, delta = bot("gamma", ["BTC/USDT"]), bot("delta", ["BTC/USDT"], params=margin)
    assert key_of(gamma) == key_of(delta)
    assert [s.other for s in shared_symbols(account(delta), [account(gamma)])] == ["gamma"]


# --- sandbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize("written", [True, "true", "True", "yes", "on", "1", 1, "false", "no", 0])
def test_sandbox_is_keyed_as_the_brokers_params_read_it(written: object) -> None:
    params = {"exchange": "binance", "sandbox": written}
    testnet = CcxtBrokerParams.model_validate(params).sandbox
    plain = {"exchange": "binance", "sandbox": testnet}
    assert key_of(bot("a", ["BTC/USDT"], params=params)) == key_of(
        bot("b", ["ETH/USDT"], params=plain)
    )


def test_a_testnet_written_as_a_string_is_not_refused_for_a_production_bot(
    registry: PluginRegistry,
) -> None:
    testnet = bot("testnet", ["BTC/USDT"], params={"exchange": "binance", "sandbox": "true"})
    assert admission.validate_trading_bot(testnet, registry) == []  # the broker accepts it
    prod = [account(bot("prod", ["BTC/USDT"]))]
    admission.admit(testnet, registry, None, prod)  # another venue's account: not refused
    # Beside a testnet bot written with a real bool, it is the same testnet account: refused.
    other = [account(bot("other", ["BTC/USDT"], params={"exchange": "binance", "sandbox": True}))]
    with pytest.raises(kopf.AdmissionError, match="TradingBot 'other'"):
        admission.admit(testnet, registry, None, other)


def test_a_sandbox_the_broker_refuses_is_neither_production_nor_the_testnet() -> None:
    with pytest.raises(ValueError, match="sandbox"):
        CcxtBrokerParams.model_validate({"exchange": "binance", "sandbox": "maybe"})
    odd = key_of(bot("a", ["BTC/USDT"], params={"exchange": "binance", "sandbox": "maybe"}))
    assert odd is not None and ("sandbox", "unreadable") in odd.selectors
    for sandbox in (False, True):
        params = {"exchange": "binance", "sandbox": sandbox}
        assert odd != key_of(bot("b", ["BTC/USDT"], params=params))


# --- dated futures ---------------------------------------------------------------------------


def test_a_dated_future_by_ccxt_symbol_and_by_venue_id_is_one_instrument() -> None:
    exchange = ccxt.binanceusdm()
    perpetual, dated = exchange.parse_market(_USDM_ROW), exchange.parse_market(_DATED_ROW)
    assert (dated["symbol"], dated["id"]) == ("BTC/USDT:USDT-250328", "BTCUSDT_250328")
    spec = TradingBot.parse(bot("a", ["BTCUSDT"], params=USDM)).spec
    for market in (perpetual, dated):  # the broker finds each by either name
        assert venue_symbol(spec, market["symbol"]) == venue_symbol(spec, market["id"])
    assert venue_symbol(spec, dated["id"]) != venue_symbol(spec, perpetual["id"])
    alpha = account(bot("alpha", ["BTC/USDT:USDT-250328"], params=USDM))
    beta = account(bot("beta", ["ETHUSDT", "BTCUSDT_250328"], params=USDM))
    (share,) = shared_symbols(beta, [alpha])
    assert (share.index, share.other, share.other_symbol) == (1, "alpha", "BTC/USDT:USDT-250328")
    assert shared_symbols(account(bot("gamma", ["BTCUSDT"], params=USDM)), [alpha]) == []
