"""On spot a flatten cancels the position's stop-loss and take-profit before its close: the paths
around it — a close refused after the cancels, the close after a refused stop-loss, Kraken's
watched take-profit, a restart owing the flatten.

The real ccxt broker against the fake venues: Binance spot (``coinless_spot``; a person's own
coins beside the bot's where said) and Kraken spot (its take-profit watched by the broker).
Checked in review (R37).
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.ccxt_restart_life import (
    Killed,
    coinless_spot_for_a_bot,
    hourly_bars,
    life,
    until,
)
from tests.brokers.harness import (
    BOT,
    QUANTITY,
    SYMBOL,
    VenueHarness,
    base_balance,
    coinless_spot,
    harness_for,
)
from tests.brokers.test_ccxt_flatten_keeps_stops import (
    SL,
    TP,
    _engine,
    _events,
    _guarded,
    _until,
    _venue_status,
)
from tests.runtime.helpers import Scripted
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus
from tradefleet_runtime.session import BotSession

PERSONS = Decimal("0.5")
SPOT: dict[str, Any] = {"exchange": "binance", "market_type": "spot", "initial": 10_000}


def _pump_for(engine: Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        engine.pump()
        engine.send_queued()
        time.sleep(0.02)


def _flat(engine: Engine, symbol: str) -> bool:
    return engine.position(symbol).quantity == 0.0 and not engine.open_orders()


def test_a_close_refused_after_the_cancels_is_said_bare_owed_and_sent_again(
    tmp_path: Path,
) -> None:
    with coinless_spot(tmp_path) as harness:
        engine, journal, guards = _guarded(harness)
        symbol = harness.symbol
        harness.fake.faults.inject(
            "reject",
            path="/api/v3/order",
            method="POST",
            code=-1013,
            msg="Filter failure: PERCENT_PRICE_BY_SIDE",
        )
        assert engine.halt("alice", "incident", flatten=True)
        _until(engine, lambda: bool(_events(journal, "flatten_failed")))
        [(message, data)] = _events(journal, "flatten_failed")
        assert "no stop-loss protects it" in message and data["guards"] == []
        assert all(_venue_status(harness, g) is OrderStatus.CANCELLED for g in guards)
        assert journal.flatten_owed(BOT) == ("alice", "incident")
        assert not engine.flatten_pending([symbol]) and engine.exits_kept([symbol]) == []
        assert not engine.halt("alice", "again", flatten=True)
        _until(engine, lambda: _flat(engine, symbol))
        assert base_balance(harness) == (Decimal(0), Decimal(0))
        assert journal.flatten_owed(BOT) is None


def test_the_stop_refused_close_on_spot_waits_for_the_target_cancel(
    tmp_path: Path,
) -> None:
    """The venue refuses the OCO list and then the stop-loss sent alone: the take-profit
    rests holding the coin; the close after the refused stop waits for its cancel and goes
    once, never refused for the coin it holds."""
    refusal = {"code": -2010, "msg": "Order would trigger immediately."}
    with coinless_spot(tmp_path) as harness:
        oco = "/api/v3/orderList/oco"
        harness.fake.faults.inject("latency", path=oco, method="POST", delay_ms=1000)
        harness.fake.faults.inject("reject", path=oco, method="POST", **refusal)
        engine, journal = _engine(harness)
        deadline = time.monotonic() + 5.0
        while True:  # the entry filled; its stop-loss, sent alone next, is refused
            with harness.fake.state.lock:
                if any(o.status == "FILLED" for o in harness.fake.orders("spot")):
                    break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        harness.fake.faults.inject("reject", path="/api/v3/order", method="POST", **refusal)
        _until(engine, lambda: _flat(engine, harness.symbol))
        assert len(_events(journal, "stop_refused")) == 1
        assert not _events(journal, "flatten_failed")
        with harness.fake.state.lock:
            sells = [
                o for o in harness.fake.orders("spot") if o.side == "SELL" and o.type == "MARKET"
            ]
        assert [o.status for o in sells] == ["FILLED"]  # one close, never refused first
        assert base_balance(harness) == (Decimal(0), Decimal(0))


def test_kraken_spot_flatten_cancels_the_stop_and_watched_target_then_closes_once(
    tmp_path: Path,
) -> None:
    with harness_for("kraken", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        with harness.fake.state.lock:
            harness.fake.account().balances["XXBT"] = Decimal(0)
        engine, journal, _guards = _guarded(harness)
        assert engine.halt("alice", "incident", flatten=True)
        _until(engine, lambda: _flat(engine, harness.symbol))
        assert harness.fake.balance("XXBT") == 0
        assert not _events(journal, "flatten_failed")
        assert journal.flatten_owed(BOT) is None
        ids = harness.venue_client_ids()
        assert len(ids) == len(set(ids)) == 3  # the entry, its stop, one close


def _buy(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol, QUANTITY, stop_loss=SL, take_profit=TP)


def test_a_restart_owing_the_spot_flatten_cancels_the_adopted_oco_then_closes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Life 1 halts with flatten; the OCO's cancel is held by the venue (never executed) when
    the process dies. Life 2 owes the flatten: it cancels the OCO and sells what the bot
    holds, once, never the person's coins."""
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        with harness.fake.state.lock:
            harness.fake.state.accounts[harness.fake.api_key].spot_free["BTC"] = PERSONS

        def halt_then_die(_session: BotSession, engine: Engine, journal: Journal) -> None:
            until(engine, lambda: len(engine.open_orders()) == 2, "the OCO working")
            harness.fake.faults.inject(
                "timeout", path="/api/v3/order", method="DELETE", times=None, hold_s=30
            )
            assert engine.halt("alice", "incident", flatten=True)
            _pump_for(engine, 0.4)
            assert journal.flatten_owed(BOT) == ("alice", "incident")
            raise Killed

        bars = hourly_bars(3)
        life(tmp_path, harness, bars[:1], halt_then_die, strategy=Scripted({0: _buy}), **SPOT)
        with harness.fake.state.lock:
            held = sum(
                (o.executed_qty for o in harness.fake.orders("spot") if o.side == "BUY"),
                Decimal(0),
            ) * Decimal("0.999")
            legs = [o.status for o in harness.fake.orders("spot") if o.side == "SELL"]
        assert legs == ["NEW", "NEW"]  # the OCO's cancel never landed
        assert sum(base_balance(harness)) == PERSONS + held
        harness.fake.faults.clear()
        seen: dict[str, Any] = {}

        def flat(_session: BotSession, engine: Engine, journal: Journal) -> None:
            until(engine, lambda: _flat(engine, SYMBOL), "the owed flatten done")
            _pump_for(engine, 1.0)
            seen["owed"] = journal.flatten_owed(BOT)

        life(tmp_path, harness, bars[:2], flat, strategy=Scripted(), **SPOT)
        with harness.fake.state.lock:
            sells = [
                (o.type, o.status, o.executed_qty)
                for o in harness.fake.orders("spot")
                if o.side == "SELL"
            ]
        assert [s for s in sells if s[0] == "MARKET"] == [("MARKET", "FILLED", held)]
        assert sum(base_balance(harness)) == PERSONS
        assert seen == {"owed": None}
