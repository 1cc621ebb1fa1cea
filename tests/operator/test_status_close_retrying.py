"""The TradingBot's ``CloseRetrying`` condition: a position the bot's own flatten asked to close
that the venue keeps refusing (for reasons a later try may pass) is on ``kubectl describe tb``,
next to ``CloseStuck``; it clears when the runtime reports none, and a starting runtime leaves
it as it was."""

from __future__ import annotations

from tests.operator.test_status_mapping import EMPTY, LATER, NOW, snapshot
from tradefleet_operator.names import Phase
from tradefleet_operator.runtime_client import snapshot_from_pb
from tradefleet_operator.snapshot import CloseRetrying
from tradefleet_operator.status_mapping import condition_of, reachable_status
from tradefleet_operator.status_model import BotStatus
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

RETRYING = (CloseRetrying("BTCUSDT", "venue_unavailable", 0.5, 3, 1_767_225_600),)


def _condition(status: BotStatus) -> tuple[str, str, str]:
    condition = condition_of(status, "CloseRetrying")
    assert condition is not None
    return condition.status, condition.reason or "", condition.message or ""


def test_a_close_refused_again_and_again_sets_the_condition_and_its_end_clears_it() -> None:
    failing = reachable_status(EMPTY, snapshot(closes_retrying=RETRYING), 2, NOW)
    status, reason, message = _condition(failing)
    assert (status, reason) == ("True", "CloseRefusedRepeatedly")
    assert "0.5 BTCUSDT (refused 3 times in a row, last: venue_unavailable)" in message
    assert "tradefleet stop ADDRESS --flatten" in message
    assert _condition_of_stuck(failing) == "False"  # not stuck: the bot still sends it

    cleared = reachable_status(failing, snapshot(), 2, LATER)
    assert _condition(cleared) == ("False", "NoCloseRetrying", "no close is being refused")


def _condition_of_stuck(status: BotStatus) -> str:
    condition = condition_of(status, "CloseStuck")
    assert condition is not None
    return condition.status


def test_a_starting_runtime_leaves_the_condition_as_it_was() -> None:
    failing = reachable_status(EMPTY, snapshot(closes_retrying=RETRYING), 2, NOW)
    restarting = reachable_status(failing, snapshot(phase=Phase.PENDING), 2, LATER)
    assert _condition(restarting)[:2] == ("True", "CloseRefusedRepeatedly")


def test_the_runtime_s_retrying_closes_are_read_from_its_status() -> None:
    message = pb.StatusSnapshot(
        closes_retrying=[
            pb.CloseRetrying(
                symbol="BTCUSDT",
                code="market_closed",
                position=-1.5,
                refusals=4,
                since_ts=1_767_225_600,
            )
        ]
    )
    assert snapshot_from_pb(message).closes_retrying == (
        CloseRetrying("BTCUSDT", "market_closed", -1.5, 4, 1_767_225_600),
    )
    assert snapshot_from_pb(pb.StatusSnapshot()).closes_retrying == ()  # an older runtime
