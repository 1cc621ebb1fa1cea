"""The TradingBot's ``CloseStuck`` condition: a position the bot's own flatten could not close
and will not send again is on ``kubectl describe tb``, next to ``RiskLocked``; it clears when
the runtime reports none, and a starting runtime (which has not read its journal's debts yet)
leaves it as it was."""

from __future__ import annotations

from tests.operator.test_status_mapping import EMPTY, LATER, NOW, snapshot
from tradefleet_operator.names import Phase
from tradefleet_operator.runtime_client import snapshot_from_pb
from tradefleet_operator.snapshot import CloseStuck
from tradefleet_operator.status_mapping import condition_of, reachable_status
from tradefleet_operator.status_model import BotStatus
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

STUCK = (CloseStuck("BTCUSDT", "below_min_quantity", 0.0004),)


def _condition(status: BotStatus) -> tuple[str, str, str]:
    condition = condition_of(status, "CloseStuck")
    assert condition is not None
    return condition.status, condition.reason or "", condition.message or ""


def test_a_stuck_close_sets_the_condition_and_its_end_clears_it() -> None:
    stuck = reachable_status(EMPTY, snapshot(closes_stuck=STUCK), 2, NOW)
    status, reason, message = _condition(stuck)
    assert (status, reason) == ("True", "CloseRefused")
    assert "0.0004 BTCUSDT (refused: below_min_quantity)" in message
    assert "tradefleet stop ADDRESS --flatten" in message

    cleared = reachable_status(stuck, snapshot(), 2, LATER)
    assert _condition(cleared) == ("False", "NoCloseStuck", "no close is stuck")
    assert condition_of(cleared, "CloseStuck").last_transition_time == LATER  # type: ignore[union-attr]


def test_a_starting_runtime_leaves_the_condition_as_it_was() -> None:
    stuck = reachable_status(EMPTY, snapshot(closes_stuck=STUCK), 2, NOW)
    restarting = reachable_status(stuck, snapshot(phase=Phase.PENDING), 2, LATER)
    assert _condition(restarting)[:2] == ("True", "CloseRefused")


def test_the_runtime_s_stuck_closes_are_read_from_its_status() -> None:
    message = pb.StatusSnapshot(
        closes_stuck=[pb.CloseStuck(symbol="BTCUSDT", code="below_min_quantity", position=1.5)]
    )
    assert snapshot_from_pb(message).closes_stuck == (
        CloseStuck("BTCUSDT", "below_min_quantity", 1.5),
    )
    assert snapshot_from_pb(pb.StatusSnapshot()).closes_stuck == ()  # an older runtime
