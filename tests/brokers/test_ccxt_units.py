"""The ccxt broker's pure parts: error classification, backoff, order arguments, fees, ids,
and the credential files (no venue)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradefleet_plugins.brokers.ccxt_credentials import (
    CredentialFiles,
    CredentialsError,
    read_credentials,
)
from tradefleet_plugins.brokers.ccxt_errors import (
    Retry,
    backoff_s,
    classify,
    retry_after_s,
    wait_s,
)
from tradefleet_plugins.brokers.ccxt_orders import (
    CreateArgs,
    Dialect,
    FillRules,
    Refusal,
    bot_client_id,
    client_id_problem,
    conversion_pair,
    create_args,
    dialect_for,
    fee_in,
    rate_at,
    status_of,
    target_reached,
    third_coin_fee,
    venue_client_id,
)
from tradefleet_plugins.brokers.ccxt_params import (
    VERIFIED_VENUES,
    CcxtBrokerParams,
    MarketType,
    venue_refusal,
)
from tradefleet_runtime.order_ids import new_identity
from tradefleet_runtime.sdk import (
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
    bot_prefix,
    bracket_children,
    child_order_id,
    client_order_id,
)

NET = ["RequestTimeout", "NetworkError", "OperationFailed", "BaseError", "Exception"]
INVALID = ["InvalidOrder", "ExchangeError", "BaseError", "Exception"]


@pytest.mark.parametrize(
    ("names", "message", "status", "code", "retry"),
    [
        (
            NET,
            "binance POST http://x/api/v3/order",
            None,
            ReasonCode.VENUE_UNAVAILABLE,
            Retry.IN_DOUBT,
        ),
        (
            ["ExchangeNotAvailable", *NET[1:]],
            "503 Service Unavailable",
            503,
            ReasonCode.VENUE_UNAVAILABLE,
            Retry.IN_DOUBT,
        ),
        (
            ["DDoSProtection", *NET[1:]],
            'binance 429 {"code":-1003,"msg":"Too much"}',
            429,
            ReasonCode.RATE_LIMITED,
            Retry.SAFE,
        ),
        (
            ["RateLimitExceeded", *NET[1:]],
            '{"retCode":10006,"retMsg":"Too many visits!"}',
            200,
            ReasonCode.RATE_LIMITED,
            Retry.SAFE,
        ),
        (
            ["InvalidNonce", *NET[1:]],
            '{"code":-1021,"msg":"Timestamp outside"}',
            400,
            ReasonCode.VENUE_REJECTED,
            Retry.RESYNC_CLOCK,
        ),
        (
            INVALID,
            'binance {"code":-2010,"msg":"Duplicate order sent."}',
            400,
            ReasonCode.DUPLICATE_CLIENT_ID,
            Retry.NEVER,
        ),
        (
            INVALID,
            'binance {"code":-2010,"msg":"Account has insufficient balance for requested action."}',
            400,
            ReasonCode.INSUFFICIENT_FUNDS,
            Retry.NEVER,
        ),
        (
            INVALID,
            'binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}',
            400,
            ReasonCode.BELOW_MIN_NOTIONAL,
            Retry.NEVER,
        ),
        (
            INVALID,
            'binance {"code":-1013,"msg":"Filter failure: PRICE_FILTER"}',
            400,
            ReasonCode.INVALID_PRICE,
            Retry.NEVER,
        ),
        (
            INVALID,
            '{"code":-4164,"msg":"notional"}',
            400,
            ReasonCode.BELOW_MIN_NOTIONAL,
            Retry.NEVER,
        ),
        (
            INVALID,
            '{"code":-4116,"msg":"ClientOrderId is duplicated."}',
            400,
            ReasonCode.DUPLICATE_CLIENT_ID,
            Retry.NEVER,
        ),
        (
            ["InsufficientFunds", "ExchangeError"],
            '{"retCode":110007,"retMsg":"ab not enough"}',
            200,
            ReasonCode.INSUFFICIENT_FUNDS,
            Retry.NEVER,
        ),
        (
            INVALID,
            '{"retCode":110072,"retMsg":"OrderLinkedID is duplicate"}',
            200,
            ReasonCode.DUPLICATE_CLIENT_ID,
            Retry.NEVER,
        ),
        (
            ["DDoSProtection", *NET[1:]],
            'binance {"code":-2015,"msg":"Invalid API-key"}',
            400,
            ReasonCode.AUTHENTICATION,
            Retry.NEVER,
        ),
        (
            ["AuthenticationError", "ExchangeError"],
            "bybit key",
            None,
            ReasonCode.AUTHENTICATION,
            Retry.NEVER,
        ),
        (
            ["OrderNotFound", *INVALID],
            '{"code":-2013,"msg":"Order does not exist."}',
            400,
            ReasonCode.UNKNOWN_ORDER,
            Retry.NEVER,
        ),
        (["ExchangeError", "BaseError"], "unexpected", 404, ReasonCode.VENUE_REJECTED, Retry.NEVER),
    ],
)
def test_errors_are_classified_by_venue_code_and_class(
    names: list[str], message: str, status: int | None, code: ReasonCode, retry: Retry
) -> None:
    failure = classify(names, message, status)
    assert (failure.code, failure.retry) == (code, retry)


def test_the_venues_wait_is_read_from_its_headers_and_ban_message() -> None:
    assert retry_after_s({"Retry-After": "7"}, "", 0) == 7.0
    assert retry_after_s({"X-Bapi-Limit-Reset-Timestamp": "12500"}, "", 10_000) == 2.5
    message = "Way too much request weight used; IP banned until 1700000060000."
    assert retry_after_s(None, message, 1_700_000_000_000) == 60.0
    assert retry_after_s({"Content-Type": "json"}, "", 0) is None
    failure = classify(["DDoSProtection"], "418", 418, {"Retry-After": "120"})
    assert failure.wait_s == 120.0
    assert wait_s(failure, 0, 0.5, 30.0, 0.0) >= 120.0  # never less than the venue asked


@given(
    attempt=st.integers(0, 50),
    base=st.floats(0.01, 5.0),
    cap=st.floats(5.0, 600.0),
    jitter=st.floats(0.0, 0.999),
)
def test_backoff_grows_is_capped_and_jittered_within_half(
    attempt: int, base: float, cap: float, jitter: float
) -> None:
    delay = backoff_s(attempt, base, cap, jitter)
    ceiling = min(cap, base * 2.0**attempt)
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9
    assert backoff_s(attempt + 1, base, cap, jitter) >= delay - 1e-9


@pytest.mark.parametrize(
    ("client_id", "dialect", "ok"),
    [
        ("tf1a2b3c4d5e6f7g8h9i-sl", Dialect.BINANCE_SPOT, True),
        ("x" * 36, Dialect.BYBIT, True),
        ("x" * 37, Dialect.BINANCE_USDM, False),
        ("has space", Dialect.BYBIT, False),
        ("a.b", Dialect.BYBIT, False),
        ("a.b", Dialect.BINANCE_SPOT, True),
        ("", Dialect.BYBIT, False),
    ],
)
def test_client_ids_are_checked_against_the_venues_rule(
    client_id: str, dialect: Dialect, ok: bool
) -> None:
    assert (client_id_problem(client_id, dialect) is None) is ok


@pytest.mark.parametrize(("exchange", "market_type"), sorted(VERIFIED_VENUES))
def test_each_proven_venue_is_accepted_and_has_its_dialect(
    exchange: str, market_type: MarketType
) -> None:
    assert venue_refusal(exchange, market_type) is None
    CcxtBrokerParams(exchange=exchange, market_type=market_type)
    assert dialect_for(exchange, market_type is MarketType.LINEAR) in Dialect


@pytest.mark.parametrize(
    ("exchange", "market_type", "said"),
    [
        ("kraken", MarketType.LINEAR, "Kraken's spot markets only"),
        ("binance", MarketType.LINEAR, "exchange 'binanceusdm'"),
        ("binanceusdm", MarketType.SPOT, "exchange 'binance'"),
        ("bybit", MarketType.SPOT, "linear perpetuals only"),
        ("okx", MarketType.LINEAR, "binance (spot), binanceusdm (linear), bybit (linear)"),
    ],
)
def test_a_venue_the_broker_is_not_proven_against_is_refused_naming_the_field(
    exchange: str, market_type: MarketType, said: str
) -> None:
    """Before this, any ccxt exchange id was taken and its orders spelled as a guess: Kraken
    refused every one of them (its client ids were 18 characters at most, the bot's longer),
    and no test showed that a lost answer there could not make a second order."""
    with pytest.raises(ValueError, match="not a venue the ccxt broker is proven against") as e:
        CcxtBrokerParams(exchange=exchange, market_type=market_type)
    assert f"exchange: {exchange!r} with market_type {market_type.value!r}" in str(e.value)
    assert said in str(e.value)
    with pytest.raises(ValueError, match="no proven dialect"):
        dialect_for(exchange, market_type is MarketType.LINEAR)


@given(
    st.integers(min_value=1 << 28, max_value=(1 << 32) - 1),
    st.integers(min_value=0, max_value=511),
    st.sampled_from(["", "sl", "tp"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/", min_size=1, max_size=12),
)
def test_a_bots_id_packs_into_krakens_18_characters_and_back(
    ts: int, sequence: int, role: str, symbol: str
) -> None:
    own = client_order_id(bot_prefix("a-bot"), ts, symbol, sequence)
    own = child_order_id(own, role) if role else own
    packed = venue_client_id(own, Dialect.KRAKEN)
    assert packed is not None and len(packed) == 18
    assert client_id_problem(packed, Dialect.KRAKEN) is None
    assert packed.startswith(bot_prefix("a-bot"))  # still the bot's by its prefix
    assert bot_client_id(packed, Dialect.KRAKEN) == own
    assert venue_client_id(packed, Dialect.KRAKEN) == packed  # packing twice changes nothing


@given(
    st.integers(min_value=1 << 28, max_value=(1 << 32) - 1),
    st.integers(min_value=0, max_value=511),
    st.sampled_from(["", "sl", "tp"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/", min_size=1, max_size=12),
    st.sampled_from(["a-bot", new_identity("a-bot", "team-a", "0badc0de")]),
)
def test_a_live_identitys_and_a_risk_plugins_ids_pack_into_18_characters_too(
    ts: int, sequence: int, role: str, symbol: str, identity: str
) -> None:
    """A live identity's prefix (10 characters) and a risk plugin's own orders (``r`` after
    the prefix: a prop-firm flatten) did not fit the 8-character packing: Kraken refused them
    before they left, the flatten included."""
    own = client_order_id(bot_prefix(identity) + "r", ts, symbol, sequence)
    plain = client_order_id(bot_prefix(identity), ts, symbol, sequence)
    for bot_id in (own, plain):
        bot_id = child_order_id(bot_id, role) if role else bot_id
        packed = venue_client_id(bot_id, Dialect.KRAKEN)
        assert packed is not None and len(packed) <= 18, bot_id
        assert client_id_problem(packed, Dialect.KRAKEN) is None
        assert bot_client_id(packed, Dialect.KRAKEN) == bot_id
        assert venue_client_id(packed, Dialect.KRAKEN) == packed


def test_ids_that_are_not_the_bots_pass_or_are_refused_on_kraken() -> None:
    assert venue_client_id("manual-1", Dialect.KRAKEN) == "manual-1"  # fits: as it is
    assert bot_client_id("manual-1", Dialect.KRAKEN) == "manual-1"
    assert venue_client_id("x" * 19, Dialect.KRAKEN) is None
    prefix = bot_prefix("a-bot")
    too_many = client_order_id(prefix, 1 << 30, "BTC/USD", 512)
    assert venue_client_id(too_many, Dialect.KRAKEN) is None
    order = Order(too_many, "BTC/USD", Side.BUY, 1.0)
    refusal = create_args(
        order, "BTC/USD", Dialect.KRAKEN, INSTRUMENT, _precision(0.001), _precision(0.1)
    )
    assert isinstance(refusal, Refusal) and "18 characters" in refusal.reason
    # A foreign id of the packed shape that unpacks to nothing the bot makes stays as it is.
    assert bot_client_id(prefix + "zzzzzzzzzz", Dialect.KRAKEN) == prefix + "zzzzzzzzzz"
    for shaped in ("u" + "z" * 17, "u" + "0" * 17, "uSERSOWNORDER0001"):
        assert bot_client_id(shaped, Dialect.KRAKEN) == shaped
    # Binance and Bybit take the bot's ids as they are.
    assert venue_client_id(too_many, Dialect.BYBIT) == too_many


INSTRUMENT = Instrument("BTCUSDT", 0.1, 0.001, 0.001, 1000.0, 100.0)


def _precision(step: float):  # type: ignore[no-untyped-def]
    def fn(_symbol: str, value: float) -> str:
        units = int(value / step + 1e-9)
        return f"{units * step:.10f}"

    return fn


def _args(order: Order, dialect: Dialect) -> CreateArgs | Refusal:
    return create_args(
        order, "BTC/USDT:USDT", dialect, INSTRUMENT, _precision(0.001), _precision(0.1)
    )


def test_a_usdm_bracket_becomes_native_reduce_only_stop_and_take_profit_market() -> None:
    entry = Order("tfabc1", "BTCUSDT", Side.BUY, 0.01, stop_loss=48_000.0, take_profit=52_000.0)
    stop, take = bracket_children(entry, 0.01, 0)
    sl = _args(stop, Dialect.BINANCE_USDM)
    tp = _args(take, Dialect.BINANCE_USDM)
    assert isinstance(sl, CreateArgs) and isinstance(tp, CreateArgs)
    assert (sl.type, sl.side, sl.params["stopLossPrice"], sl.params["reduceOnly"]) == (
        "market",
        "sell",
        48_000.0,
        True,
    )
    assert (tp.type, tp.params["takeProfitPrice"], tp.params["reduceOnly"]) == (
        "market",
        52_000.0,
        True,
    )
    assert sl.params["clientOrderId"] == "tfabc1-sl"


def test_stops_are_spelled_per_venue() -> None:
    stop = Order("s1", "BTCUSDT", Side.BUY, 0.01, OrderType.STOP, 51_000.0)
    spot = _args(stop, Dialect.BINANCE_SPOT)
    bybit = _args(stop, Dialect.BYBIT)
    assert isinstance(spot, CreateArgs) and isinstance(bybit, CreateArgs)
    assert spot.params == {"clientOrderId": "s1", "stopLossPrice": 51_000.0}
    assert bybit.params["triggerDirection"] == "ascending"
    sell = _args(stop._replace(side=Side.SELL, price=49_000.0), Dialect.BYBIT)
    assert isinstance(sell, CreateArgs) and sell.params["triggerDirection"] == "descending"


def test_an_order_below_a_limit_is_refused_naming_it() -> None:
    tiny = _args(Order("t1", "BTCUSDT", Side.BUY, 0.0004, OrderType.LIMIT, 50_000.0), Dialect.BYBIT)
    assert isinstance(tiny, Refusal) and tiny.code is ReasonCode.INVALID_QUANTITY
    small = _args(Order("t2", "BTCUSDT", Side.BUY, 0.001, OrderType.LIMIT, 50_000.0), Dialect.BYBIT)
    assert isinstance(small, Refusal) and small.code is ReasonCode.BELOW_MIN_NOTIONAL
    assert "minimum notional 100" in small.reason
    rounded = _args(
        Order("t3", "BTCUSDT", Side.BUY, 0.01234, OrderType.LIMIT, 50_000.07), Dialect.BYBIT
    )
    assert isinstance(rounded, CreateArgs)
    assert (rounded.amount, rounded.price) == (0.012, 50_000.0)


def test_fees_are_converted_to_the_account_currency_when_they_can_be() -> None:
    usdt = frozenset({"USDT"})
    assert fee_in({"fee": {"cost": 0.5, "currency": "USDT"}, "price": 50_000}, usdt, "BTC") == (
        0.5,
        True,
    )
    assert fee_in({"fee": {"cost": 0.00001, "currency": "BTC"}, "price": 50_000}, usdt, "BTC") == (
        pytest.approx(0.5),
        True,
    )
    assert fee_in({"fee": {"cost": 0.001, "currency": "BNB"}, "price": 50_000}, usdt, "BTC") == (
        0.0,
        False,
    )
    assert fee_in({"fee": None}, usdt, "BTC") == (0.0, True)
    bnb = {"fee": {"cost": 0.000625, "currency": "BNB"}, "price": 50_000}
    assert fee_in(bnb, usdt, "BTC", 600.0) == (pytest.approx(0.375), True)
    assert fee_in(bnb, usdt, "BTC", float("nan")) == (0.0, False)


def test_a_fee_in_a_third_coin_is_priced_by_that_coins_market_at_the_trades_minute() -> None:
    rules = FillRules(frozenset({"USDT"}), "BTC", 0.00001, spot=True, quote="USDT")
    assert third_coin_fee({"fee": {"cost": 0.1, "currency": "BNB"}}, rules) == "BNB"
    for currency, cost in (("USDT", 0.1), ("BTC", 0.1), ("BNB", 0.0), ("", 0.1)):
        assert third_coin_fee({"fee": {"cost": cost, "currency": currency}}, rules) is None
    assert conversion_pair("BNB", "USDT", {"BNB/USDT", "BTC/USDT"}) == "BNB/USDT"
    assert conversion_pair("BNB", "USDT", {"BNB/USDT:USDT"}) == "BNB/USDT:USDT"
    assert conversion_pair("KFEE", "USD", {"BTC/USD"}) is None
    minute = 1_700_000_040_000 // 60_000 * 60_000
    rows = [
        [minute - 60_000, 590, 0, 0, 595, 1],
        [minute, 600, 0, 0, 610, 1],
        [minute + 60_000, 620, 0, 0, 630, 1],
    ]
    assert rate_at(rows, minute) == 600  # its own minute's open: fixed once it began
    assert rate_at(list(reversed(rows)), minute) == 600
    assert rate_at([rows[0], rows[2]], minute) == 595  # not traded in it yet: the close before
    assert rate_at([rows[2]], minute) == 620
    assert rate_at([], minute) is None
    assert rate_at([[minute, 0, 0, 0, 0, 0]], minute) is None


def test_a_watched_take_profit_is_reached_by_the_side_it_would_trade_against() -> None:
    assert target_reached(Side.SELL, 52_000.0, {"bid": 52_000.0, "last": 51_000.0})
    assert not target_reached(Side.SELL, 52_000.0, {"bid": 51_999.9, "last": 52_100.0})
    assert target_reached(Side.SELL, 52_000.0, {"bid": None, "last": 52_100.0})
    assert target_reached(Side.BUY, 48_000.0, {"ask": 47_990.0})
    assert not target_reached(Side.BUY, 48_000.0, {"ask": 48_010.0, "last": 47_000.0})
    assert not target_reached(Side.SELL, 52_000.0, {})
    assert not target_reached(Side.BUY, 48_000.0, {"ask": None, "last": None})


def test_ccxt_statuses_map_to_ours() -> None:
    assert status_of("open", 0.0) == (OrderStatus.OPEN, ReasonCode.NONE)
    assert status_of("open", 0.1)[0] is OrderStatus.PARTIALLY_FILLED
    assert status_of("closed", 1.0)[0] is OrderStatus.FILLED
    assert status_of("expired", 0.0) == (OrderStatus.CANCELLED, ReasonCode.EXPIRED)
    assert status_of("canceled", 0.0) == (OrderStatus.CANCELLED, ReasonCode.CANCELLED_BY_USER)
    assert status_of(None, 0.0)[0] is OrderStatus.OPEN  # Bybit's create ack has no status


def test_credentials_print_no_value_and_are_re_read_when_they_rotate(tmp_path: Path) -> None:
    (tmp_path / "apiKey").write_text("PLANTED-KEY-0001\n")
    (tmp_path / "secret").write_text("PLANTED-SECRET-0001")
    files = CredentialFiles(tmp_path)
    assert files.current.values == {"apiKey": "PLANTED-KEY-0001", "secret": "PLANTED-SECRET-0001"}
    assert "PLANTED" not in repr(files.current) and "PLANTED" not in str(files.current)
    assert files.refresh() is None
    (tmp_path / "secret").write_text("PLANTED-SECRET-0002")
    os.utime(tmp_path / "secret", (1, 1))
    fresh = files.refresh()
    assert fresh is not None and fresh.values["secret"] == "PLANTED-SECRET-0002"
    text = files.redact("key PLANTED-KEY-0001 old PLANTED-SECRET-0001 new PLANTED-SECRET-0002")
    assert "PLANTED" not in text


def test_a_missing_credential_file_is_named_never_a_value(tmp_path: Path) -> None:
    (tmp_path / "apiKey").write_text("PLANTED-KEY-0002")
    with pytest.raises(CredentialsError, match="secret") as error:
        read_credentials(tmp_path)
    assert "PLANTED" not in str(error.value)
