"""The MT5 broker's pure parts: the retcode table, request building, params decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.venues.mt5 import constants as C
from tests.venues.mt5 import terminal as emulator
from tradefleet_plugins.brokers import mt5_reports, mt5_requests
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams, SymbolMap, magic_number
from tradefleet_plugins.brokers.mt5_requests import (
    COMMENT_MAX,
    SymbolSpec,
    base_comment,
    comment_for,
    filling_modes,
    on_tick,
    round_volume,
    stops_problem,
    volume_problem,
)
from tradefleet_plugins.brokers.mt5_retcodes import Action, named_codes, verdict
from tradefleet_runtime.sdk import (
    OrderType,
    ReasonCode,
    Side,
    bot_prefix,
    child_order_id,
    client_order_id,
)

EURUSD = SymbolSpec("EURUSD", 5, 1e-5, 1e-5, 0.01, 500.0, 0.01, 0, 3, 2, 100_000.0, "USD")
US500 = SymbolSpec("US500", 2, 0.01, 0.25, 0.1, 100.0, 0.1, 0, 2, 3, 1.0, "USD")


def test_constants_are_the_real_packages() -> None:
    """The request builders' numbers are the MetaTrader5 package's (the emulator's constants
    are generated from the real wheel)."""
    for module in (mt5_requests, mt5_reports):
        for name in dir(module):
            if name.isupper() and hasattr(C, name):
                assert getattr(module, name) == getattr(C, name), name
    assert mt5_requests.SYMBOL_FILLING_FOK == emulator.SYMBOL_FILLING_FOK
    assert mt5_requests.SYMBOL_FILLING_IOC == emulator.SYMBOL_FILLING_IOC
    assert COMMENT_MAX == emulator.COMMENT_MAX


@pytest.mark.parametrize(
    ("retcode", "action", "code"),
    [
        (10009, Action.DONE, ReasonCode.NONE),
        (10008, Action.PLACED, ReasonCode.NONE),
        (10010, Action.DONE_PARTIAL, ReasonCode.NONE),
        (10004, Action.RETRY_PRICE, ReasonCode.NONE),
        (10020, Action.RETRY_PRICE, ReasonCode.NONE),
        (10021, Action.RETRY_PRICE, ReasonCode.NONE),
        (10012, Action.RECONCILE, ReasonCode.UNKNOWN_OUTCOME),
        (10031, Action.RECONCILE, ReasonCode.VENUE_UNAVAILABLE),
        (10030, Action.NEXT_FILLING, ReasonCode.VENUE_REJECTED),
        (10024, Action.BACK_OFF, ReasonCode.RATE_LIMITED),
        (10019, Action.REJECT, ReasonCode.INSUFFICIENT_FUNDS),
        (10014, Action.REJECT, ReasonCode.INVALID_QUANTITY),
        (10015, Action.REJECT, ReasonCode.INVALID_PRICE),
        (10016, Action.REJECT, ReasonCode.INVALID_STOPS),
        (10018, Action.REJECT, ReasonCode.MARKET_CLOSED),
    ],
)
def test_retcode_table(retcode: int, action: Action, code: ReasonCode) -> None:
    found = verdict(retcode)
    assert (found.action, found.code) == (action, code)


@given(st.integers(min_value=-100_000, max_value=100_000))
def test_any_unnamed_retcode_is_reconciled(retcode: int) -> None:
    if retcode in named_codes():
        return
    found = verdict(retcode)
    assert found.action is Action.RECONCILE
    assert str(retcode) in found.words


@given(st.text(min_size=1, max_size=60), st.integers(min_value=0, max_value=9))
def test_comment_fits_the_terminal_and_is_deterministic(client_id: str, leg: int) -> None:
    comment = comment_for(client_id, leg)
    assert len(comment) <= COMMENT_MAX
    assert comment == comment_for(client_id, leg)


@given(st.text(min_size=1, max_size=40), st.integers(min_value=0, max_value=2**40))
def test_our_ids_and_their_children_go_into_the_comment_as_they_are(bot: str, ts: int) -> None:
    parent = client_order_id(bot_prefix(bot), ts, "XAUUSD", 35)
    for order_id in (parent, child_order_id(parent, "sl"), child_order_id(parent, "tp")):
        assert comment_for(order_id) == order_id
        assert base_comment(comment_for(order_id, 3)) == order_id


def test_long_ids_are_hashed_deterministically_and_distinctly() -> None:
    long_a, long_b = "x" * 40, "x" * 39 + "y"
    assert comment_for(long_a) != comment_for(long_b)
    assert comment_for(long_a).startswith("h:")
    assert comment_for(long_a) != comment_for(long_a, 1)


@given(st.floats(min_value=0.0, max_value=1000.0, allow_nan=False))
def test_volume_rounds_down_to_the_step(volume: float) -> None:
    rounded = round_volume(volume, EURUSD)
    assert rounded <= volume + 1e-9
    assert volume - rounded < 0.01 + 1e-9
    assert abs(rounded / 0.01 - round(rounded / 0.01)) < 1e-6


def test_volume_limits_name_the_limit() -> None:
    assert volume_problem(round_volume(0.004, EURUSD), EURUSD) is not None
    below = volume_problem(0.05, US500)
    assert below is not None and below[0] is ReasonCode.BELOW_MIN_QUANTITY
    assert "volume_min" in below[1]
    above = volume_problem(600.0, EURUSD)
    assert above is not None and "volume_max" in above[1]
    assert volume_problem(0.12, EURUSD) is None


def test_prices_go_on_the_tick_never_worse_for_the_bot() -> None:
    assert on_tick(5900.3, US500, Side.BUY, OrderType.LIMIT) == 5900.25
    assert on_tick(5900.3, US500, Side.SELL, OrderType.LIMIT) == 5900.5
    assert on_tick(5900.3, US500, Side.BUY, OrderType.STOP) == 5900.5
    assert on_tick(1.099996, EURUSD, Side.BUY, OrderType.LIMIT) == 1.09999


def test_stops_respect_the_stops_level() -> None:
    gold = EURUSD._replace(name="GOLD.pro", digits=2, point=0.01, tick_size=0.01, stops_level=50)
    close = stops_problem(Side.BUY, 2650.0, 2649.8, 0.0, gold)
    assert close is not None and "trade_stops_level 50" in close
    assert stops_problem(Side.BUY, 2650.0, 2649.0, 2660.0, gold) is None
    wrong_side = stops_problem(Side.SELL, 2650.0, 2640.0, 0.0, gold)
    assert wrong_side is not None and "stop_loss" in wrong_side


def test_filling_modes_follow_flags_and_execution_mode() -> None:
    fok, ioc, ret = C.ORDER_FILLING_FOK, C.ORDER_FILLING_IOC, C.ORDER_FILLING_RETURN
    assert filling_modes(EURUSD, pending=False) == (fok, ioc)  # market execution: no RETURN
    assert filling_modes(US500, pending=False) == (ioc, ret)  # exchange execution
    assert filling_modes(EURUSD._replace(filling_flags=0), pending=False) == (fok, ioc, ret)
    assert filling_modes(EURUSD, pending=True)[0] == ret


def test_magic_number_is_deterministic_per_bot() -> None:
    assert magic_number("ns/bot") == magic_number("ns/bot")
    assert magic_number("ns/bot") != magic_number("ns/other")
    assert 1 <= magic_number("x") < 2**31


def test_symbol_map_both_ways_and_one_to_one() -> None:
    names = SymbolMap({"XAUUSD": "GOLD.pro", "US30": "DJ30"})
    assert names.venue("XAUUSD") == "GOLD.pro" and names.ours("GOLD.pro") == "XAUUSD"
    assert names.venue("EURUSD") == "EURUSD" and names.ours("DJ30") == "US30"
    with pytest.raises(ValueError, match="both map to 'DJ30'"):
        Mt5BrokerParams(symbols={"US30": "DJ30", "DOW": "DJ30"})


def test_broker_and_feed_naming_one_terminal_share_it() -> None:
    from tradefleet_plugins.brokers.mt5_link import load_terminal

    first = load_terminal("tests.venues.mt5:MT5Terminal")
    assert load_terminal("tests.venues.mt5:MT5Terminal") is first
    assert hasattr(first, "order_send")


def test_a_missing_package_says_what_to_do() -> None:
    from tradefleet_plugins.brokers.mt5_link import load_terminal
    from tradefleet_runtime.sdk import PluginError

    with pytest.raises(PluginError, match="bridge"):
        load_terminal("MetaTrader5")
