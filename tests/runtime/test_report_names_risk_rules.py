"""``tradefleet report`` names the risk rules that vetoed or shrank orders, with their reasons,
as ``backtest`` and ``run`` print them (walkthrough W29): the report is a reprint of the run,
and the user explaining a trade reads why an order did not go from it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from rich.console import Console

from tests.runtime.helpers import HOUR, T0, Scripted, bar, paper_engine
from tests.runtime.risk_helpers import bot_with, manifest
from tests.runtime.test_trailing_native import Mover
from tradefleet_runtime.capabilities import AccountAction, ActionKind
from tradefleet_runtime.cli import _print_outcome, main, risk_lines
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import REFUSED_MOVE, Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, RunOutcome


def test_the_lines_put_each_plugins_most_frequent_reasons_first() -> None:
    lines = risk_lines(
        [
            ("cap", "veto", "too big", 3),
            ("cap", "veto", "closed", 1),
            ("cap", "shrink", "to the cap", 2),
            ("hours", "veto", "", 1),
        ]
    )
    assert lines == [
        "risk: cap vetoed 4 order(s): 3× too big; 1× closed",
        "risk: cap shrank 2 order(s): 2× to the cap",
        "risk: hours vetoed 1 order(s): 1× no reason given",
    ]
    assert risk_lines([("cap", "veto", str(n), 1) for n in range(5)], shown=2)[0].endswith(
        "3 more reason(s) in the journal"
    )


def test_the_report_of_a_run_names_the_rule_that_vetoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = [
        {"name": "pre-trade", "params": {"max_trades_per_day": 1}},
        {"name": "fixed-size", "params": {"quantity": 1}},
    ]
    buys = Scripted({i: (lambda ctx, b: ctx.buy("TEST", 1)) for i in range(3)})
    bot = bot_with(PluginRegistry.discover(), manifest(chain, mode="paper"), buys, tmp_path)
    bars = [Bar("TEST", HOUR, T0 + i * HOUR, 100.0, 100.5, 99.5, 100.0, 1.0) for i in range(3)]
    path = tmp_path / "journal.sqlite"
    journal = Journal(path)
    BotSession(bot, journal, bars=bars).run_to_end()
    journal.close()
    capsys.readouterr()
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "risk: pre-trade vetoed 2 order(s): 2× 1 entries today (at most 1)" in out, out


def test_a_refused_stop_move_is_said_as_one_not_as_a_vetoed_order() -> None:
    lines = risk_lines(
        [
            ("trail", REFUSED_MOVE, "MOVE_STOP of TEST refused: no open position", 2),
            ("trail", "veto", "too big", 1),
        ]
    )
    assert lines == [
        "risk: trail had 2 stop move(s) refused: 2× MOVE_STOP of TEST refused: no open position",
        "risk: trail vetoed 1 order(s): 1× too big",
    ]


def _refused_move_run(tmp_path: Path) -> Engine:
    """A bot long 10 TEST with its stop-loss at 90 whose risk plugin asks to move the stop to
    89, looser: refused by the engine, journaled and counted as the plugin's veto."""
    buys = Scripted({0: lambda c, b: c.buy("TEST", 10, stop_loss=90.0)})
    move = AccountAction(ActionKind.MOVE_STOP, "scripted", "TEST", price=89.0)
    mover = Mover({2: move})
    hooks = RiskHooks(bar_observers=(("mover", mover),), actors=(("mover", mover),))
    engine = paper_engine(Journal(tmp_path / "j.sqlite"), "run-1", buys, hooks=hooks)
    engine.run([bar(i, 100, 104, 100, 104) for i in range(4)])
    assert engine.stats.vetoes.total() == 1  # still counted as the plugin's veto
    return engine


def test_a_runs_summary_and_its_report_say_a_refused_stop_move_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both said "risk: mover vetoed 1 order(s)": no order was vetoed.
    engine = _refused_move_run(tmp_path)
    result = engine.finish()
    engine.journal.close()
    _print_outcome(Console(file=sys.stdout, width=400), "bot", RunOutcome(result, {}))
    backtest_said = capsys.readouterr().out
    assert main(["report", str(tmp_path / "j.sqlite")]) == 0
    report_said = capsys.readouterr().out
    refused = "risk: mover had 1 stop move(s) refused: 1× MOVE_STOP of TEST refused: stop 89"
    for said in (backtest_said, report_said):
        assert refused in said, said
        assert "vetoed" not in said, said
