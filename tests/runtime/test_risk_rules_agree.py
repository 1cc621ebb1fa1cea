"""The open-risk sums written inline for the risk chain's speed agree: ``open_risk``,
``open_risk_and_gross`` and ``position_risk`` summed over the positions, on random accounts."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tradefleet_plugins.risk.rules import (
    gross_exposure,
    open_risk,
    open_risk_and_gross,
    position_risk,
)
from tradefleet_runtime.model import Position

prices = st.floats(1.0, 1_000.0, allow_nan=False)
quantities = st.one_of(st.just(0.0), st.floats(-50.0, 50.0, allow_nan=False))
stop_lists = st.lists(st.tuples(st.floats(0.0, 60.0, allow_nan=False), prices), max_size=4)
accounts = st.dictionaries(
    st.sampled_from(["A", "B", "C", "D"]),
    st.tuples(quantities, prices, st.one_of(st.none(), prices), stop_lists),
    max_size=4,
)


@given(accounts, st.floats(0.0, 0.2, allow_nan=False))
def test_the_three_open_risk_sums_agree(
    account: dict[str, tuple[float, float, float | None, list[tuple[float, float]]]],
    move: float,
) -> None:
    positions = {s: Position(s, q, average) for s, (q, average, _, _) in account.items()}
    marks = {s: mark for s, (_, _, mark, _) in account.items() if mark is not None}
    stops = {s: tuple(levels) for s, (_, _, _, levels) in account.items() if levels}
    risk, gross = open_risk_and_gross(positions, marks, stops, move)
    per_position = sum(
        position_risk(p.quantity, marks.get(s, p.average_price), stops.get(s, ()), move)
        for s, p in positions.items()
    )
    assert risk == open_risk(positions, marks, stops, move)
    assert math.isclose(risk, per_position, rel_tol=1e-12, abs_tol=1e-9)
    assert math.isclose(gross, gross_exposure(positions, marks), rel_tol=1e-12, abs_tol=1e-9)
    assert risk >= 0.0
