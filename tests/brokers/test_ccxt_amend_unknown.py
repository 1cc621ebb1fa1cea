"""An amend or a cut the ccxt broker cannot settle at once is still answered, and never with a
refusal the venue's state does not back.

A failed look-up is not "no such order". An amend (or a cut: ``cut_child``, which amends a
child whose entry it does not size) of an order the broker does not follow looks the order up
at the venue. When that look-up failed (a 503 on every try, its retries spent) the amend was
answered REJECTED "amend: no working order with this client order id" (UNKNOWN_ORDER), and a
bracket child not placed yet was marked never to be placed: the engine journaled the order
rejected and dropped it while the venue may hold it — or the stop the position waits for was
never placed. Now such an amend is refused with the failure's code, the order OPEN as it was
(what the engine keeps), and a child is placed as usual once its entry fills.

A cut of a held child is answered. A bracket child below the venue's minimum waits for more
of its entry (Kraken spot: 0.00005 BTC); a cut of it was answered only once the child was
placed — or never. Now the cut is answered at once ("amended": the child waits at its new
size). Bybit and Binance USDⓈ-M take any reduce-only child on the lot step, so no child of
theirs is held.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.brokers.harness import ORDER_PATH, VenueHarness, harness_for, updates
from tests.brokers.resting_bracket import fail_lookups, resting_bracket
from tradefleet_runtime.model import OrderStatus, OrderType, OrderUpdate, ReasonCode


def _working(harness: VenueHarness, client_order_id: str) -> float | None:
    report = harness.broker.query_order(client_order_id)
    if report is None or report.status is not OrderStatus.OPEN:
        return None
    return float(report.quantity)


def _answered(harness: VenueHarness, client_order_id: str) -> OrderUpdate:
    events = harness.wait_for(lambda e: bool(updates(e, client_order_id)), timeout=20.0)
    return updates(events, client_order_id)[0]


@pytest.mark.parametrize("how", ["amend", "cut"])
@pytest.mark.parametrize("name", ["bybit", "binance-usdm", "kraken"])
def test_an_amend_whose_look_up_failed_keeps_the_child_and_it_is_placed(
    name: str, how: str, tmp_path: Path
) -> None:
    """A limit entry rests with its SL and TP (not placed before it fills); the take-profit
    is moved (or cut) while every look-up of it fails: refused with the failure's code, the
    child OPEN as it was; the entry then fills and the take-profit works at the venue."""
    leverage = {} if name == "kraken" else {"leverage": 5}
    with harness_for(name, tmp_path, max_retries=2, **leverage) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        entry, stop, target = resting_bracket(harness, f"lkfail-{how}")
        fail_lookups(harness)
        if how == "amend":
            broker.amend(target, None, 53_000.0)
        else:
            broker.cut_child(target, 0.05, 0.05)
        answer = _answered(harness, target)
        harness.fake.faults.clear()

        assert answer.status is OrderStatus.OPEN, answer  # was REJECTED, UNKNOWN_ORDER
        assert answer.code is not ReasonCode.NONE, answer
        assert answer.code is not ReasonCode.UNKNOWN_ORDER, answer
        assert "amend refused" in answer.reason, answer
        harness.trade_through(48_900.0)
        harness.wait_filled(entry.client_order_id, 0.1)
        harness.wait_for(lambda _e: _working(harness, stop) is not None, timeout=10.0)
        harness.wait_for(lambda _e: _working(harness, target) is not None, timeout=10.0)
        harness.collect()
        said = updates(harness.events, target)
        assert not [u for u in said if u.status is OrderStatus.REJECTED], said


def test_a_cut_of_a_child_held_below_the_minimum_is_answered(tmp_path: Path) -> None:
    """Kraken spot: a limit buy of 0.1 fills 0.00004 at once (below the venue's 0.00005
    minimum: its children wait for more); the engine cuts the take-profit by 0.00002. The cut
    is answered at once ("amended"), and the child is placed at the entry's fills less the
    cut once they fit."""
    with harness_for("kraken", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        harness.fake.faults.inject(
            "partial_fill", path=ORDER_PATH["kraken"], method="POST", fraction=0.0004
        )
        entry = harness.order(
            "held-cut",
            quantity=0.1,
            order_type=OrderType.LIMIT,
            price=50_500.0,
            stop_loss=48_000.0,
            take_profit=52_000.0,
        )
        stop, target = f"{entry.client_order_id}-sl", f"{entry.client_order_id}-tp"
        broker.submit(entry)
        harness.wait_filled(entry.client_order_id, 0.00004)
        time.sleep(0.5)  # the broker's protection of that first part: held, nothing placed
        harness.collect()
        assert _working(harness, stop) is None and _working(harness, target) is None

        broker.cut_child(target, 0.00002, 0.00002)
        answer = _answered(harness, target)  # was none until the child was placed
        assert answer.status is OrderStatus.OPEN and answer.code is ReasonCode.NONE, answer
        assert answer.reason == "amended", answer
        assert _working(harness, target) is None  # still held: 0.00002 is below the minimum

        harness.fake.fill_partials()  # the rest of the entry: 0.1 in all
        harness.wait_filled(entry.client_order_id, 0.1)
        harness.wait_for(lambda _e: _working(harness, target) is not None, timeout=10.0)
        harness.wait_for(lambda _e: _working(harness, stop) is not None, timeout=10.0)
        assert _working(harness, target) == pytest.approx(0.09998)
        assert _working(harness, stop) == pytest.approx(0.1)
