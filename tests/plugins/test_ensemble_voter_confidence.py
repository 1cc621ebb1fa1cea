"""``ensemble``'s per-voter rule: with ``min_voter_confidence`` a child's vote counts toward the
quorum only when its confidence is strictly above it, and the mean of the votes that count
must still reach ``min_confidence`` (>=). "Act only when 2 of 3 voters agree, each with
confidence above 70%" is ``quorum: 2, min_voter_confidence: 0.7``. Left at 0 (the default)
every vote counts, as before the rule.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.helpers import run as run_engine
from tradefleet_plugins.risk.sizers import FixedSize
from tradefleet_plugins.risk.sizers_params import FixedSizeParams
from tradefleet_plugins.strategies.ensemble import Ensemble
from tradefleet_plugins.strategies.ensemble_params import EnsembleParams
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.model import Bar


def _buy(ctx: StrategyContext, bar: Bar) -> None:
    ctx.buy(bar.symbol)


def _held(confidences: tuple[float, ...], voting: tuple[bool, ...], **params: float) -> int:
    """Positions the ensemble holds at the end of a run whose voters buy on the first bar."""
    children = [
        (f"voter-{i}", Scripted(actions={0: _buy} if votes else {}), confidence)
        for i, (confidence, votes) in enumerate(zip(confidences, voting, strict=True))
    ]
    chosen = EnsembleParams(**{"quorum": 2, "min_confidence": 0.7, **params})
    ensemble = Ensemble(chosen, children=children)
    sizer = FixedSize(FixedSizeParams(quantity=1.0))
    engine, _ = run_engine(ensemble, flat_bars([100.0] * 4), risk=[("fixed-size", sizer)])
    return len(engine.portfolio.open_positions)  # the ensemble's entry is held to the end


def test_two_voters_each_above_the_floor_trade() -> None:
    """The control: two voters above 70% agree."""
    assert _held((0.9, 0.8, 0.9), (True, True, False), min_voter_confidence=0.7) == 1


def test_a_voter_below_the_floor_does_not_make_a_quorum() -> None:
    traded = _held((0.95, 0.45, 0.9), (True, True, False), min_voter_confidence=0.7)
    assert traded == 0, (
        "ensemble traded on 2 agreeing voters of confidence 0.95 and 0.45: their mean (0.70) "
        "reaches min_confidence, but only one voter has a confidence above 70%"
    )


def test_voters_at_exactly_the_floor_do_not_count() -> None:
    traded = _held((0.7, 0.7, 0.9), (True, True, False), min_voter_confidence=0.7)
    assert traded == 0, "min_voter_confidence 0.7 is strict (> 0.7); the ensemble acted at 0.70"


def test_a_low_voter_left_out_leaves_the_quorum_of_the_others() -> None:
    """Three agree, one of them below the floor: the two above it still make the quorum."""
    assert _held((0.95, 0.45, 0.9), (True, True, True), min_voter_confidence=0.7) == 1


def test_the_mean_rule_is_inclusive_and_applies_to_the_votes_that_count() -> None:
    """A mean of exactly min_confidence acts (>=); the votes that count set the mean."""
    assert _held((0.75, 0.65, 0.9), (True, True, False)) == 1  # mean 0.70: acts
    assert _held((0.8, 0.75, 0.9), (True, True, False), min_confidence=0.8) == 0  # 0.775
    assert (
        _held((0.85, 0.75, 0.9), (True, True, True), min_confidence=0.85, min_voter_confidence=0.78)
        == 1
    )  # 0.85 and 0.9 count, 0.75 does not: 0.875 (all three: 0.833)


def test_by_default_every_vote_counts_as_before() -> None:
    assert EnsembleParams().min_voter_confidence == 0.0
    assert _held((0.95, 0.45, 0.9), (True, True, False)) == 1
    assert _held((0.0, 0.0, 0.0), (True, True, False), min_confidence=0.0) == 1


def test_a_floor_leaving_fewer_children_than_the_quorum_is_refused_naming_it() -> None:
    children = [{"name": "ema-cross", "confidence": c} for c in (0.9, 0.7, 0.6)]
    with pytest.raises(ValidationError) as raised:
        EnsembleParams.model_validate(
            {"children": children, "quorum": 2, "min_voter_confidence": 0.7}
        )
    error = raised.value.errors()[0]
    assert error["loc"] == ("min_voter_confidence",)
    assert "leaves 1 of the children" in error["msg"] and "quorum of 2" in error["msg"]
    ok = EnsembleParams.model_validate(
        {"children": children, "quorum": 2, "min_voter_confidence": 0.65}
    )
    assert ok.min_voter_confidence == 0.65


@pytest.mark.parametrize(
    ("floor", "why"), [(-0.1, "greater than or equal to 0"), (1.0, "less than 1")]
)
def test_a_floor_outside_0_to_1_is_refused(floor: float, why: str) -> None:
    """At 1 no confidence (at most 1) is above it: the ensemble could never trade."""
    with pytest.raises(ValidationError) as raised:
        EnsembleParams(min_voter_confidence=floor)
    (error,) = raised.value.errors()
    assert error["loc"] == ("min_voter_confidence",) and why in error["msg"], error
