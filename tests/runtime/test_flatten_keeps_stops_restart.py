"""A flatten that dies before its close filled leaves the position guarded, and the restart
still closes what is owed (``Journal.flatten_owed``), then cancels the guards.

The venue is `SharedVenue` (``test_reconcile``): a paper account that outlives each bot life.
The bot buys 1 BTCUSDT with a stop-loss at 90 and a take-profit at 110; its second life is
killed (a SIGKILL: its journal closed, no stop policy) right after an emergency stop with
flatten, while the venue has not answered the close.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.plugin_hooks import registry_with, venue_plugins
from tests.runtime.test_reconcile import NAME, PREFIX, SharedVenue, _bars, _venue
from tests.runtime.venue_view import paper_bot_manifest
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Order, OrderStatus, OrderUpdate
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import Strategy
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest


class BuyWithBracket(Strategy):
    """Flat and with nothing working: buy 1 with a stop-loss at 90 and a take-profit at 110
    (the bars trade between 99 and 105: neither is reached)."""

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        if ctx.position(bar.symbol).quantity == 0 and not ctx.open_orders(bar.symbol):
            ctx.buy(bar.symbol, 1, stop_loss=90.0, take_profit=110.0)


HOOKS = venue_plugins(("buy-with-bracket", BuyWithBracket), ("shared-venue", SharedVenue))


@pytest.fixture(name="registry")
def _registry() -> PluginRegistry:
    SharedVenue.account = None
    SharedVenue.reachable.set()
    return registry_with(HOOKS)


class _Killed(BaseException):
    """The process dies while a request to the venue hangs (SIGKILL mid-call)."""


def _manifest(folder: Path) -> Path:
    return paper_bot_manifest(folder, NAME, "buy-with-bracket", "shared-venue")


def _session(folder: Path, registry: PluginRegistry, bars: list[Bar]) -> tuple[BotSession, Journal]:
    bot = assemble(load_manifest(_manifest(folder)), registry, folder)
    journal = Journal(folder / "journal.sqlite", durable=True)
    return BotSession(bot, journal, bars=bars), journal


def _run(folder: Path, registry: PluginRegistry, bars: list[Bar]) -> Engine:
    """One life: open (reconcile, a flatten owed), trade ``bars``, die without a stop policy."""
    session, journal = _session(folder, registry, bars)
    engine = session.open()
    session.run()
    journal.close()
    return engine


@contextmanager
def _killed_life(folder: Path, registry: PluginRegistry) -> Iterator[Engine]:
    session, journal = _session(folder, registry, _bars(5, 1))
    engine = session.open()
    session.run()
    try:
        yield engine
    except _Killed:
        pass
    finally:
        journal.close()


def _working() -> list[str]:
    return sorted(
        o.client_order_id for o in _venue().open_orders() if o.client_order_id[:4] == PREFIX[:4]
    )


def _held() -> float:
    position = _venue().positions().get("BTCUSDT")
    return position.quantity if position is not None else 0.0


def _journal_query(folder: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    journal = Journal(folder / "journal.sqlite")
    try:
        return [tuple(row) for row in journal.query(sql, *args)]
    finally:
        journal.close()


def _owed(folder: Path) -> tuple[str, str] | None:
    journal = Journal(folder / "journal.sqlite")
    try:
        return journal.flatten_owed(NAME)
    finally:
        journal.close()


def _guarded(folder: Path, registry: PluginRegistry) -> list[str]:
    """The first life: 1 BTCUSDT bought, its stop-loss and take-profit working at the venue."""
    _run(folder, registry, _bars(0, 5))
    assert _held() == 1.0
    guards = _working()
    assert [g[-3:] for g in guards] == ["-sl", "-tp"]
    return guards


@pytest.mark.parametrize("lost", ["killed while the venue held the close", "close never arrived"])
def test_a_flatten_that_died_before_its_close_keeps_the_stop_and_the_restart_closes(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    guards = _guarded(tmp_path, registry)

    def hang(self: SharedVenue, order: Order) -> OrderUpdate:
        if lost.startswith("killed"):
            raise _Killed  # the process dies inside the venue call
        return OrderUpdate(order.client_order_id, OrderStatus.PENDING, 0)  # lost on the way

    with _killed_life(tmp_path, registry) as engine, monkeypatch.context() as patch:
        patch.setattr(SharedVenue, "submit", hang)
        engine.halt("alice", "incident", flatten=True)
    # Down, holding the position: the stop-loss still guards it at the venue.
    assert _held() == 1.0 and _working() == guards
    assert _owed(tmp_path) == ("alice", "incident")

    third = _run(tmp_path, registry, _bars(6, 3))
    assert third.halted
    assert _held() == 0.0 and _working() == []
    assert third.stats.orders == 1  # the close; the strategy's buys were vetoed
    assert not third.open_orders()
    assert _owed(tmp_path) is None
    for guard in guards:
        [(status,)] = _journal_query(
            tmp_path,
            "SELECT status FROM order_updates WHERE client_order_id = ? ORDER BY id DESC LIMIT 1",
            guard,
        )
        assert status == "cancelled"


def test_a_restart_whose_guard_closed_the_position_while_down_owes_nothing_more(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close never reached the venue; the stop-loss the flatten kept closed the position
    while the bot was down. The restart reconciles that fill: flat, no close sent, nothing
    left working, and the flatten is done."""
    guards = _guarded(tmp_path, registry)
    with _killed_life(tmp_path, registry) as engine, monkeypatch.context() as patch:
        patch.setattr(
            SharedVenue,
            "submit",
            lambda self, order: OrderUpdate(order.client_order_id, OrderStatus.PENDING, 0),
        )
        engine.halt("alice", "incident", flatten=True)
    _venue().on_bar(_bars(6, 1, low=85.0)[0])  # the market falls through 90: the stop fills
    assert _held() == 0.0 and _working() == []

    third = _run(tmp_path, registry, _bars(7, 2))
    assert third.halted and third.stats.orders == 0
    assert _held() == 0.0 and _working() == [] and not third.open_orders()
    [trade] = third.portfolio.trades
    assert trade.exit_reason == "stop_loss"
    assert _owed(tmp_path) is None
    assert guards[0].endswith("-sl")
