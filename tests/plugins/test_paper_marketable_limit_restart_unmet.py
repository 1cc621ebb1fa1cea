"""A paper bot restarted between bars re-arms the limit its last bar decided; no bar had met it
before the restart, so the first bar after it is the limit's first, and an open through it is
a taker's fill, as without the restart (a deploy or a rescheduled pod between two bars is the
ordinary restart). One form of the rule took every re-armed limit for one that had rested.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, Scripted, bar, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, OrderType
from tradefleet_runtime.spec.model import Mode

COSTS = {"fee_bps": 10.0, "maker_fee_bps": 0.0, "slippage_bps": 20.0}
BEFORE = [bar(0, 100, 100, 100, 100), bar(1, 105, 106, 104, 105)]  # limit decided at bar 1's close
AFTER = [bar(2, 95, 96, 94, 95)]  # its first bar opens through the buy limit at 100


def _engine(journal: Journal, run_id: str, strategy: Scripted) -> Engine:
    broker = PaperBroker(PaperBrokerParams(**COSTS))
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    start_test_run(journal, run_id)
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    return Engine(config, strategy, broker, journal, restorer=broker)


def _limit_at_bar_1() -> Scripted:
    return Scripted({1: lambda ctx, b: ctx.buy("TEST", 5, order_type=OrderType.LIMIT, price=100.0)})


def _entry(fills: list[Fill]) -> Fill:
    (fill,) = fills
    return fill


def test_a_limit_no_bar_met_before_a_restart_is_a_taker_at_its_first_bars_open(
    tmp_path: Path,
) -> None:
    straight = _limit_at_bar_1()
    _engine(Journal(tmp_path / "straight.sqlite"), "run-1", straight).run(BEFORE + AFTER)
    unbroken = _entry(straight.fills)
    assert unbroken.price == pytest.approx(95 * 1.002)
    assert unbroken.fee == pytest.approx(5 * 95 * 1.002 * 0.001)

    # Restarted between bar 1 and bar 2: the limit is re-armed, and bar 2 is still its first.
    path = tmp_path / "restarted.sqlite"
    first = Journal(path, durable=True)
    _engine(first, "run-1", _limit_at_bar_1()).run(BEFORE)
    first.close()
    second = Journal(path, durable=True)
    survivor = Scripted()
    restarted = _engine(second, "run-2", survivor)
    carried = second.carried_state("bot")
    assert carried is not None
    assert len(carried.working) == 1
    restarted.restore(carried)
    restarted.run(AFTER)
    after = _entry(survivor.fills)
    second.close()

    assert after.price == pytest.approx(unbroken.price)
    assert after.fee == pytest.approx(unbroken.fee)
