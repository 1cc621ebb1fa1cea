"""While a restarted bot starts, its status shows the drawdown the running bot then shows.

Until its engine runs, a restarted bot's status shows the account as its journal last held it
(``last_known``). The running bot measures its drawdown from a peak that counts from the
capital (``Engine.restore_equity``); the status while Starting took the highest journaled
snapshot alone. They differ when the account lost before its first snapshot (a fee, a fill
before the first close): here a long bought at 1.00 is marked 0.99 at the first close and sold
at 0.985 before the second, every snapshot below the capital, and Starting said 0.51 % where the
running bot says 1.50 %.
"""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from tests.service.paper_bots import paper_controller, paper_manifest
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, OrderStatus, Position, Side
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble

NAME = "below-capital"
CAPITAL = 100_000.0  # paper_manifest's
HOUR = 3600
CLOSES = (1_500_000_000 + HOUR, 1_500_000_000 + 2 * HOUR)
EQUITY = (99_000.0, 98_500.0)  # never the capital again after a loss before the first close


def _earlier_run(path: Path) -> None:
    """A run of the bot that journaled two closes, both below its capital."""
    journal = Journal(path)
    journal.start_run(
        run_id="earlier",
        bot=NAME,
        mode="paper",
        currency="USD",
        initial_capital=CAPITAL,
        timeframe_s=HOUR,
        config_hash="",
        manifest={},
    )
    start = CLOSES[0] - HOUR
    bought = Fill("b", "EURUSD", Side.BUY, 100_000.0, 1.0, 0.0, start + 60, "1")
    journal.record_fill(bought, Position("EURUSD", 100_000.0, 1.0), OrderStatus.FILLED)
    sold = Fill("s", "EURUSD", Side.SELL, 100_000.0, 0.985, 0.0, CLOSES[0] + 60, "2")
    journal.record_fill(sold, Position("EURUSD"), OrderStatus.FILLED)
    journal.record_equity(array("q", CLOSES), array("d", EQUITY), array("d", (99_000.0, 0.0)))
    journal.finish_run("stopped", {})
    journal.close()


def test_the_drawdown_while_starting_counts_from_the_capital_as_the_running_bots(
    tmp_path: Path,
) -> None:
    manifest = paper_manifest(NAME, {"name": "ema-cross", "params": {"fast": 2, "slow": 3}})
    _earlier_run(tmp_path / "bot.sqlite")
    journal = Journal(tmp_path / "bot.sqlite")
    try:
        status = paper_controller(manifest, journal).get_status()
        assert status.last_known
        bot = assemble(manifest, PluginRegistry.discover(), tmp_path)
        engine = BotSession(bot, journal, bars=[]).open()  # the restarted bot, running
        equity = engine.equity
        peak = max(engine.peak_equity, equity)
    finally:
        journal.close()
    assert status.equity == pytest.approx(equity) == pytest.approx(EQUITY[-1])
    running = (peak - equity) / peak * 100.0
    assert running == pytest.approx(1.5)
    assert status.drawdown_pct == pytest.approx(running), (
        f"while Starting: drawdown {status.drawdown_pct:.2f} %; running: {running:.2f} %"
    )
