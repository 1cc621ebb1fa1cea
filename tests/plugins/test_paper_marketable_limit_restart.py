"""A paper bot's restart does not change what a limit order costs: each case runs the same bars
once straight and once with a restart before the bar that matters, and the fills must agree.

- A take-profit that rested before the restart, gapped through by the first bar after it, is a
  maker's fill at the open. When the broker marked every limit it was handed as new, the
  re-armed take-profit was filled as a taker (``fee_bps`` and the slippage).
- A limit decided at the last bar before the restart, which no bar had met, is a taker's fill
  when its first bar opens through it. One form of the rule took every re-armed limit for one
  that had rested.
- A limit an external signal sends after the restart, before its first bar, is new too. One
  form of the rule took every limit sent between the restore and the first bar for a re-armed
  one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from tradefleet_runtime.model import Bar, Fill, OrderType
from tradefleet_runtime.service.api import Direction, Signal
from tradefleet_runtime.spec.model import Mode

COSTS = {"fee_bps": 10.0, "maker_fee_bps": 0.0, "slippage_bps": 20.0}
CAPITAL = 100_000.0


def _engine(journal: Journal, run_id: str, strategy: Strategy) -> Engine:
    broker = PaperBroker(PaperBrokerParams(**COSTS))
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", CAPITAL))
    start_test_run(journal, run_id)
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, CAPITAL, equity_chunk=1)
    return Engine(config, strategy, broker, journal, restorer=broker)


def _restarted(
    tmp_path: Path, before: Sequence[Bar], first: Strategy, survivor: Strategy
) -> tuple[Engine, Journal]:
    """A bot that ran ``before`` with ``first``, restarted with ``survivor``: the engine of
    its second run, restored, and its journal (to close)."""
    path = tmp_path / "restarted.sqlite"
    journal = Journal(path, durable=True)
    _engine(journal, "run-1", first).run(list(before))
    journal.close()
    journal = Journal(path, durable=True)
    engine = _engine(journal, "run-2", survivor)
    carried = journal.carried_state("bot")
    assert carried is not None
    engine.restore(carried)
    return engine, journal


def _only(fills: Sequence[Fill], keep: Callable[[Fill], bool]) -> Fill:
    (fill,) = [f for f in fills if keep(f)]
    return fill


def _same_costs(after: Fill, unbroken: Fill) -> None:
    assert after.price == pytest.approx(unbroken.price)
    assert after.fee == pytest.approx(unbroken.fee)


def test_a_take_profit_gapped_through_after_a_restart_costs_what_it_did_without_one(
    tmp_path: Path,
) -> None:
    def opener() -> Scripted:
        return Scripted({0: lambda ctx, b: ctx.buy("TEST", 5, stop_loss=95, take_profit=110)})

    before = [bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 100, 101, 99, 100)]
    gap = [bar(3, 115, 116, 114, 115)]  # opens beyond the take-profit at 110
    take_profit = lambda f: f.reason == "take_profit"  # noqa: E731
    # Without a restart: the resting take-profit is gapped through, a maker's fill at the open.
    straight = opener()
    _engine(Journal(tmp_path / "straight.sqlite"), "run-1", straight).run(before + gap)
    unbroken = _only(straight.fills, take_profit)
    assert (unbroken.price, unbroken.fee) == (115.0, 0.0)
    # The same bars with a restart between bar 2 and bar 3.
    survivor = Scripted()
    restarted, journal = _restarted(tmp_path, before, opener(), survivor)
    restarted.run(gap)
    journal.close()
    _same_costs(_only(survivor.fills, take_profit), unbroken)


def test_a_limit_no_bar_met_before_a_restart_is_a_taker_at_its_first_bars_open(
    tmp_path: Path,
) -> None:
    def limit_at_bar_1() -> Scripted:
        return Scripted(
            {1: lambda ctx, b: ctx.buy("TEST", 5, order_type=OrderType.LIMIT, price=100.0)}
        )

    before = [bar(0, 100, 100, 100, 100), bar(1, 105, 106, 104, 105)]  # decided at 1's close
    after = [bar(2, 95, 96, 94, 95)]  # its first bar opens through the buy limit at 100
    straight = limit_at_bar_1()
    _engine(Journal(tmp_path / "straight.sqlite"), "run-1", straight).run(before + after)
    unbroken = _only(straight.fills, lambda f: True)
    assert unbroken.price == pytest.approx(95 * 1.002)
    assert unbroken.fee == pytest.approx(5 * 95 * 1.002 * 0.001)
    # Restarted between bar 1 and bar 2: the limit is re-armed, and bar 2 is still its first.
    survivor = Scripted()
    restarted, journal = _restarted(tmp_path, before, limit_at_bar_1(), survivor)
    restarted.run(after)
    journal.close()
    _same_costs(_only(survivor.fills, lambda f: True), unbroken)


def test_a_signal_limit_sent_before_the_first_bar_after_a_restart_is_new(
    tmp_path: Path,
) -> None:
    def signal_strategy() -> ExternalSignal:
        return ExternalSignal(ExternalSignalParams.model_validate({"entry_order": "limit"}))

    def send(engine: Engine, strategy: ExternalSignal) -> None:
        engine.signals = strategy
        accepted, reason, _ = engine.handle_signal(
            Signal("TEST", Direction.BUY, entry=100.0, volume=5, stop_loss=90.0, take_profit=130.0)
        )
        assert accepted, reason

    before = [bar(0, 100, 100, 100, 100), bar(1, 100, 100, 100, 100)]
    # Bar 2 forms when the signal arrives (its orders are worked from bar 3); bar 3 opens at
    # 95, through the buy limit at 100.
    after = [bar(2, 100, 101, 99, 100), bar(3, 95, 96, 94, 95)]
    buy = lambda f: f.side.value.lower() == "buy"  # noqa: E731
    # Without a restart: the limit's first bar opens through it, a taker's fill.
    straight = signal_strategy()
    engine = _engine(Journal(tmp_path / "straight.sqlite"), "run-1", straight)
    engine.run(before)
    send(engine, straight)
    engine.run(after)
    unbroken = _only(engine.broker.fill_reports(0), buy)  # type: ignore[attr-defined]
    assert unbroken.price == pytest.approx(95 * 1.002)
    assert unbroken.fee == pytest.approx(5 * 95 * 1.002 * 0.001)
    # A restart after bar 1 (nothing working, nothing held): the signal reaches the restarted
    # bot before its first bar. The session shows the strategy the bars an earlier run handled
    # (the broker does not see them): the marks and the clock are bar 1's again.
    survivor = signal_strategy()
    restarted, journal = _restarted(tmp_path, before, Scripted(), survivor)
    restarted.catch_up(before)
    send(restarted, survivor)
    restarted.run(after)
    fills = restarted.broker.fill_reports(0)  # type: ignore[attr-defined]
    journal.close()
    _same_costs(_only(fills, buy), unbroken)
