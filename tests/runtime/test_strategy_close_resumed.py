"""A strategy's close that waited for the venue's cancel answers when the bot stopped is asked
again by the next start (``Journal.strategy_closes_waiting``, ``Engine.resume_strategy_closes``).

The journal's ``close_waits`` events say it: the newest of a symbol naming what it waits for
(``waiting_for``) with none since saying it ended. The next start asks the close again after
the reconciliation, once; a position found flat needs none, and either way the resumption is
journaled so that a later start does not ask it again. The end-to-end case, a SIGKILL through
the real ccxt broker, is ``tests/brokers/test_ccxt_strategy_close_restart.py``.
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime.held_closes import journaled_events
from tests.runtime.helpers import start_test_run
from tests.runtime.test_flatten_waits_for_reducing_orders import (
    BARS,
    SYMBOL,
    _buy,
    _closes,
    _slow_engine,
)
from tradefleet_runtime.journal import Journal


def _waits(journal: Journal, symbol: str, **data: object) -> None:
    journal.record_event(0, "close_waits", "…", {"symbol": symbol, **data})


def test_the_journal_names_the_closes_still_waiting(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    _waits(journal, "A", waiting_for=["a1"], tag="exit")
    _waits(journal, "B", waiting_for=["b1"], tag="close")
    _waits(journal, "B", dropped=1)  # held orders dropped: the close still waits
    _waits(journal, "C", waiting_for=["c1"], tag="close")
    _waits(journal, "C", ended=["c1"], then=0)  # sent
    _waits(journal, "D", waiting_for=["d1"], tag="close")
    _waits(journal, "D", ended=[], resumed=True)  # asked again by a later start
    journal.flush()
    assert journal.strategy_closes_waiting("bot") == {"A": "exit", "B": "close"}
    start_test_run(journal, "run-2", bot="another-bot")  # sharing the file: not its closes
    assert journal.strategy_closes_waiting("another-bot") == {}
    assert journal.strategy_closes_waiting("bot") == {"A": "exit", "B": "close"}


def test_a_waiting_close_is_asked_again_once_and_said(tmp_path: Path) -> None:
    engine, _venue = _slow_engine(tmp_path, {0: _buy})
    engine.run(BARS[:2])
    assert engine.resume_strategy_closes({SYMBOL: "exit"}) == [SYMBOL]
    [(asked, first), (done, last)] = journaled_events(engine, "close_waits")
    assert first == {"symbol": SYMBOL, "resumed": True} and "asked again" in asked
    assert last == {"symbol": SYMBOL, "ended": [], "resumed": True} and "done" in done
    assert [q for _id, q in _closes(engine, "exit")] == [1.0]  # only the guards to cancel
    engine.journal.flush()  # type: ignore[attr-defined]
    assert engine.journal.strategy_closes_waiting("bot") == {}  # type: ignore[attr-defined]


def test_a_position_found_flat_needs_no_close(tmp_path: Path) -> None:
    engine, _venue = _slow_engine(tmp_path, {})
    engine.run(BARS[:2])
    assert engine.resume_strategy_closes({SYMBOL: "close"}) == []
    [(message, data)] = journaled_events(engine, "close_waits")
    assert data["resumed"] is False and "flat at the restart" in message
    assert _closes(engine, "close") == []
