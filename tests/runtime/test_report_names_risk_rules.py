"""``tradefleet report`` names the risk rules that vetoed or shrank orders, with their reasons,
as ``backtest`` and ``run`` print them (walkthrough W29): the report is a reprint of the run,
and the user explaining a trade reads why an order did not go from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_runtime.cli import main, risk_lines
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession


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
