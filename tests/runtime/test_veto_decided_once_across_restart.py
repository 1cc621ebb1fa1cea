"""A bar handled again after a crash decides no intent twice (walkthrough W29): an order the
journal knows is not sent again (``order_known``), and now an intent a risk plugin vetoed is
not decided again either — before, its veto was journaled (and counted) once per run.

A paper bot buys at bar 0 and again at bar 1; pre-trade's one trade a day vetoes the second.
The process dies right after bar 1's veto is committed; the restart hands bar 1 over again.
"""

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


class Killed(BaseException):
    """What SIGKILL is to the process: nothing after it runs."""


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


BARS = [Bar("TEST", HOUR, T0 + i * HOUR, 100.0, 100.5, 99.5, 100.0, 1.0) for i in range(4)]


CHAIN = [
    {"name": "pre-trade", "params": {"max_trades_per_day": 1}},
    {"name": "fixed-size", "params": {"quantity": 1}},
]


def _bot(registry: PluginRegistry, tmp: Path) -> Any:
    buys = Scripted({i: (lambda ctx, b: ctx.buy("TEST", 1)) for i in (0, 1)})
    return bot_with(registry, manifest(CHAIN, mode="paper"), buys, tmp)


def _vetoes(path: Path) -> list[tuple[str, str]]:
    journal = Journal(path, read_only=True)
    try:
        rows = journal.query(
            "SELECT run_id, client_order_id FROM risk_decisions WHERE action = 'veto'"
        )
    finally:
        journal.close()
    return [(str(r), str(c)) for r, c in rows]


def _killed_after_the_veto(registry: PluginRegistry, tmp: Path) -> Path:
    """The first life: bar 1's add is vetoed, the veto committed, and the process dies."""
    path = tmp / "journal.sqlite"
    journal = Journal(path, durable=True)
    record_risk = journal.record_risk

    def dying_record_risk(**row: Any) -> None:
        record_risk(**row)
        if row["decision"].action == "veto":
            journal.flush()
            raise Killed("after the veto")

    journal.record_risk = dying_record_risk  # type: ignore[method-assign]
    with pytest.raises(Killed):
        BotSession(_bot(registry, tmp), journal, bars=BARS).run_to_end()
    journal._db.close()
    if journal._lock_fd is not None:
        os.close(journal._lock_fd)
    return path


def test_a_veto_journaled_before_a_crash_is_not_decided_again(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    path = _killed_after_the_veto(registry, tmp_path)
    [(first_run, vetoed_id)] = _vetoes(path)

    journal = Journal(path, durable=True)
    BotSession(_bot(registry, tmp_path), journal, bars=BARS).run_to_end()
    said = journal.query(
        "SELECT message FROM events WHERE kind = 'order_known' AND message LIKE ?", f"{vetoed_id}%"
    )
    journal.close()
    assert _vetoes(path) == [(first_run, vetoed_id)], "the veto was decided and journaled again"
    assert len(said) == 1 and "vetoed by an earlier run" in str(said[0][0])


def test_a_restart_the_same_day_keeps_the_days_count_of_entries(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """pre-trade's one entry a day: the first run buys at 00:00 and ends; a restart at 02:00
    the same day asks again at each bar. Before, pre-trade's count of the day's entries lived
    in memory only: the restart approved one more entry that day."""
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    BotSession(_bot(registry, tmp_path), journal, bars=BARS[:1]).run_to_end()
    journal.close()
    journal = Journal(path, durable=True)
    buys = Scripted({i: (lambda ctx, b: ctx.buy("TEST", 1)) for i in range(3)})
    bot = bot_with(registry, manifest(CHAIN, mode="paper"), buys, tmp_path)
    BotSession(bot, journal, bars=BARS[2:]).run_to_end()
    entries = journal.query("SELECT DISTINCT client_order_id FROM orders WHERE reduce_only = 0")
    vetoes = journal.query(
        "SELECT code FROM risk_decisions WHERE action = 'veto' AND ts >= ?", BARS[2].close_ts
    )
    journal.close()
    assert len(entries) == 1, f"a second entry the same day: {entries}"
    assert [c for (c,) in vetoes] == ["max_trades", "max_trades"]


def test_another_intent_on_the_bar_handled_again_is_decided(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Review R45: an id is the bar time and the intent's place among its orders, so on a bar
    handled again another intent can take the vetoed one's id — the restarted strategy, having
    seen the venue work the outage, closes where the killed run added. The close is decided
    and sent; only the same intent is skipped."""
    path = _killed_after_the_veto(registry, tmp_path)

    journal = Journal(path, durable=True)
    closes = Scripted({1: lambda ctx, b: ctx.close("TEST", "close")})
    bot = bot_with(registry, manifest(CHAIN, mode="paper"), closes, tmp_path)
    BotSession(bot, journal, bars=BARS[:2]).run_to_end()
    sent = journal.query("SELECT client_order_id FROM orders WHERE reduce_only = 1")
    journal.close()
    assert len(sent) == 1, "the close took the vetoed buy's id and was skipped"


def test_a_kill_as_the_approved_entry_leaves_keeps_it_counted(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Review R45: the process dies as the approved entry is sent, after its commit. pre-trade's
    state goes with the order (``Engine._process_intent``), not only at the bar's end: the
    restart the same day approves no second entry."""
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    session = BotSession(_bot(registry, tmp_path), journal, bars=BARS[:2])
    engine = session.open()

    def dying_send(order: Any) -> None:
        journal.flush()
        raise Killed("as the order leaves")

    engine._send = dying_send  # type: ignore[method-assign]
    with pytest.raises(Killed):
        session.run()
    journal._db.close()
    if journal._lock_fd is not None:
        os.close(journal._lock_fd)
    journal = Journal(path, durable=True)
    buys = Scripted({i: (lambda ctx, b: ctx.buy("TEST", 1)) for i in range(4)})
    bot = bot_with(registry, manifest(CHAIN, mode="paper"), buys, tmp_path)
    BotSession(bot, journal, bars=BARS).run_to_end()
    entries = journal.query("SELECT DISTINCT client_order_id FROM orders WHERE reduce_only = 0")
    vetoes = journal.query("SELECT DISTINCT code FROM risk_decisions WHERE action = 'veto'")
    journal.close()
    assert len(entries) == 1, f"{len(entries)} entries the same day (at most 1)"
    assert vetoes == [("max_trades",)]
