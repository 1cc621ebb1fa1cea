"""The conditions that report the runtime's own view (``BrokerConnected``, ``RiskLocked``,
``CloseStuck``, ``CloseRetrying``) while the operator cannot reach the runtime, or it failed.

They turn ``Unknown`` with reason ``RuntimeUnreachable``, the message saying since when the runtime
has not answered and what the condition said when it was last heard. Before, only ``Ready``
flipped, and ``BrokerConnected=True`` ("the broker connection is up") stayed while the pod was
gone. The phase stays as last reported (``TradefleetBotTargetsMissing`` counts such a bot).
"""

from __future__ import annotations

from tradefleet_operator.names import Phase
from tradefleet_operator.snapshot import CloseStuck, RiskState, RuntimeSnapshot
from tradefleet_operator.status_mapping import (
    RUNTIME_VIEW,
    condition_of,
    failed_status,
    reachable_status,
    set_condition,
    status_changes,
    unreachable_status,
)
from tradefleet_operator.status_model import BotStatus, Condition

NOW, LATER, LATEST = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"
STUCK = (CloseStuck("BTCUSDT", "below_min_quantity", 0.0004),)


def _running(**fields: object) -> BotStatus:
    snapshot = RuntimeSnapshot(phase=Phase.RUNNING, broker_connected=True, **fields)  # type: ignore[arg-type]
    status = reachable_status(BotStatus(), snapshot, 3, NOW)
    # Conditions the operator sees for itself, not through the runtime.
    conditions = set_condition(status.conditions, "Reconciled", True, "UpToDate", "ok", 3, NOW)
    return status.model_copy(update={"conditions": conditions})


def _get(status: BotStatus, type_: str) -> Condition:
    condition = condition_of(status, type_)
    assert condition is not None, type_
    return condition


def test_broker_connected_does_not_stay_true_while_the_runtime_is_unreachable() -> None:
    connected = _running()
    assert _get(connected, "BrokerConnected").status == "True"

    lost = unreachable_status(connected, "tb-live.trading.svc:50051: UNAVAILABLE", 3, LATER)

    ready = _get(lost, "Ready")
    assert (ready.status, ready.reason) == ("False", "RuntimeUnreachable")
    broker = _get(lost, "BrokerConnected")
    assert (broker.status, broker.reason) == ("Unknown", "RuntimeUnreachable")
    assert broker.last_transition_time == LATER
    assert broker.message == (
        f"no answer from the runtime since {LATER}; when last heard: "
        "True (Connected): the broker connection is up"
    )
    assert lost.phase is Phase.RUNNING  # deliberate: TradefleetBotTargetsMissing counts it


def test_every_runtime_view_condition_turns_unknown_and_the_others_stay() -> None:
    locked = (RiskState("daily-loss", locked=True, reason="loss limit"),)
    running = _running(risk=locked, closes_stuck=STUCK)
    lost = unreachable_status(running, "x: UNAVAILABLE", 3, LATER)
    assert set(RUNTIME_VIEW) == {"BrokerConnected", "RiskLocked", "CloseStuck", "CloseRetrying"}
    for type_ in RUNTIME_VIEW:
        condition = _get(lost, type_)
        assert (condition.status, condition.reason) == ("Unknown", "RuntimeUnreachable"), type_
    assert _get(lost, "Reconciled") == _get(running, "Reconciled")
    # What a person must still do is kept in the words.
    stuck = _get(lost, "CloseStuck").message
    assert "when last heard: True (CloseRefused): 0.0004 BTCUSDT" in stuck
    assert "daily-loss: loss limit" in _get(lost, "RiskLocked").message


def test_later_reads_without_an_answer_write_nothing() -> None:
    lost = unreachable_status(_running(), "x: UNAVAILABLE", 3, LATER)
    again = unreachable_status(lost, "x: UNAVAILABLE", 3, LATEST)
    assert status_changes(lost.wire(), again) == {}
    assert f"since {LATER}" in _get(again, "BrokerConnected").message


def test_a_failed_runtime_claims_no_broker_connection_either() -> None:
    failed = failed_status(_running(), "journal refused: schema 9", 3, LATER)
    assert failed.phase is Phase.FAILED
    assert (_get(failed, "Ready").status, _get(failed, "Ready").reason) == (
        "False",
        "RuntimeFailed",
    )
    broker = _get(failed, "BrokerConnected")
    assert (broker.status, broker.reason) == ("Unknown", "RuntimeUnreachable")
    # Unreachable first, found failed next: the same words, written once.
    lost = unreachable_status(_running(), "x: UNAVAILABLE", 3, LATER)
    then_failed = failed_status(lost, "exit 1", 3, LATEST)
    assert _get(then_failed, "BrokerConnected") == _get(lost, "BrokerConnected")


def test_a_bot_never_heard_gets_no_runtime_view_conditions() -> None:
    lost = unreachable_status(BotStatus(), "x: UNAVAILABLE", 1, NOW)
    assert [c.type for c in lost.conditions or ()] == ["Ready"]


def test_the_answer_that_comes_back_replaces_them() -> None:
    lost = unreachable_status(_running(closes_stuck=STUCK), "x: UNAVAILABLE", 3, LATER)
    back = reachable_status(
        lost, RuntimeSnapshot(phase=Phase.RUNNING, broker_connected=True), 3, LATEST
    )
    broker = _get(back, "BrokerConnected")
    assert (broker.status, broker.reason, broker.last_transition_time) == (
        "True",
        "Connected",
        LATEST,
    )
    assert _get(back, "CloseStuck").status == "False"


def test_a_runtime_answering_again_while_starting_says_so_without_nesting() -> None:
    lost = unreachable_status(_running(closes_stuck=STUCK), "x: UNAVAILABLE", 3, LATER)
    starting = reachable_status(lost, RuntimeSnapshot(phase=Phase.PENDING), 3, LATEST)
    stuck = _get(starting, "CloseStuck")
    # CloseStuck is set only once the runtime has read its journal: not an outage any more.
    assert (stuck.status, stuck.reason) == ("Unknown", "RuntimeStarting")
    assert "no answer" not in stuck.message
    assert stuck.last_transition_time == LATER
    assert "when last heard: True (CloseRefused): 0.0004 BTCUSDT" in stuck.message
    # Lost again while starting: the words of the last real answer, once.
    lost_again = unreachable_status(starting, "x: UNAVAILABLE", 3, "2026-01-01T00:15:00Z")
    message = _get(lost_again, "CloseStuck").message
    assert message.count("when last heard") == 1
    assert "True (CloseRefused): 0.0004 BTCUSDT" in message
