"""A person's emergency stop with flatten given while the bot was down, beside a bracket spent
while down, on Binance spot (walkthrough W20).

The operator writes ``spec.emergencyStop`` into the pod's bot.yaml and sends
``EmergencyStop(flatten)`` once the runtime answers; a stop given while the pod was down is in no
journal yet. The restart's close of the part its children no longer covered (``<entry>-bs``)
checked only the journal for a flatten owed, so it was sent, and the operator's flatten that
follows does not count it as on its way: it asks its cancel and closes the whole position beside
it. On spot, with no reduce-only, a market ``-bs`` that fills before its cancel lands and the
flatten's sell together sell twice what the bot holds (the person's own coins on a shared
account). The session now tells the engine of the spec's flatten before the reconciliation
(``Engine.expect_spec_flatten``), and the restart sends no close of its own.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import tests.brokers.ccxt_restart_life as restart_life
from tests.brokers.ccxt_restart_life import (
    Killed,
    bot_broker,
    coinless_spot_for_a_bot,
    hourly_bars,
    life,
    until,
)
from tests.brokers.harness import SYMBOL, VenueHarness
from tests.brokers.live_manifests import live_ccxt_manifest
from tests.runtime.helpers import Scripted
from tests.venues.binance.state import Candle
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.reconcile import spent_close_id
from tradefleet_runtime.sdk import OrderType
from tradefleet_runtime.session import BotSession

LIMIT, STOP, TARGET = 49_000.0, 47_000.0, 53_000.0
QTY = 0.1


# -- through the real ccxt against the fake Binance spot -------------------------------------


def _buy(ctx: Any, _bar: Any) -> None:
    ctx.buy(
        SYMBOL, QTY, order_type=OrderType.LIMIT, price=LIMIT, stop_loss=STOP, take_profit=TARGET
    )


def _fill_entry(harness: VenueHarness, cid: str, quantity: float | None) -> None:
    state = harness.fake.state
    top, low = Decimal("50000"), Decimal(str(LIMIT))
    with state.lock:
        spot = state.spot
        [order] = [o for o in spot.orders.values() if o.client_order_id == cid and o.is_open]
        if quantity is not None:
            order.fill_cap = order.executed_qty + Decimal(str(quantity))
        spot.apply_candle(SYMBOL, Candle(spot.now, top, top, low, top))


def _to_target(harness: VenueHarness) -> None:
    price = Decimal("53500")
    with harness.fake.state.lock:
        spot = harness.fake.state.spot
        spot.apply_candle(SYMBOL, Candle(spot.now, price, price, price, price))


def _venue_took(harness: VenueHarness, cid: str) -> int:
    with harness.fake.state.lock:
        return sum(1 for o in harness.fake.state.spot.orders.values() if o.client_order_id == cid)


def _with_emergency_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot.yaml of the next lives carries the person's ``spec.emergencyStop`` with flatten
    (as the operator writes it into the pod's ConfigMap while the pod is down)."""
    made = live_ccxt_manifest

    def manifest(*args: Any, **kwargs: Any) -> Path:
        path = made(*args, **kwargs)
        with path.open("a") as out:
            out.write("  emergencyStop: {reason: kill switch, flatten: true}\n")
        return path

    monkeypatch.setattr(restart_life, "live_ccxt_manifest", manifest)


def test_a_spec_stop_with_flatten_given_while_down_closes_alone_on_spot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Coinless Binance spot: a bracketed limit buy of 0.1 part-fills 0.04 (children 0.03996,
    the fee taken in BTC), SIGKILL; while down the rest fills, the take-profit sells its
    0.03996, and a person sets ``spec.emergencyStop`` with ``flatten: true``. At the restart
    the flatten the spec owes closes the 0.05994 alone: the venue must take no ``-bs``."""
    entries: list[str] = []

    def part_fill_then_die(session: BotSession, engine: Engine, _journal: Journal) -> None:
        [entry] = [o.client_order_id for o in engine.open_orders() if o.stop_loss]
        entries.append(entry)
        broker = bot_broker(session)
        _fill_entry(harness, entry, 0.04)

        def children_open() -> bool:
            rs = [broker.query_order(f"{entry}-{r}") for r in ("sl", "tp")]
            return all(r is not None and r.status.value == "open" for r in rs)

        until(engine, children_open, "the children at the venue")
        raise Killed

    def look(_session: BotSession, engine: Engine, _journal: Journal) -> None:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            engine.pump()
            engine.send_queued()
            time.sleep(0.05)

    spot = {"exchange": "binance", "market_type": "spot", "initial": 10_000}
    with coinless_spot_for_a_bot(tmp_path, monkeypatch) as harness:
        bars = hourly_bars(3)
        life(tmp_path, harness, bars[:1], part_fill_then_die, strategy=Scripted({0: _buy}), **spot)  # type: ignore[arg-type]
        [entry] = entries
        _fill_entry(harness, entry, None)
        _to_target(harness)
        _with_emergency_stop(monkeypatch)
        life(tmp_path, harness, bars[:2], look, strategy=Scripted(), **spot)  # type: ignore[arg-type]
        took = _venue_took(harness, spent_close_id(entry))
    assert took == 0, "the restart sent the bracket-spent close beside the spec's flatten"
