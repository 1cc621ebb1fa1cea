"""Every order status change the journal records reaches the engine's listener too (the
runtime's ``tradefleet_orders_total``, its log and its event stream are built on it): sent
(pending), acknowledged, filled — a bracket's children as they are placed — and cancelled."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.runtime.helpers import Scripted, flat_bars, paper_engine
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderIntent,
    OrderType,
    OrderUpdate,
    Position,
    RiskDecision,
)


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def on_order(self, order: Order, update: OrderUpdate) -> None:
        assert order.client_order_id == update.client_order_id
        self.changes.append((update.client_order_id, update.status.value))

    def on_fill(self, fill: Fill, order: Order | None, position: Position) -> None:
        pass

    def on_risk(
        self, plugin: str, intent: OrderIntent, decision: RiskDecision, order_id: str
    ) -> None:
        pass

    def on_state(self, kind: str, message: str) -> None:
        pass


def _enter(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy("TEST", 1.0, stop_loss=90.0, take_profit=120.0)


def _rest(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell("TEST", 1.0, order_type=OrderType.LIMIT, price=500.0)


def _cancel_resting(ctx: StrategyContext, _bar: Bar) -> None:
    for order in ctx.open_orders("TEST"):
        if order.price == 500.0:
            ctx.cancel(order.client_order_id)


def test_the_listener_hears_each_status_change_the_journal_records(tmp_path: Path) -> None:
    strategy = Scripted({0: _enter, 1: _rest, 3: _cancel_resting})
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    engine = paper_engine(journal, "r1", strategy)
    recorder = Recorder()
    engine.listener = recorder
    engine.run(iter(flat_bars([100.0, 100.0, 100.0, 100.0, 125.0, 125.0])))
    journaled = Counter(
        (str(order_id), str(status))
        for order_id, status in journal.query(
            "SELECT client_order_id, status FROM order_updates WHERE run_id = 'r1'"
        )
    )
    heard = Counter(recorder.changes)
    assert heard == journaled
    statuses = {status for _, status in heard}
    # The entry and its take-profit filled, the stop and the resting sell were cancelled.
    assert {"pending", "open", "filled", "cancelled"} <= statuses
    journal.close()
