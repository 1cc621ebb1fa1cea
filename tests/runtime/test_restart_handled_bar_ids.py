"""A restart replays a timestamp handled in part whole, so its orders keep their ids: none is
sent twice.

A two-symbol paper bot (A, B; the bars of one timestamp come A then B) whose strategy buys
both on the same bar T4. Order ids number the orders of one bar time across symbols
(``Engine._next_order_id``: one sequence per ``_now``): A's buy is ``…A…0``, B's ``…B…1``.

The bot is killed after both buys were sent and journaled, before T4's handled mark committed.
The restart hands T4 again, whole and in the same order: each buy takes the id it had, known,
and is not sent again. A mark per symbol (A's bar marked, given to the strategy as history,
taking no sequence number) made B's buy take sequence 0, an id never journaled, and B was sent
a second entry beside the first, re-armed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.runtime.test_restart_handled_bar_symbols import CROSS, HOUR, START, _bars, _manifest
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Bar
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

# Both symbols cross up at T4 (the two-symbol bot of the per-symbol restart tests).
CROSS_AT = START + 4 * HOUR


class _Killed(BaseException):
    """SIGKILL."""


def _life(folder: Path, kill: bool) -> tuple[float, list[str]]:
    bot = assemble(load_manifest(_manifest(folder)), PluginRegistry.discover(), folder)
    journal = Journal(folder / "bot.sqlite", durable=True)
    if kill:
        mark = journal.record_bar_handled

        def killed_at_bs_mark(close_ts: int) -> None:
            if close_ts == CROSS_AT + HOUR:
                journal.flush()
                raise _Killed  # T4's buys (A's and B's) are journaled; its handled mark is not
            mark(close_ts)

        journal.record_bar_handled = killed_at_bs_mark  # type: ignore[method-assign]
    session = BotSession(
        bot, journal, bars=_bars(CROSS, CROSS), should_stop=threading.Event().is_set
    )

    def pacer(released: Iterable[Bar]) -> Iterator[Bar]:
        yield from released

    session.pacer = pacer
    try:
        engine = session.open()
        if kill:
            with pytest.raises(_Killed):
                session.run()
        else:
            session.close(session.run())
        orders = [
            str(r[0])
            for r in journal.query("SELECT client_order_id FROM orders WHERE symbol = 'B'")
        ]
        return engine.position("B").quantity, orders
    finally:
        journal.close()


def test_a_restart_does_not_send_a_second_entry_for_a_bar_whose_order_was_journaled(
    tmp_path: Path,
) -> None:
    held, orders = _life(tmp_path, kill=True)
    assert held == 0.0 and len(orders) == 1, orders  # B's buy sent, not yet filled
    held, orders = _life(tmp_path, kill=False)
    assert len(set(orders)) == 1, f"B@T4 was traded again under a new id: {sorted(set(orders))}"
    assert held == pytest.approx(0.01)
