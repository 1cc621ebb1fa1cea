"""``restores-state``: when the engine asks a plugin's state and journals it (paper and live
only, on change), and what the journals read back (``plugin_states``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, Scripted, flat_bars, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.capabilities import Capability, check_object, parse_capabilities
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.journal_port import JournalWriter
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.journal.discarding import DiscardingJournal
from tradefleet_runtime.spec.model import Mode


class Keeper:
    """Keeps the number of bars it saw, changing every ``every`` bars; counts ``state`` calls."""

    def __init__(self, every: int = 1) -> None:
        self.every = every
        self.bars = 0
        self.asked = 0

    def on_bar(self, bar: Any) -> None:
        self.bars += 1

    def saved_state(self) -> dict[str, Any]:
        self.asked += 1
        return {"seen": self.bars // self.every}

    def restore_state(self, state: Any) -> None:
        self.bars = int(state["seen"]) * self.every


def _engine(journal: JournalWriter, mode: str, keeper: Keeper) -> Engine:
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("bot", Mode(mode), ("TEST",), "USD", 10_000.0))
    config = EngineConfig("bot", mode, ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    hooks = RiskHooks(bar_observers=(("keeper", keeper),), state_restorers=(("keeper", keeper),))
    return Engine(config, Scripted(), broker, journal, hooks=hooks)


BARS = flat_bars([100.0 + i for i in range(10)])


def _states(journal: Journal) -> list[Any]:
    return [
        row[0]
        for row in journal.query(
            "SELECT json_extract(data, '$.state.seen') FROM events WHERE kind = 'plugin_state'"
            " ORDER BY id"
        )
    ]


def test_a_paper_bot_journals_a_state_when_it_changes(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    start_test_run(journal, "run-1")
    keeper = Keeper(every=3)
    _engine(journal, "paper", keeper).run(BARS)
    assert keeper.asked == len(BARS)  # after every bar's risk work
    assert _states(journal) == [0, 1, 2, 3]  # only the changes


@pytest.mark.parametrize("batched", [False, True])
def test_a_backtest_never_asks(tmp_path: Path, batched: bool) -> None:
    journal = Journal(tmp_path / "j.sqlite", batched=batched)
    start_test_run(journal, "run-1", mode="backtest")
    keeper = Keeper()
    _engine(journal, "backtest", keeper).run(BARS)
    journal.flush()
    assert keeper.asked == 0 and _states(journal) == []


def test_a_batched_journal_is_never_asked_to_keep_one(tmp_path: Path) -> None:
    """A journal that commits in large batches (a backtest's) is no restart point."""
    journal = Journal(tmp_path / "j.sqlite", batched=True)
    start_test_run(journal, "run-1")
    keeper = Keeper()
    _engine(journal, "paper", keeper).run(BARS)
    assert keeper.asked == 0


def test_an_optimiser_trial_on_the_discarding_journal_never_asks() -> None:
    journal = DiscardingJournal()
    journal.start_run(
        run_id="t",
        bot="bot",
        mode="backtest",
        currency="USD",
        initial_capital=10_000.0,
        timeframe_s=HOUR,
        config_hash="x",
        manifest={},
    )
    keeper = Keeper()
    _engine(journal, "backtest", keeper).run(BARS)
    assert keeper.asked == 0
    assert journal.plugin_states("bot") == {}


def _event(journal: Journal, plugin: Any, state: Any) -> None:
    journal.record_event(0, "plugin_state", "x", {"plugin": plugin, "state": state})


def test_the_journal_reads_the_newest_state_of_each_plugin_of_earlier_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.sqlite"
    journal = Journal(path, durable=True)
    start_test_run(journal, "run-1")
    _event(journal, "exits", {"n": 1})
    _event(journal, "other", {"n": 10})
    _event(journal, "exits", {"n": 2})
    _event(journal, "", {"n": 99})  # no plugin's
    journal.close()

    journal = Journal(path, durable=True)
    start_test_run(journal, "run-2")
    _event(journal, "exits", {"n": 3})
    _event(journal, "other", [1, 2])  # not a state object: the newest, so none is taken
    journal.close()

    journal = Journal(path, durable=True)
    start_test_run(journal, "bt", mode="backtest")  # a backtest's never carries over
    _event(journal, "exits", {"n": 4})
    journal.close()
    journal = Journal(path, durable=True)
    start_test_run(journal, "someone-else", bot="another-bot")  # nor another bot's
    _event(journal, "exits", {"n": 5})
    journal.close()

    journal = Journal(path, durable=True)
    start_test_run(journal, "run-3")
    assert journal.plugin_states("another-bot") == {"exits": {"n": 5}}
    _event(journal, "exits", {"n": 6})  # this run's own: not an earlier run's
    assert journal.plugin_states("bot") == {"exits": {"n": 3}}
    journal.close()


def test_a_first_start_reads_no_state(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    start_test_run(journal, "run-1")
    assert journal.plugin_states("bot") == {}
    journal.close()


def test_the_capability_is_checked_both_ways_at_load() -> None:
    declared = frozenset({Capability.RESTORES_STATE})
    observes = frozenset({Capability.OBSERVES_BARS})
    assert check_object("risk", Keeper(), declared | observes) == []
    undeclared = check_object("risk", Keeper(), observes)
    assert [u.split(" but ")[0] for u in undeclared] == [
        "has method 'saved_state'",
        "has method 'restore_state'",
    ]
    assert all("'restores-state'" in u for u in undeclared)
    missing = check_object("risk", object(), declared)
    assert [m.split(" but ")[1] for m in missing] == [
        "has no method 'saved_state'",
        "has no method 'restore_state'",
    ]
    assert parse_capabilities("broker", ["restores-state"])[1] == [
        "capability 'restores-state' is not for broker plugins"
    ]


def test_two_instances_of_one_plugin_each_keep_their_own_state(tmp_path: Path) -> None:
    """Two ``keeper``s in the chain (another params each): journaled as ``keeper`` and
    ``keeper#2``, and each handed back its own at the restart, not the last one written."""
    journal = Journal(tmp_path / "j.sqlite", durable=True)
    start_test_run(journal, "run-1")
    slow, fast = Keeper(every=5), Keeper(every=1)
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("bot", Mode.PAPER, ("TEST",), "USD", 10_000.0))
    config = EngineConfig("bot", "paper", ("TEST",), HOUR, 10_000.0, equity_chunk=1)
    pair = (("keeper", slow), ("keeper", fast))
    hooks = RiskHooks(bar_observers=pair, state_restorers=pair)
    Engine(config, Scripted(), broker, journal, hooks=hooks).run(BARS)
    start_test_run(journal, "run-2")  # the restart: run-1 is an earlier run now
    states = journal.plugin_states("bot")
    assert states == {"keeper": {"seen": 2}, "keeper#2": {"seen": 10}}

    slow2, fast2 = Keeper(every=5), Keeper(every=1)
    again = (("keeper", slow2), ("keeper", fast2))
    engine = Engine(config, Scripted(), broker, journal, hooks=RiskHooks(state_restorers=again))
    engine.restore_states(states)
    assert (slow2.bars, fast2.bars) == (10, 10)  # 2 x 5 and 10 x 1: each its own
