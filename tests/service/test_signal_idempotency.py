"""`signal_id` is an idempotency key: a repeat returns the first outcome and sends nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.paper_bots import (
    SIGNALS,
    eurusd_signal,
    paper_controller,
    paper_manifest,
    wait_for_a_bar,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.service.api import Direction, Signal, SignalConflict, SignalResult
from tradefleet_runtime.service.controller import BotController


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "j.sqlite", durable=True)


def test_repeated_signal_id_returns_the_first_outcome_and_sends_one_order(
    journal: Journal, tmp_path: Path
) -> None:
    controller = _controller(journal)
    controller.start()
    try:
        wait_for_a_bar(controller)
        signal = eurusd_signal("sig-42")
        first = controller.submit_signal(signal)
        again = controller.submit_signal(signal)
        orders_after = [o for o in controller.list_orders(True) if o.parent_id is None]
        other = controller.submit_signal(eurusd_signal("sig-43"))
    finally:
        controller.stop()
        controller.wait(20)
    assert first.accepted, first.reason
    assert again == first
    assert len(orders_after) == 1
    assert other.accepted and other.client_order_id != first.client_order_id
    rows = journal.query("SELECT signal_id, accepted FROM signals ORDER BY signal_id")
    assert [r[0] for r in rows] == ["sig-42", "sig-43"]
    journal.close()

    # After a restart the key still holds: the journal remembers it.
    restarted_journal = Journal(tmp_path / "j.sqlite", durable=True)
    restarted = _controller(restarted_journal)
    restarted.start()
    try:
        wait_for_a_bar(restarted)
        replay = restarted.submit_signal(eurusd_signal("sig-42"))
        orders = [o for o in restarted.list_orders(True) if o.parent_id is None]
    finally:
        restarted.stop()
        restarted.wait(20)
        restarted_journal.close()
    assert replay == first
    assert orders == []  # nothing new in the restarted run


def _controller(journal: Journal) -> BotController:
    return paper_controller(paper_manifest("signal-bot", SIGNALS), journal)


def _sell(signal_id: str) -> Signal:
    return eurusd_signal(signal_id, Direction.SELL)


def _signals_counted(controller: BotController, outcome: str) -> float:
    value = controller.metrics.registry.get_sample_value(
        "tradefleet_signals_total", {"bot": "signal-bot", "outcome": outcome}
    )
    return value or 0.0


def test_a_signal_id_used_again_for_another_signal_is_refused_also_after_a_restart(
    journal: Journal, tmp_path: Path
) -> None:
    """The same id with other content is another signal, not a retry: it is refused naming
    ``signal_id`` (ALREADY_EXISTS), never answered with the first signal's order, also once
    the webhook's replay memory has forgotten the nonce (a restart)."""
    controller = _controller(journal)
    controller.start()
    try:
        wait_for_a_bar(controller)
        first = controller.submit_signal(eurusd_signal("default:alert-0001"))
        with pytest.raises(SignalConflict) as same_run:
            controller.submit_signal(_sell("default:alert-0001"))
        orders_after = [o for o in controller.list_orders(True) if o.parent_id is None]
    finally:
        controller.stop()
        controller.wait(20)
    assert first.accepted, first.reason
    assert len(orders_after) == 1 and orders_after[0].side == "buy"
    assert same_run.value.grpc_code == "ALREADY_EXISTS" and same_run.value.field == "signal_id"
    assert "default:alert-0001" in str(same_run.value)
    assert _signals_counted(controller, "refused") == 1
    assert _signals_counted(controller, "repeated") == 0
    journal.close()

    restarted_journal = Journal(tmp_path / "j.sqlite", durable=True)
    restarted = _controller(restarted_journal)
    restarted.start()
    try:
        wait_for_a_bar(restarted)
        with pytest.raises(SignalConflict):
            restarted.submit_signal(_sell("default:alert-0001"))
        retry = restarted.submit_signal(
            eurusd_signal("default:alert-0001")
        )  # the same signal again
        orders = [o for o in restarted.list_orders(True) if o.parent_id is None]
    finally:
        restarted.stop()
        restarted.wait(20)
        restarted_journal.close()
    assert retry == first  # a retry of the first signal still gets its outcome
    assert orders == []  # nothing traded for either in the restarted run
    assert _signals_counted(restarted, "refused") == 1
    assert _signals_counted(restarted, "accepted") == 0
    assert _signals_counted(restarted, "repeated") == 1


def test_a_signal_journaled_before_digests_is_answered_as_a_repeat(journal: Journal) -> None:
    """A signal id journaled by a release without content digests (schema version 5) cannot
    be compared: it keeps the old answer, the first outcome."""
    journal.record_signal("old-id", 0, True, "", "order-1")
    assert journal.signal_digest("old-id") == ""
    controller = _controller(journal)
    controller.start()
    try:
        wait_for_a_bar(controller)
        result = controller.submit_signal(_sell("old-id"))
    finally:
        controller.stop()
        controller.wait(20)
        journal.close()
    assert result == SignalResult(True, "", "order-1")
