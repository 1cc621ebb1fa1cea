"""A paper bot's restart does not change what a resting limit order costs: a take-profit that
rested before the restart, gapped through by the first bar after it, is a maker's fill at the
open, as without the restart.

A restart re-arms the journal's working orders through ``PaperBroker.submit``. When the broker
marked every limit it was handed as just arrived, that take-profit was filled as a taker
(``fee_bps`` and the slippage). Orders submitted between a restart's ``restore_account`` and
its first bar are the re-armed ones, and are not new.
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
from tradefleet_runtime.model import Fill
from tradefleet_runtime.spec.model import Mode

COSTS = {"fee_bps": 10.0, "maker_fee_bps": 0.0, "slippage_bps": 20.0}


def _engine(journal: Journal, run_id: str, strategy: Scripted) -> Engine:
    broker = PaperBroker(PaperBrokerParams(**COSTS))
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    start_test_run(journal, run_id)
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    return Engine(config, strategy, broker, journal, restorer=broker)


def _opener() -> Scripted:
    return Scripted({0: lambda ctx, b: ctx.buy("TEST", 5, stop_loss=95, take_profit=110)})


BEFORE = [bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 100, 101, 99, 100)]
GAP = [bar(3, 115, 116, 114, 115)]  # opens beyond the take-profit at 110


def _take_profit(fills: list[Fill]) -> Fill:
    (fill,) = [f for f in fills if f.reason == "take_profit"]
    return fill


def test_a_take_profit_gapped_through_after_a_restart_costs_what_it_did_without_one(
    tmp_path: Path,
) -> None:
    # Without a restart: the resting take-profit is gapped through, a maker's fill at the open.
    straight = _opener()
    _engine(Journal(tmp_path / "straight.sqlite"), "run-1", straight).run(BEFORE + GAP)
    unbroken = _take_profit(straight.fills)
    assert (unbroken.price, unbroken.fee) == (115.0, 0.0)

    # The same bars with a restart between bar 2 and bar 3.
    path = tmp_path / "restarted.sqlite"
    first = Journal(path, durable=True)
    _engine(first, "run-1", _opener()).run(BEFORE)
    first.close()
    second = Journal(path, durable=True)
    survivor = Scripted()
    restarted = _engine(second, "run-2", survivor)
    carried = second.carried_state("bot")
    assert carried is not None
    restarted.restore(carried)
    restarted.run(GAP)
    after = _take_profit(survivor.fills)
    second.close()

    assert after.price == pytest.approx(unbroken.price)
    assert after.fee == pytest.approx(unbroken.fee)
