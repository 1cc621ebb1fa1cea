"""A restarted paper bot says once that it restored the account, not twice.

Seen on a paper restart (`tradefleet run`): the trade log wrote ``state restored: restored from
1 earlier run(s): ...`` and the session wrote the same summary again as ``NAME: restored from
...``. Two lines for one restore read as two restores to a person (or a log alert).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.service.paper_bots import FIXED_SIZE, SIGNALS, paper_manifest, short_eurusd
from tests.service.test_trade_log_restart import BuyAndSell, _bar_time
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.trade_log import TradeLogListener

ROOT = Path(__file__).resolve().parents[2]


def _run(folder: Path, bars: int, buy: int, *, listen: bool) -> None:
    manifest = paper_manifest("w7-log", SIGNALS, short_eurusd(folder, bars), (FIXED_SIZE,))
    bot = assemble(manifest, PluginRegistry.discover(), ROOT)
    bot.strategy = BuyAndSell(buy=buy)
    journal = Journal(folder / "bot.sqlite")
    try:
        prepare = TradeLogListener(bot.name, "USD").attach if listen else None
        BotSession(bot, journal, prepare=prepare).run_to_end()
    finally:
        journal.close()


def _restored_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "restored from" in r.getMessage()]


@pytest.mark.parametrize("listen", [True, False], ids=["trade-log", "no-listener"])
def test_a_restore_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, listen: bool
) -> None:
    _run(tmp_path, 20, _bar_time(2), listen=listen)  # a position left open
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _run(tmp_path, 30, _bar_time(40), listen=listen)
    lines = _restored_lines(caplog)
    assert len(lines) == 1, lines
    assert "restored from 1 earlier run(s)" in lines[0]
