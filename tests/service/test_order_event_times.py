"""An order event is stamped when its status changed (the journal's update row), not when the
order was made: a stop-loss filled hours after it was placed read as filled at its placing."""

from __future__ import annotations

from pathlib import Path

from tests.service.paper_bots import (
    paper_controller,
    paper_manifest,
    run_until_the_data_ends,
    short_eurusd,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.event_kinds import EventKind


def test_order_events_carry_the_time_of_their_status_change(tmp_path: Path) -> None:
    data = short_eurusd(tmp_path, bars=200)
    strategy = {
        "name": "ema-cross",
        "params": {"fast": 3, "slow": 8, "stop_loss_pct": 0.001, "take_profit_pct": 0.001},
    }
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    controller = paper_controller(paper_manifest("times", strategy, data), journal, speed=0.0)
    events = controller.subscribe_events(100_000)
    run_until_the_data_ends(controller)
    assert controller.phase is Phase.STOPPED, controller.failure
    seen: dict[tuple[str, str], int] = {}
    while (event := events.get(timeout=0.1)) is not None:
        if event.kind is EventKind.ORDER:
            key = (str(event.data["client_order_id"]), str(event.data["status"]))
            seen.setdefault(key, event.ts)
    try:
        journaled = {
            (order_id, status): ts
            for order_id, status, ts in journal.query(
                "SELECT client_order_id, status, ts FROM order_updates ORDER BY id DESC"
            )
        }
        created = dict(journal.query("SELECT client_order_id, created_ts FROM orders"))
    finally:
        journal.close()
    filled = {key: ts for key, ts in seen.items() if key[1] == "filled"}
    later = [key for key, ts in filled.items() if ts > created[key[0]]]
    assert later, "no order filled after the bar it was made at: the test shows nothing"
    assert all(filled[key] == journaled[key] for key in filled), (filled, journaled)
