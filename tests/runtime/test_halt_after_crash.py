"""An emergency stop survives a crash whole: the restarted bot, once reconciled with its venue,
still does what the halt does — its entries cancelled, its flatten finished.

The venue is `SharedVenue` (``test_reconcile``): a paper account that outlives each bot life, as
an exchange outlives a pod. The first life here is stopped by ``journal.close()`` alone (a
SIGKILL: no stop policy), right after the halt, while the venue has not yet done what the halt
asked of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.plugin_hooks import registry_with
from tests.runtime.test_reconcile import (
    HOOKS,
    NAME,
    PREFIX,
    SharedVenue,
    _bars,
    _event_kinds,
    _manifest,
    _run,
    _venue,
)
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Order, OrderStatus, OrderUpdate
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest


@pytest.fixture(name="registry")
def _registry() -> PluginRegistry:
    """The venue starts empty and reachable for each test (it outlives the bot's lives)."""
    SharedVenue.account = None
    SharedVenue.reachable.set()
    return registry_with(HOOKS)


class _Killed(BaseException):
    """The process dies while a request to the venue hangs (SIGKILL mid-call)."""


@contextmanager
def _second_life(folder: Path, registry: PluginRegistry) -> Iterator[tuple[Engine, Journal]]:
    """A life of the bot that ends killed: its journal closed, nothing stopped at the venue."""
    bot = assemble(load_manifest(_manifest(folder)), registry, folder)
    journal = Journal(folder / "journal.sqlite", durable=True)
    session = BotSession(bot, journal, bars=_bars(5, 1))
    engine = session.open()
    session.run()
    try:
        yield engine, journal
    except _Killed:
        pass
    finally:
        journal.close()


def _held() -> float:
    position = _venue().positions().get("BTCUSDT")
    return position.quantity if position is not None else 0.0


def _our_working() -> list[str]:
    ours = PREFIX[:4]
    return [o.client_order_id for o in _venue().open_orders() if o.client_order_id[:4] == ours]


def _owed(folder: Path) -> tuple[str, str] | None:
    journal = Journal(folder / "journal.sqlite")
    try:
        return journal.flatten_owed(NAME)
    finally:
        journal.close()


def _kinds(folder: Path, last_run: bool = False) -> list[str]:
    """The journal's event kinds in order (``last_run``: of the newest life only)."""
    journal = Journal(folder / "journal.sqlite")
    try:
        kinds = _event_kinds(journal)
    finally:
        journal.close()
    if last_run:
        return kinds[len(kinds) - 1 - kinds[::-1].index("run_started") :]
    return kinds


def test_an_entry_the_halts_cancel_never_reached_is_cancelled_when_the_halt_is_restored(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the bot died before the venue confirmed its halt's cancel of a resting
    entry. Restarted, it said HALTED while the entry still worked at the venue, and filled
    (and was bracketed) when the price crossed it."""
    _run(tmp_path, registry, _bars(0, 5))
    [entry] = _our_working()  # the limit buy at 90 rests
    with _second_life(tmp_path, registry) as (engine, _journal), monkeypatch.context() as patch:
        # The cancel request hangs at the venue: the process is killed before its answer.
        patch.setattr(SharedVenue, "cancel", lambda self, order_id: None)
        assert engine.halt("alice", "incident")
    assert _our_working() == [entry]  # the venue never got the cancel

    third = _run(tmp_path, registry, _bars(6, 3))
    engine = third.engine
    assert engine is not None and engine.halted
    assert _our_working() == [] and not engine.open_orders()
    kinds = _kinds(tmp_path, last_run=True)
    assert kinds.index("halt_restored") < kinds.index("reconciled")
    assert kinds.index("reconciled") < kinds.index("halt_entries_cancelled")
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        [(status,)] = journal.query(
            "SELECT status FROM order_updates WHERE client_order_id = ? ORDER BY id DESC LIMIT 1",
            entry,
        )
        assert status == OrderStatus.CANCELLED
    finally:
        journal.close()
    # The market trades through 90 afterwards: nothing of the bot's fills.
    _venue().on_bar(_bars(9, 1, low=89.0)[0])
    assert _held() == 1.0
    assert engine.stats.orders == 0  # the strategy's buys were vetoed: the halt holds


@pytest.mark.parametrize("lost", ["killed while the venue held the close", "close never arrived"])
def test_a_flatten_whose_close_never_reached_the_venue_is_still_owed_after_a_restart(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    """Regression: an emergency stop with flatten, the venue hanging the closing market order,
    then SIGKILL. Restarted, the bot was halted and reconciled with its position still open,
    the close journaled as never received, and nothing flattened it again."""
    _run(tmp_path, registry, _bars(0, 5))
    assert _held() == 1.0

    def hang(self: SharedVenue, order: Order) -> OrderUpdate:
        if lost.startswith("killed"):
            raise _Killed  # the process dies inside the venue call
        return OrderUpdate(order.client_order_id, OrderStatus.PENDING, 0)  # lost on the way

    with _second_life(tmp_path, registry) as (engine, _journal), monkeypatch.context() as patch:
        patch.setattr(SharedVenue, "submit", hang)
        engine.halt("alice", "incident", flatten=True)
    assert _held() == 1.0
    assert _owed(tmp_path) == ("alice", "incident")

    third = _run(tmp_path, registry, _bars(6, 3))
    engine = third.engine
    assert engine is not None and engine.halted
    assert _held() == 0.0 and _our_working() == []
    assert engine.stats.orders == 1  # one close; the strategy's buys were vetoed
    kinds = _kinds(tmp_path, last_run=True)
    assert kinds.index("halt_restored") < kinds.index("reconciled") < kinds.index("flattened")
    assert _owed(tmp_path) is None  # its close filled: done

    fourth = _run(tmp_path, registry, _bars(9, 2))
    assert fourth.engine is not None and fourth.engine.stats.orders == 0  # not flattened again
    assert _held() == 0.0


def test_a_close_still_working_at_the_venue_after_a_restart_is_not_sent_twice(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """Killed right after the flatten's close reached the venue (it fills at the next bar):
    the restart adopts the close, and the flatten still owed relies on it — a second close
    would open the other way."""
    _run(tmp_path, registry, _bars(0, 5))
    with _second_life(tmp_path, registry) as (engine, _journal):
        engine.halt("alice", "incident", flatten=True)
    assert _held() == 1.0 and len(_our_working()) == 1  # the close, not yet filled
    assert _owed(tmp_path) == ("alice", "incident")

    third = _run(tmp_path, registry, _bars(6, 3))
    assert third.engine is not None and third.engine.halted
    assert third.engine.stats.orders == 0  # the close on its way was adopted, none sent
    assert _held() == 0.0
    assert _owed(tmp_path) is None


def test_a_flatten_finished_before_the_crash_and_a_resume_since_owe_nothing(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    with _second_life(tmp_path, registry) as (engine, _journal):
        engine.halt("alice", "incident", flatten=True)
        engine.run(_bars(6, 1))  # the close fills
        assert engine.position("BTCUSDT").quantity == 0.0
    assert _owed(tmp_path) is None
    third = _run(tmp_path, registry, _bars(7, 1))
    assert third.engine is not None and third.engine.stats.orders == 0
    assert _held() == 0.0
    assert _kinds(tmp_path).count("flattened") == 1

    # A halt with flatten that a person then resumed owes nothing, whatever its close did.
    with _second_life(tmp_path, registry) as (engine, _journal):
        engine.halt("bob", "incident", flatten=True)
        engine.resume("bob", "false alarm")
    assert _owed(tmp_path) is None


def test_an_entry_that_filled_after_the_flatten_while_the_bot_was_down_is_closed_at_restart(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The halt's flatten finished (its close filled), but its cancel of a resting entry never
    reached the venue before the process died; the entry filled while the bot was down. The
    restarted bot reconciles that fill and keeps the flatten's promise: it closes it (it
    said halted and flattened while holding the position)."""
    _run(tmp_path, registry, _bars(0, 5))
    [entry] = _our_working()  # the limit buy at 90 rests
    assert _held() == 1.0
    with _second_life(tmp_path, registry) as (engine, _journal), monkeypatch.context() as patch:
        patch.setattr(SharedVenue, "cancel", lambda self, order_id: None)  # lost on the way
        engine.halt("alice", "incident", flatten=True)
        engine.run(_bars(6, 1))  # the close fills
        assert engine.position("BTCUSDT").quantity == 0.0
        assert entry in _our_working()
    assert _owed(tmp_path) is None  # every close the flatten named filled
    _venue().on_bar(_bars(7, 1, low=89.0)[0])  # the entry fills while the bot is down
    assert _held() == 1.0

    third = _run(tmp_path, registry, _bars(8, 2))
    assert third.engine is not None and third.engine.halted
    assert _held() == 0.0 and _our_working() == []
    assert _kinds(tmp_path, last_run=True).count("flattened") == 1
    assert _owed(tmp_path) is None
