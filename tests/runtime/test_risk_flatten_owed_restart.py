"""A risk plugin's flatten, and the stop policy's, that a bot's earlier life had not finished
are resumed by its next start: after the reconciliation with the venue, before it trades.

Each close the flattens owe is journaled (``close_owed`` events, ``Journal.closes_owed``) from
before it leaves until its position is flat. A restart closes what is still owed; a position
found flat (its stop filled while the bot was down) owes nothing and nothing is sent; a close
refused for a reason no retry changes is said again, not sent again at every restart.

The venue is `SharedVenue` (``test_reconcile``): a paper account that outlives each bot life.
A life ends killed (its journal closed, no stop policy) or stopped (the stop policy applied).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tests.plugin_hooks import registry_with, venue_plugins
from tests.runtime.test_reconcile import NAME, PREFIX, T0, SharedVenue, _bars, _venue
from tests.runtime.venue_view import paper_bot_manifest
from tradefleet_runtime.capabilities import AccountAction, ActionKind, Capability
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Order,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    ReasonCode,
    RiskDecision,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import NoParams, PluginKind, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

SYMBOL = "BTCUSDT"
RISK_TAG = "risk:flattener"
STOP_TAG = "stop-flatten"
FLATTEN_AT = T0 + 3 * 3600  # the close of bar 2: the plugin asks to flatten then


class BuyWhenFlat(Strategy):
    """Flat and with nothing working: buy 1 with a stop-loss at 90 and a take-profit at 110
    (the bars trade between 99 and 105: neither is reached)."""

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        if ctx.position(bar.symbol).quantity == 0 and not ctx.open_orders(bar.symbol):
            ctx.buy(bar.symbol, 1, stop_loss=90.0, take_profit=110.0)


class BuyOnce(Strategy):
    """Buys 1 with its stop-loss at 90 and take-profit at 110 on the first bar, never again."""

    def on_bar(self, bar: Bar) -> None:
        if bar.ts == T0:
            self.ctx.buy(bar.symbol, 1, stop_loss=90.0, take_profit=110.0)


class Flattener:
    """A risk plugin that approves every order and asks to flatten once, at ``at`` (0: never)."""

    at: ClassVar[int] = FLATTEN_AT

    def __init__(self, params: Any) -> None:
        self.asked = False

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        if ctx.ts != Flattener.at or self.asked:
            return []
        self.asked = True
        return [AccountAction(ActionKind.FLATTEN, "daily loss", None, 1.0, "tier_3")]


def _hooks(strategy: type[Strategy]) -> SimpleNamespace:
    hooks = venue_plugins(("buyer", strategy), ("shared-venue", SharedVenue))
    hooks.tradefleet_risk_plugins = hookimpl(
        lambda: [
            PluginSpec(
                kind=PluginKind.RISK,
                name="flattener",
                version="1.0.0",
                factory=Flattener,
                params=NoParams,
                capabilities=frozenset({Capability.ACTS_ON_ACCOUNT}),
            )
        ]
    )
    return hooks


class Closes:
    """The venue's answer to the flattens' closes (the others go through): ``accept``,
    ``refuse`` (with ``code``), or ``lose`` (PENDING, never reaching the venue). Counts every
    close it was handed, across lives."""

    answer: ClassVar[str] = "accept"
    code: ClassVar[ReasonCode] = ReasonCode.VENUE_UNAVAILABLE
    sent: ClassVar[list[Order]] = []


def _submit(venue: SharedVenue, order: Order) -> OrderUpdate:
    """``SharedVenue.submit``, with the flattens' closes answered as ``Closes`` says."""
    if order.tag not in (RISK_TAG, STOP_TAG):
        return venue.venue.submit(order)
    Closes.sent.append(order)
    if Closes.answer == "refuse":
        return OrderUpdate(
            order.client_order_id, OrderStatus.REJECTED, 0, "the venue said no", code=Closes.code
        )
    if Closes.answer == "lose":
        return OrderUpdate(order.client_order_id, OrderStatus.PENDING, 0)
    return venue.venue.submit(order)


@pytest.fixture(autouse=True)
def _venue_answers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    SharedVenue.account = None
    SharedVenue.reachable.set()
    Closes.answer, Closes.code, Closes.sent = "accept", ReasonCode.VENUE_UNAVAILABLE, []
    Flattener.at = FLATTEN_AT
    monkeypatch.setattr(SharedVenue, "submit", _submit)
    yield


def _manifest(folder: Path, on_stop: dict[str, bool] | None) -> Path:
    extra: dict[str, Any] = {"risk": [{"name": "flattener"}]}
    if on_stop is not None:
        extra["onStop"] = on_stop
    return paper_bot_manifest(folder, NAME, "buyer", "shared-venue", symbol=SYMBOL, **extra)


class Bot:
    """One bot's lives on one journal file and the shared venue."""

    def __init__(
        self, folder: Path, strategy: type[Strategy], on_stop: dict[str, bool] | None = None
    ) -> None:
        self.folder = folder
        self.registry: PluginRegistry = registry_with(_hooks(strategy))
        self.manifest = _manifest(folder, on_stop)

    def open(self, bars: list[Bar]) -> tuple[BotSession, Journal, Engine]:
        bot = assemble(load_manifest(self.manifest), self.registry, self.folder)
        journal = Journal(self.folder / "journal.sqlite", durable=True)
        session = BotSession(bot, journal, bars=bars, stop_wait_s=0.2)
        return session, journal, session.open()

    def life(self, bars: list[Bar], end: str = "killed") -> Engine:
        """Open (reconcile, resume what is owed), trade ``bars``, then end as ``end`` says."""
        session, journal, engine = self.open(bars)
        status = session.run()
        if end == "stopped":
            session.close("stopped")
        elif status != "completed":
            raise AssertionError(status)
        journal.close()
        return engine

    def read(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        journal = Journal(self.folder / "journal.sqlite")
        try:
            return [tuple(row) for row in journal.query(sql, *args)]
        finally:
            journal.close()

    def owed(self) -> dict[str, tuple[str, str | None]]:
        journal = Journal(self.folder / "journal.sqlite")
        try:
            return journal.closes_owed(NAME)
        finally:
            journal.close()

    def orders_of_last_run(self) -> list[tuple[str, str]]:
        """(client order id, tag) of the orders the newest run sent, in the order they were
        decided (not those it carried over from earlier runs)."""
        [(run,)] = self.read("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")
        return [
            (str(i), str(tag))
            for i, tag in self.read(
                "SELECT client_order_id, tag FROM orders WHERE run_id = ? AND client_order_id"
                " NOT IN (SELECT client_order_id FROM orders WHERE run_id != ?) ORDER BY rowid",
                run,
                run,
            )
        ]


def _held() -> float:
    position = _venue().positions().get(SYMBOL)
    return position.quantity if position is not None else 0.0


def _working() -> list[str]:
    return sorted(
        o.client_order_id for o in _venue().open_orders() if o.client_order_id[:4] == PREFIX[:4]
    )


def _refused_flatten(bot: Bot, end: str, code: ReasonCode = ReasonCode.VENUE_UNAVAILABLE) -> None:
    """The first life: 1 BTCUSDT bought with its stop-loss and take-profit; the plugin's
    flatten at bar 2, refused by the venue (and, for a passing reason, at bars 3 and 4 too)."""
    Closes.answer, Closes.code = "refuse", code
    bot.life(_bars(0, 5), end)
    assert _held() == 1.0
    assert [g[-3:] for g in _working()] == ["-sl", "-tp"]  # the stop guards it while down


@pytest.mark.parametrize("end", ["killed", "stopped"])
def test_a_restart_resumes_a_refused_risk_flatten_before_it_trades(
    tmp_path: Path, end: str
) -> None:
    """The reproduction: the restarted bot did not close the position the plugin had asked
    to close; a person had to send ``stop --flatten``."""
    bot = Bot(tmp_path, BuyWhenFlat)
    _refused_flatten(bot, end)
    assert len(Closes.sent) == 3  # at bar 2, then again at bars 3 and 4
    assert bot.owed() == {SYMBOL: (RISK_TAG, None)}

    Closes.answer = "accept"  # the venue is back
    session, journal, engine = bot.open(_bars(5, 3))
    # Resumed at the start, before any bar: the strategy has ordered nothing yet.
    [(close, tag)] = bot.orders_of_last_run()
    assert tag == RISK_TAG and close in {o.client_order_id for o in engine.open_orders()}
    assert close not in {o.client_order_id for o in Closes.sent[:3]}  # a new id
    session.run()
    journal.close()

    assert bot.owed() == {}
    [first, *later] = bot.orders_of_last_run()
    assert first == (close, RISK_TAG)
    assert all(tag != RISK_TAG for _, tag in later)  # the strategy's new entry and its bracket
    [(status,)] = bot.read(
        "SELECT status FROM order_updates WHERE client_order_id = ? ORDER BY id DESC LIMIT 1",
        close,
    )
    assert status == "filled"
    [(exit_reason,)] = bot.read("SELECT exit_reason FROM trades ORDER BY rowid LIMIT 1")
    assert exit_reason == RISK_TAG


def test_a_position_its_stop_closed_while_down_is_not_closed_again(tmp_path: Path) -> None:
    """The stop-loss the flatten kept filled while the bot was down: the restart finds the
    position flat once reconciled, clears the debt, and sends nothing (a close now could open
    the other way)."""
    bot = Bot(tmp_path, BuyOnce)
    _refused_flatten(bot, "killed")
    _venue().on_bar(_bars(5, 1, low=85.0)[0])  # the market falls through 90: the stop fills
    assert _held() == 0.0

    Closes.answer = "accept"
    sent = len(Closes.sent)
    bot.life(_bars(6, 3))
    assert len(Closes.sent) == sent and bot.orders_of_last_run() == []
    assert _held() == 0.0 and _working() == []
    assert bot.owed() == {}
    [(message,)] = bot.read(
        "SELECT message FROM events WHERE kind = 'close_owed' ORDER BY id DESC LIMIT 1"
    )
    assert "flat at the restart" in message

    bot.life(_bars(9, 2))  # and the life after sends nothing either
    assert len(Closes.sent) == sent and _held() == 0.0


def test_a_close_no_retry_changes_is_reported_at_each_restart_never_re_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = Bot(tmp_path, BuyOnce)
    _refused_flatten(bot, "killed", ReasonCode.BELOW_MIN_QUANTITY)
    assert len(Closes.sent) == 1  # not at bars 3 and 4
    assert bot.owed() == {SYMBOL: (RISK_TAG, "below_min_quantity")}

    Closes.answer = "accept"  # it would go now: still, only a person decides
    for first in (5, 8):
        with caplog.at_level(logging.ERROR, "tradefleet.engine"):
            caplog.clear()
            bot.life(_bars(first, 3))
        assert len(Closes.sent) == 1 and bot.orders_of_last_run() == []
        [said] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert "below_min_quantity" in said and SYMBOL in said and "a person" in said
        assert _held() == 1.0 and [g[-3:] for g in _working()] == ["-sl", "-tp"]
    assert bot.owed() == {SYMBOL: (RISK_TAG, "below_min_quantity")}


@pytest.mark.parametrize("answer", ["refuse", "lose"])
def test_the_next_start_finishes_the_stop_policy_s_flatten(tmp_path: Path, answer: str) -> None:
    """``onStop.flattenPositions``: the venue refused the stop's close, or it never arrived,
    and the process exited holding the position (its stop kept). A person asked for flat: the
    next start closes it before it trades."""
    Flattener.at = 0  # only the stop policy flattens
    bot = Bot(tmp_path, BuyOnce, {"cancelOpenOrders": True, "flattenPositions": True})
    Closes.answer = answer
    bot.life(_bars(0, 3), "stopped")
    [stop_close] = Closes.sent
    assert stop_close.tag == STOP_TAG and _held() == 1.0
    assert bot.owed() == {SYMBOL: (STOP_TAG, None)}

    Closes.answer = "accept"
    session, journal, engine = bot.open(_bars(3, 2))
    [(close, tag)] = bot.orders_of_last_run()  # before any bar
    assert tag == STOP_TAG and close != stop_close.client_order_id
    assert close in {o.client_order_id for o in engine.open_orders()}
    session.run()
    journal.close()
    assert _held() == 0.0 and _working() == [] and bot.owed() == {}


def test_a_stop_policy_close_still_working_at_the_venue_is_not_sent_twice(
    tmp_path: Path,
) -> None:
    """The venue took the stop's close (a market order the paper venue fills at the next bar)
    but the process exited first: the restart adopts it, sends no second close beside it, and
    the one close makes the position flat — never short."""
    Flattener.at = 0  # only the stop policy flattens
    bot = Bot(tmp_path, BuyOnce, {"cancelOpenOrders": True, "flattenPositions": True})
    bot.life(_bars(0, 3), "stopped")
    [stop_close] = Closes.sent
    assert _held() == 1.0 and stop_close.client_order_id in _working()

    bot.life(_bars(3, 2))
    assert len(Closes.sent) == 1
    assert _held() == 0.0 and _working() == [] and bot.owed() == {}
