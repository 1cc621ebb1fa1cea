"""How each fill a restart books reads in its order's status log (``fill_statuses``): one row
per event, saying what was found. A fill leaves its order ``filled`` only when it is the last
missed fill of an order the venue reports filled, and that row is the venue's word (its reason
and order id: the closing row is not written again); every other fill of an order the venue
closed or still works was a part (``partially_filled``); a fill of an order the plan holds no
report of stays ``filled`` under the venue's word; a position adopted from the venue says so.
"""

from __future__ import annotations

from tradefleet_runtime.model import Fill, OrderReport, OrderStatus, OrderType, Side
from tradefleet_runtime.reconcile import (
    ADOPTED_REASON,
    DOWN_FILLED_REASON,
    DOWN_PART_REASON,
    FillStatus,
    ReconcilePlan,
    fill_statuses,
)

T0 = 1_700_000_000
PART = FillStatus(OrderStatus.PARTIALLY_FILLED, DOWN_PART_REASON)


def _fill(order_id: str, quantity: float, ts: int, reason: str = "limit") -> Fill:
    return Fill(
        order_id, "BTCUSDT", Side.BUY, quantity, 100.0, 0.0, ts, f"t-{order_id}-{ts}", reason
    )


def _report(order_id: str, filled: float, status: OrderStatus) -> OrderReport:
    return OrderReport(
        order_id, "v-" + order_id, "BTCUSDT", Side.BUY, OrderType.LIMIT, 0.1, filled, status,
        T0 + 600, price=100.0,
    )  # fmt: skip


def test_an_order_filled_in_two_parts_reads_part_then_the_venues_word() -> None:
    # Two orders' fills interleaved: each one's last fill is its own.
    plan = ReconcilePlan(
        missed_fills=(_fill("a", 0.04, T0), _fill("b", 0.1, T0 + 1), _fill("a", 0.06, T0 + 2)),
        closed=(
            ("a", _report("a", 0.1, OrderStatus.FILLED)),
            ("b", _report("b", 0.1, OrderStatus.FILLED)),
        ),
    )
    rows, said = fill_statuses(plan)
    assert rows == (
        PART,
        FillStatus(OrderStatus.FILLED, DOWN_FILLED_REASON, "v-b"),
        FillStatus(OrderStatus.FILLED, DOWN_FILLED_REASON, "v-a"),
    )
    assert said == {"a", "b"}


def test_a_part_of_an_order_cancelled_or_still_working_is_partial() -> None:
    plan = ReconcilePlan(
        missed_fills=(_fill("gone", 0.04, T0), _fill("works", 0.02, T0 + 1)),
        closed=(("gone", _report("gone", 0.04, OrderStatus.CANCELLED)),),
        adopted=(_report("works", 0.02, OrderStatus.PARTIALLY_FILLED),),
    )
    rows, said = fill_statuses(plan)
    assert rows == (PART, PART)
    assert said == frozenset()  # the cancel is a row of its own


def test_a_fill_of_an_order_without_a_report_and_an_adopted_position_say_what_they_are() -> None:
    adjustment = _fill("tfx-reconcile", 0.1, T0 + 5, ADOPTED_REASON)
    plan = ReconcilePlan(missed_fills=(_fill("unknown", 0.1, T0),), adjustments=(adjustment,))
    rows, said = fill_statuses(plan)
    assert rows == (
        FillStatus(OrderStatus.FILLED, DOWN_FILLED_REASON),
        FillStatus(OrderStatus.FILLED, ADOPTED_REASON),
    )
    assert said == frozenset()
