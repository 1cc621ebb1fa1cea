"""A restart counts only the bot's own trades when it books what filled while it was down.

A person may trade by hand on the bot's account and symbol. The running broker skips their
trades (``_poll_trades``: a trade of an order it does not follow is not the bot's); the
start-up reconciliation's reports (``CcxtBroker._fill_reports``) must count the bot's trades
the same way (``trade_owner``): on Binance spot, what of a buy the bot counts depends on the
position before it (``spot_count``: a buy closing a short counts whole, one opening a long only
what the account holds after the fee taken in the coin). Moved by a person's trade, that
position makes the bot's buy close a short the bot never had (or open a long when it closed
one), a lot step off what the account gained: the bot's exit then sells a person's coin, or it
holds a short of a rest no order can close.

Against the fake venues: Binance spot (1 BTC and 100,000 USDT; a buy's fee is 0.1 % of the
coin; the lot step 0.00001 BTC), and Binance USDⓈ-M, where fees are in USDT.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.brokers.harness import VenueHarness, harness_for
from tests.brokers.test_ccxt_restart_missed_fills import (
    HOUR,
    LIMIT,
    Outcome,
    Step,
    _bar,
    _live_bars,
    _run,
)
from tests.venues.binance.fixtures import make_ccxt_binance
from tradefleet_plugins.brokers.ccxt_orders import trade_owner
from tradefleet_runtime.sdk import Bar, Side

# The venue's market of each setup: (the harness, the manifest's exchange and market type).
SPOT = ("binance-spot", "binance", "spot")
USDM = ("binance-usdm", "binanceusdm", "linear")


def _wait_filled(harness: VenueHarness, market: str) -> None:
    deadline = time.monotonic() + 5.0
    while True:
        with harness.fake.state.lock:
            working = ("NEW", "PARTIALLY_FILLED")
            left = [o for o in harness.fake.orders(market) if o.status in working]
        if not left:
            return
        assert time.monotonic() < deadline, f"the resting order did not fill: {left}"
        time.sleep(0.02)


def _down_and_up(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setup: tuple[str, str, str],
    orders: list[list[Step]],
    person: list[tuple[str, float]],
) -> tuple[Outcome, Outcome]:
    """The bot's first run (its limit buy left resting), then, while it is down, the person's
    market orders (``person``: side, amount) on the same account and symbol, then the market
    through the bot's limit; then its second run. Both runs' outcomes."""
    name, exchange, market_type = setup
    with harness_for(name, tmp_path, rate_limit_ms=10) as harness:
        assert isinstance(harness, VenueHarness)
        monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", str(harness.credentials))
        harness.broker.close()  # the bot brings its own broker
        bars: list[Bar] = []
        first = _run(tmp_path, harness, _live_bars(bars), orders, exchange, market_type)
        hand = make_ccxt_binance(harness.fake, futures=market_type == "linear")
        for side, amount in person:
            hand.create_order(
                "BTC/USDT" if market_type == "spot" else "BTC/USDT:USDT", "market", side, amount
            )
            time.sleep(0.01)
        harness.trade_through(LIMIT - 100)
        _wait_filled(harness, "spot" if market_type == "spot" else "usdm")
        bars.append(_bar(bars[-1].close_ts + HOUR))
        second = _run(tmp_path, harness, bars, orders, exchange, market_type)
    return first, second


def _bot_buys(outcome: Outcome) -> list[float]:
    return [quantity for side, quantity, _fee in outcome.fills if side is Side.BUY]


def test_a_persons_sell_while_the_bot_was_down_leaves_the_bots_buy_a_long_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot, flat, leaves a limit buy of 0.01 resting. While it is down the person sells
    0.5 BTC of their own, then the buy fills: the account gains 0.00999 (0.01 less the fee).
    Counted from a position the person's sell moved, the buy read as closing a short of 0.5,
    whole (0.01): the bot held 0.01 and its exit would sell a lot step of the person's coin."""
    orders: list[list[Step]] = [[(Side.BUY, 0.01, LIMIT)], [], []]
    first, second = _down_and_up(tmp_path, monkeypatch, SPOT, orders, [("sell", 0.5)])
    assert first.position == 0.0  # its limit buy rests at the venue
    assert _bot_buys(second) == [pytest.approx(0.00999, abs=1e-12)]
    assert second.position == pytest.approx(0.00999, abs=1e-12)
    assert second.degraded == ""


def test_a_persons_buy_while_the_bot_was_down_leaves_the_bots_buy_a_short_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror: the bot sells 0.01 on the spot account (a short of coin the account holds)
    and leaves a limit buy of 0.01 resting to close it. While it is down the person buys 0.5
    BTC, then the bot's buy fills. It closes the bot's short whole: flat, not a short of the
    0.00001 its fee took (a rest below the lot step no order can close), and not Degraded.
    Counted from a position the person's buy moved, it read as opening a long."""
    orders: list[list[Step]] = [[(Side.SELL, 0.01, None), (Side.BUY, 0.01, LIMIT)], [], []]
    first, second = _down_and_up(tmp_path, monkeypatch, SPOT, orders, [("buy", 0.5)])
    assert first.position == pytest.approx(-0.01, abs=1e-12)
    assert _bot_buys(second) == [0.01]
    assert second.position == 0.0
    assert second.degraded == ""


def test_on_a_perpetual_the_persons_trades_while_down_are_not_the_bots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binance USDⓈ-M takes fees in USDT: every trade counts its amount. The person opens and
    closes a short of their own on the bot's symbol while it is down (the account's position
    is the bot's again), around the fill of the bot's limit buy: the bot books its buy only,
    whole, its fee in money, and holds what the venue shows."""
    orders: list[list[Step]] = [[(Side.BUY, 0.01, LIMIT)], [], []]
    person = [("sell", 0.5), ("buy", 0.5)]
    first, second = _down_and_up(tmp_path, monkeypatch, USDM, orders, person)
    assert first.position == 0.0
    assert [(side, quantity) for side, quantity, _fee in second.fills] == [(Side.BUY, 0.01)]
    assert second.fills[0][2] > 0.0  # its fee, in USDT
    assert second.position == 0.01
    assert second.degraded == ""


# -- the shared decision ------------------------------------------------------------------


def test_trade_owner_names_the_bots_order_and_no_other() -> None:
    """By the trade's venue order id among the orders at hand, else by the client id its row
    names (Bybit's orderLinkId, ccxt's clientOrderId); the bot's only when ``mine`` says so."""
    orders = {"1": "tfabc-1", "2": "web_person"}

    def mine(client_id: str) -> bool:
        return client_id.startswith("tfabc")

    def named(venue_cid: str) -> str:
        return venue_cid

    assert trade_owner({"order": "1"}, orders, named, mine) == "tfabc-1"
    assert trade_owner({"order": "2"}, orders, named, mine) is None  # a person's order
    linked = {"order": "9", "info": {"orderLinkId": "tfabc-2"}}
    assert trade_owner(linked, orders, named, mine) == "tfabc-2"
    assert trade_owner({"order": "9", "clientOrderId": "tfabc-3"}, orders, named, mine) == (
        "tfabc-3"
    )
    assert trade_owner({"order": "9", "clientOrderId": "x-1"}, orders, named, mine) is None
    assert trade_owner({"order": "9"}, orders, named, mine) is None  # nothing tells
