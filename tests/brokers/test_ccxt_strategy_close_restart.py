"""A strategy's close that waited for the venue's cancel answers when the process was killed is
asked again by the next start (walkthrough W22).

Binance spot through the real ccxt broker and a real ``BotSession``: a bracketed buy, then the
strategy closes; the venue holds the OCO's cancel until the process is gone, and runs it while
the bot is down. The restarted bot held the coins with nothing working at the venue and said
nothing (the close was lost with the process). Now the journal's ``close_waits`` record of
the wait makes the next start ask the close again after the reconciliation: it sells what the
bot holds, once.
"""

from __future__ import annotations

import json
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
from tests.brokers.harness import QUANTITY, SYMBOL, VenueHarness
from tests.brokers.test_ccxt_flatten_keeps_stops import SL, TP
from tests.runtime.helpers import Scripted
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.session import BotSession

SPOT: dict[str, Any] = {"exchange": "binance", "market_type": "spot", "initial": 10_000}


def _buy(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol, QUANTITY, stop_loss=SL, take_profit=TP)


def _pump_for(engine: Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        engine.pump()
        engine.send_queued()
        time.sleep(0.02)


def _open_legs(harness: VenueHarness) -> list[str]:
    with harness.fake.state.lock:
        return sorted(
            o.client_order_id for o in harness.fake.state.spot.orders.values() if o.is_open
        )


def _btc(harness: VenueHarness) -> Decimal:
    with harness.fake.state.lock:
        account = harness.fake.state.accounts[harness.fake.api_key]
        return Decimal(account.spot_free.get("BTC", 0) + account.spot_locked.get("BTC", 0))


def test_a_close_killed_while_it_waited_is_asked_again_at_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        strategy = Scripted({0: _buy})
        found: dict[str, Any] = {}

        def close_then_die(_session: BotSession, engine: Engine, journal: Journal) -> None:
            until(engine, lambda: engine.position(SYMBOL).quantity > 0.0, "the buy's fill")
            until(
                engine,
                lambda: len(engine.open_orders()) == 2 and len(_open_legs(harness)) == 2,
                "the OCO at the venue",
            )
            until(engine, all_acked(engine, journal), "acks")
            found["held"] = Decimal(str(engine.position(SYMBOL).quantity))
            # The venue holds the cancels, unexecuted, until the process is gone.
            harness.fake.faults.inject(
                "timeout", path="/api/v3/order", method="DELETE", hold_s=30, times=None
            )
            strategy.ctx.close(SYMBOL)  # between bars, as on a signal
            engine.send_queued()
            _pump_for(engine, 0.4)
            rows = journal.query("SELECT data FROM events WHERE kind = 'close_waits'")
            assert len(rows) == 1 and len(json.loads(rows[0][0])["waiting_for"]) == 2
            raise Killed

        bars = hourly_bars(3)
        life(tmp_path, harness, bars[:1], close_then_die, strategy=strategy, **SPOT)
        harness.fake.faults.clear()
        held = found["held"]
        # The cancel the dead process asked lands now: the OCO is gone; the coins are the bot's.
        with harness.fake.state.lock:
            spot = harness.fake.state.spot
            [leg, *_] = [o for o in spot.orders.values() if o.is_open]
            spot.cancel_order(
                harness.fake.state.accounts[harness.fake.api_key],
                {"symbol": SYMBOL, "origClientOrderId": leg.client_order_id},
            )
        assert _open_legs(harness) == [] and _btc(harness) == held

        seen: dict[str, Any] = {}

        def look(_session: BotSession, engine: Engine, journal: Journal) -> None:
            _pump_for(engine, 2.0)
            seen["position"] = engine.position(SYMBOL).quantity
            seen["working"] = sorted(o.client_order_id for o in engine.open_orders())
            seen["at_venue"] = _open_legs(harness)
            seen["events"] = journal.query("SELECT kind, message FROM events ORDER BY id")

        life(tmp_path, harness, bars[:2], look, strategy=Scripted(), **SPOT)
        assert seen["position"] == 0.0 and _btc(harness) == 0, seen
        assert seen["at_venue"] == []
        resumed = [m for k, m in seen["events"] if k == "close_waits" and "asked again now" in m]
        assert len(resumed) == 1, seen["events"]
        with harness.fake.state.lock:
            sold = sum(
                (o.executed_qty for o in harness.fake.orders("spot") if o.side == "SELL"),
                Decimal(0),
            )
        assert sold == held  # one sale, of what the bot held
