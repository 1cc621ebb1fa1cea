"""A risk event names the order it decided on and the decision's code: a veto in the event
stream (or the trade log) could not be linked to the journal's decision or to ListOrders, and
the metrics' reason word was missing from it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.service.paper_bots import (
    FIXED_SIZE,
    paper_controller,
    paper_manifest,
    run_until_the_data_ends,
    short_eurusd,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderIntent, RiskDecision, Side
from tradefleet_runtime.service.event_kinds import EventKind
from tradefleet_runtime.trade_log import TradeLogListener


def test_a_risk_event_carries_its_order_id_and_code(tmp_path: Path) -> None:
    data = short_eurusd(tmp_path, bars=200)
    strategy = {"name": "ema-cross", "params": {"fast": 3, "slow": 8}}
    # Every order is larger than the cap: pre-trade shrinks each one.
    risk = (FIXED_SIZE, {"name": "pre-trade", "params": {"max_order_quantity": 1e-6}})
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    manifest = paper_manifest("vetoes", strategy, data, risk=risk)
    controller = paper_controller(manifest, journal, speed=0.0)
    events = controller.subscribe_events(100_000)
    run_until_the_data_ends(controller)
    vetoes = []
    while (event := events.get(timeout=0.1)) is not None:
        if event.kind is EventKind.RISK and event.data.get("action") == "shrink":
            vetoes.append(event.data)
    try:
        journaled = {
            (str(order_id), str(code))
            for order_id, code in journal.query(
                "SELECT client_order_id, reason FROM risk_decisions WHERE action = 'shrink'"
            )
        }
    finally:
        journal.close()
    assert vetoes, "nothing was shrunk: the test shows nothing"
    ids = {str(data["client_order_id"]) for data in vetoes}
    assert all(ids) and ids == {order_id for order_id, _ in journaled}
    codes = {data["code"] for data in vetoes}
    assert len(codes) == 1 and all(codes), vetoes[0]


def test_the_trade_logs_risk_line_names_the_order(caplog: pytest.LogCaptureFixture) -> None:
    listener = TradeLogListener("bot", "USD")
    intent = OrderIntent("EURUSD", Side.BUY, 1000.0)
    with caplog.at_level(logging.INFO, logger="tradefleet.trading"):
        listener.on_risk("pre-trade", intent, RiskDecision.veto("too big", "too_big"), "b-1-x")
    (record,) = [r for r in caplog.records if r.name == "tradefleet.trading"]
    fields = record.fields  # type: ignore[attr-defined]
    assert (fields["event"], fields["client_order_id"], fields["code"]) == (
        "risk",
        "b-1-x",
        "too_big",
    )
