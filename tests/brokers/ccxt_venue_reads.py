"""The fake futures venues' side of a live ccxt bot's bracketed long (walkthrough W26; no tests
here): the position and every order the venue took by client id, read straight from the
fake's state, and the engine pumped for a while.
"""

from __future__ import annotations

import time
from decimal import Decimal

from tests.brokers.harness import VenueHarness
from tradefleet_runtime.engine.engine import Engine

FUTURES = ("binance-usdm", "bybit")
SL, TP = 48_000.0, 52_000.0


def pump_for(engine: Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        engine.pump()
        engine.send_queued()
        time.sleep(0.02)


def venue_position(harness: VenueHarness) -> Decimal:
    state = harness.fake.state
    with state.lock:
        account = state.accounts[harness.fake.api_key]
        if harness.name == "bybit":
            return Decimal(state.position(account, harness.symbol, 0).size)
        held = account.positions.get(harness.symbol)
        return Decimal(0) if held is None else Decimal(held.amount)


def venue_orders(harness: VenueHarness) -> list[tuple[str, str, str, Decimal]]:
    """Every order the venue ever took for the account: (client id, side, status, executed).
    On Binance USDⓈ-M a conditional order (a stop, a take-profit) is listed once, as its algo
    order, with what its triggered order executed."""
    state = harness.fake.state
    with state.lock:
        if harness.name == "bybit":
            return [
                (o.link_id, o.side.upper(), o.status, Decimal(o.cum_qty))
                for o in state.orders.values()
                if o.account == harness.fake.api_key
            ]
        usdm = state.usdm
        regular = {o.order_id: o for o in usdm.orders.values() if o.account == harness.fake.api_key}
        out = []
        triggered = set()
        for algo in usdm.algo_orders.values():
            if algo.account != harness.fake.api_key:
                continue
            placed = regular.get(algo.actual_order_id) if algo.actual_order_id else None
            if placed is not None:
                triggered.add(placed.order_id)
            executed = Decimal(placed.executed_qty) if placed is not None else Decimal(0)
            out.append((algo.client_algo_id, algo.side.upper(), algo.status, executed))
        out += [
            (o.client_order_id, o.side.upper(), o.status, Decimal(o.executed_qty))
            for o in regular.values()
            if o.order_id not in triggered
        ]
        return out
