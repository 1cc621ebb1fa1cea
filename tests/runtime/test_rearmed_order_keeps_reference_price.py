"""An order a restart re-arms keeps the price it was decided at (walkthrough W29): its row in
the new run had no reference price, so its fills there were left out of the slippage figures
(``Journal.measured_fills`` joins the order's row of the fill's run)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession

BARS = [Bar("TEST", HOUR, T0 + i * HOUR, 100.0, 101.0, 99.0, 100.0, 1.0) for i in range(4)]


class Killed(BaseException):
    """What SIGKILL is to the process: nothing after it runs."""


def test_a_re_armed_entry_keeps_its_reference_price(tmp_path: Path) -> None:
    registry = PluginRegistry.discover()
    chain = [{"name": "fixed-size", "params": {"quantity": 1}}]

    def bot() -> Any:
        buy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 1)})
        return bot_with(registry, manifest(chain, mode="paper"), buy, tmp_path)

    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    first = bot()

    on_bar = first.broker.on_bar

    def dying_on_bar(bar: Bar) -> Any:
        if bar.ts > T0:  # the entry is working, not filled yet: the process dies
            raise Killed(bar.ts)
        return on_bar(bar)

    first.broker.on_bar = dying_on_bar
    with pytest.raises(Killed):
        BotSession(first, journal, bars=BARS).run_to_end()
    journal._db.close()
    if journal._lock_fd is not None:
        os.close(journal._lock_fd)

    journal = Journal(path, durable=True)
    BotSession(bot(), journal, bars=BARS).run_to_end()
    rows = journal.query(
        "SELECT o.run_id, o.reference_price, COUNT(f.fill_id) FROM orders o"
        " LEFT JOIN fills f USING (run_id, client_order_id) WHERE o.parent_id IS NULL"
        " GROUP BY o.run_id ORDER BY o.rowid"
    )
    journal.close()
    assert [(ref, fills) for _run, ref, fills in rows] == [(100.0, 0), (100.0, 1)], rows
