"""SIGKILL while an emergency flatten's close waits for the venue to confirm the cancel of the
strategy's resting sell, through a real ``BotSession`` and the ccxt broker against the fake
Binance spot, on an account holding the person's own coins beside the bot's (walkthrough W21).

Life 1: the bot buys at market, then rests a limit sell of all it holds; a person stops it
with flatten; the sell's cancel is on its way (held by the venue: a ``timeout`` fault, never
executed) when the process dies. The flatten is owed (journaled). While the bot is down the
sell: still rests (the cancel was lost), fills, or its cancel lands. Life 2 reconciles and does
the flatten owed: once, never a market sell while the adopted sell rests, what the bot holds and
never the person's coins.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.ccxt_restart_life import (
    Killed,
    all_acked,
    coinless_spot_for_a_bot,
    hourly_bars,
    life,
    until,
)
from tests.brokers.harness import BOT, QUANTITY, SYMBOL, VenueHarness
from tests.brokers.test_ccxt_flatten_beside_resting_sell import (
    ASK,
    PERSONS,
    Taken,
    _btc,
    _sells,
    _watch,
)
from tests.runtime.helpers import Scripted
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderType
from tradefleet_runtime.session import BotSession

SPOT: dict[str, Any] = {"exchange": "binance", "market_type": "spot", "initial": 10_000}


def _buy(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol, QUANTITY)


def _pump_for(engine: Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        engine.pump()
        engine.send_queued()
        time.sleep(0.02)


def _sell_status(harness: VenueHarness, cid: str) -> str:
    with harness.fake.state.lock:
        [order] = [o for o in harness.fake.state.spot.orders.values() if o.client_order_id == cid]
        return str(order.status)


def _killed_while_the_close_waits(
    tmp_path: Path, harness: VenueHarness, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Decimal, list[Taken], list[Bar]]:
    """Life 1, to its SIGKILL: (the resting sell's id, what the bot held, the orders the
    venue takes from the halt on, the bars)."""
    found: list[tuple[str, Decimal, list[Taken]]] = []

    def halt_then_die(_session: BotSession, engine: Engine, journal: Journal) -> None:
        until(engine, lambda: engine.position(SYMBOL).quantity > 0.0, "the buy's fill")
        held = Decimal(str(engine.position(SYMBOL).quantity))
        # The strategy rests a limit sell of all it holds (between bars, as on a signal).
        strategy.ctx.sell(SYMBOL, float(held), order_type=OrderType.LIMIT, price=ASK)
        engine.send_queued()
        until(engine, all_acked(engine, journal), "the limit sell at the venue")
        [sell] = [o.client_order_id for o in engine.open_orders()]
        taken = _watch(harness, monkeypatch, sell)
        found.append((sell, held, taken))
        # The venue holds the cancel, unexecuted, until the process is gone.
        harness.fake.faults.inject("timeout", path="/api/v3/order", method="DELETE", hold_s=30)
        assert engine.halt("alice", "incident", flatten=True)
        _pump_for(engine, 0.4)  # under the broker's 1.5 s timeout: unanswered
        assert _sells(taken) == []
        assert journal.flatten_owed(BOT) == ("alice", "incident")
        raise Killed

    with harness.fake.state.lock:
        harness.fake.state.accounts[harness.fake.api_key].spot_free["BTC"] = PERSONS
    bars = hourly_bars(3)
    strategy = Scripted({0: _buy})
    life(tmp_path, harness, bars[:1], halt_then_die, strategy=strategy, **SPOT)
    [(sell, held, taken)] = found
    assert _sell_status(harness, sell) == "NEW"  # the cancel never landed
    assert _btc(harness) == PERSONS + held
    return sell, held, taken, bars


def _second_life(tmp_path: Path, harness: VenueHarness, bars: list[Bar]) -> dict[str, Any]:
    """Life 2: it reconciles and does the flatten owed; what it ended with."""
    seen: dict[str, Any] = {}

    def flat(_session: BotSession, engine: Engine, journal: Journal) -> None:
        def done() -> bool:
            return engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()

        until(engine, done, "the owed flatten done")
        _pump_for(engine, 1.0)
        seen["position"] = engine.position(SYMBOL).quantity
        seen["owed"] = journal.flatten_owed(BOT)

    life(tmp_path, harness, bars[:2], flat, strategy=Scripted(), **SPOT)
    return seen


def test_the_adopted_sell_is_cancelled_before_the_owed_close_sells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        sell, held, taken, bars = _killed_while_the_close_waits(tmp_path, harness, monkeypatch)
        seen = _second_life(tmp_path, harness, bars)
        assert _sell_status(harness, sell) == "CANCELED"
        [close] = _sells(taken)  # once, across both lives
        assert close.type == "MARKET" and not close.sell_open, close
        assert close.quantity == held
        assert _btc(harness) == PERSONS  # the person's coins untouched
        assert seen == {"position": 0.0, "owed": None}


def test_a_sell_filled_while_down_leaves_the_owed_flatten_nothing_to_sell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        sell, _held, taken, bars = _killed_while_the_close_waits(tmp_path, harness, monkeypatch)
        harness.trade_through(ASK + 500)  # the resting sell fills while the bot is down
        assert _sell_status(harness, sell) == "FILLED"
        seen = _second_life(tmp_path, harness, bars)
        assert _sells(taken) == []
        assert _btc(harness) == PERSONS
        assert seen == {"position": 0.0, "owed": None}


def test_a_cancel_that_landed_while_down_lets_one_close_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        sell, held, taken, bars = _killed_while_the_close_waits(tmp_path, harness, monkeypatch)
        with harness.fake.state.lock:  # the cancel the dead process asked lands now
            spot = harness.fake.state.spot
            [order] = [o for o in spot.orders.values() if o.client_order_id == sell]
            spot.cancel_order(
                harness.fake.state.accounts[harness.fake.api_key],
                {"symbol": SYMBOL, "origClientOrderId": order.client_order_id},
            )
        assert _sell_status(harness, sell) == "CANCELED"
        seen = _second_life(tmp_path, harness, bars)
        [close] = _sells(taken)
        assert close.type == "MARKET" and close.quantity == held
        assert _btc(harness) == PERSONS
        assert seen == {"position": 0.0, "owed": None}
