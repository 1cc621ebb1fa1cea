"""A run's ``run_started`` event carries when it started: a paper or live run the wall clock
(``tradefleet events`` shows it, where it showed "-"), a backtest 0 (its time is its bars', and
it has none yet, so two backtests of the same data journal the same)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest

EXAMPLE = Path(__file__).parents[2] / "examples" / "bots" / "eurusd-ema-cross.yaml"
NOW = 1_767_225_600  # 2026-01-01 00:00 UTC


@pytest.mark.parametrize(("mode", "expected"), [("paper", NOW), ("backtest", 0)])
def test_run_started_is_stamped_with_the_start_of_a_paper_run_only(
    tmp_path: Path, mode: str, expected: int
) -> None:
    document = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    document["spec"]["mode"] = mode
    bot = assemble(parse_manifest(document), PluginRegistry.discover(), EXAMPLE.parent)
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        session = BotSession(bot, journal, bars=[], clock=lambda: NOW + 0.7)
        session.open()
        rows = journal.query("SELECT ts FROM events WHERE kind = 'run_started'")
    finally:
        journal.close()
    assert rows == [(expected,)]
