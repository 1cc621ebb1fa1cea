"""After a paper bot's restart, a limit an external signal sends before the first bar is a new
order, not a re-armed one: an open through it is a taker's fill, as without the restart. One
form of the rule took every limit sent between the restore and the first bar for a re-armed one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, Scripted, bar, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.contracts import BrokerContext, Strategy
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill
from tradefleet_runtime.service.api import Direction, Signal
from tradefleet_runtime.spec.model import Mode

COSTS = {"fee_bps": 10.0, "maker_fee_bps": 0.0, "slippage_bps": 20.0}
BEFORE = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100)]
# Bar 2 forms when the signal arrives (its orders are worked from bar 3); bar 3 opens at 95,
# through the buy limit at 100.
AFTER = [bar(2, 100, 101, 99, 100), bar(3, 95, 96, 94, 95)]


def _engine(journal: Journal, run_id: str, strategy: Strategy) -> Engine:
    broker = PaperBroker(PaperBrokerParams(**COSTS))
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 100_000.0))
    start_test_run(journal, run_id)
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 100_000.0, equity_chunk=1)
    engine = Engine(config, strategy, broker, journal, restorer=broker)
    return engine


def _signal_strategy() -> ExternalSignal:
    return ExternalSignal(ExternalSignalParams.model_validate({"entry_order": "limit"}))


def _send(engine: Engine, strategy: ExternalSignal) -> None:
    engine.signals = strategy
    accepted, reason, _ = engine.handle_signal(
        Signal("TEST", Direction.BUY, entry=100.0, volume=5, stop_loss=90.0, take_profit=130.0)
    )
    assert accepted, reason


def _entry(fills: list[Fill]) -> Fill:
    (fill,) = [f for f in fills if f.side.value.lower() == "buy"]
    return fill


def test_a_signal_limit_sent_before_the_first_bar_after_a_restart_is_new(
    tmp_path: Path,
) -> None:
    # Without a restart: the limit's first bar opens through it, a taker's fill.
    straight = _signal_strategy()
    engine = _engine(Journal(tmp_path / "straight.sqlite"), "run-1", straight)
    engine.run(BEFORE)
    _send(engine, straight)
    engine.run(AFTER)
    unbroken = _entry(engine.broker.fill_reports(0))  # type: ignore[attr-defined]
    assert unbroken.price == pytest.approx(95 * 1.002)
    assert unbroken.fee == pytest.approx(5 * 95 * 1.002 * 0.001)

    # The same with a restart after bar 1 (nothing working, nothing held): the signal reaches
    # the restarted bot before its first bar.
    path = tmp_path / "restarted.sqlite"
    first = Journal(path, durable=True)
    _engine(first, "run-1", Scripted()).run(BEFORE)
    first.close()
    second = Journal(path, durable=True)
    survivor = _signal_strategy()
    restarted = _engine(second, "run-2", survivor)
    carried = second.carried_state("bot")
    assert carried is not None
    restarted.restore(carried)
    # The session shows the strategy the bars an earlier run handled (the broker does not see
    # them): the marks and the clock are bar 1's again.
    restarted.catch_up(BEFORE)
    _send(restarted, survivor)
    restarted.run(AFTER)
    after = _entry(restarted.broker.fill_reports(0))  # type: ignore[attr-defined]
    second.close()

    assert after.price == pytest.approx(unbroken.price)
    assert after.fee == pytest.approx(unbroken.fee)
