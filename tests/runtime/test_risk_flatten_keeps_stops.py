"""A risk plugin's flatten never leaves a position without its stop.

A risk plugin that acts on the account (``acts-on-account``: the circuit breaker's tier 3,
prop-firm's flatten at a time or a breached limit, ``exits``) asks the engine to FLATTEN. The
engine cancels the position's entries at once, but its stop-loss and take-profit stay working
until the plugin's close has filled; then they are cancelled. A close the venue refuses or
holds leaves the position guarded, and the bot says so (``flatten_failed``). The close is the
plugin's action still: sent through the risk chain (each decision journaled and counted), under
the actions' own ids and the plugin's tag.

The venue is the paper broker with the plugin's closes in the test's hands (``HeldCloses``),
and, last, the fake Binance USDⓈ-M through the ccxt broker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.brokers.harness import BOT, ORDER_PATH, QUANTITY, START_PRICE, VenueHarness, harness_for
from tests.runtime import held_closes
from tests.runtime.held_closes import (
    assert_closed_by,
    bracket_entry,
    buy_with_bracket,
    journaled_events,
    last_status,
    rest_a_limit_buy,
    resting_limit,
    through_the_stop,
    working_at,
)
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tradefleet_runtime.capabilities import AccountAction, ActionKind
from tradefleet_runtime.contracts import BrokerContext, RiskContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
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
from tradefleet_runtime.order_ids import bot_prefix
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
PLUGIN = "breaker"
TAG = f"risk:{PLUGIN}"
BARS = flat_bars([100.0] * 6)
ACTION_IDS = bot_prefix("bot") + "r"  # the ids of a risk plugin's account actions


class Breaker:
    """A risk plugin that acts on the account: approves every order, and asks for what the
    test queued (``ask``) at its next call."""

    def __init__(self) -> None:
        self.asks: list[AccountAction] = []

    def ask(self, kind: ActionKind, symbol: str | None = None, fraction: float = 1.0) -> None:
        self.asks.append(AccountAction(kind, "tier 3: daily loss", symbol, fraction, "tier_3"))

    def check(self, intent: OrderIntent, ctx: RiskContext) -> RiskDecision:
        return RiskDecision.approve()

    def account_actions(self, ctx: RiskContext) -> Sequence[AccountAction]:
        asks, self.asks = self.asks, []
        return asks


class HeldCloses(held_closes.HeldCloses):
    close_tag = TAG


class SpotVenue(held_closes.SpotVenue):
    close_tag = TAG


def _engine(
    path: Path, actions: dict[int, Action], broker: held_closes.HeldCloses | None = None
) -> tuple[Engine, Breaker]:
    broker = broker if broker is not None else HeldCloses()
    broker.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(path)
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    breaker = Breaker()
    engine = Engine(
        config,
        Scripted(actions=actions),
        broker,
        journal,
        [(PLUGIN, breaker)],
        venue=broker,
        hooks=RiskHooks(actors=[(PLUGIN, breaker)]),
    )
    return engine, breaker


def _long_with_bracket(
    tmp_path: Path, broker: held_closes.HeldCloses | None = None
) -> tuple[Engine, HeldCloses, Breaker, str]:
    """A bot holding 1 TEST bought at 100, its stop-loss at 90 and take-profit at 110 working
    at the venue, and a limit buy at 80 resting: (engine, venue, plugin, entry id)."""
    engine, breaker = _engine(
        tmp_path / "journal.sqlite", {0: buy_with_bracket, 1: rest_a_limit_buy}, broker
    )
    engine.run(BARS[:2])
    venue = engine.broker
    assert isinstance(venue, HeldCloses)
    assert engine.position(SYMBOL).quantity == 1.0
    entry = bracket_entry(engine)
    assert sorted(working_at(venue)) == sorted(
        [f"{entry}-sl", f"{entry}-tp", resting_limit(engine)]
    )
    return engine, venue, breaker, entry


def _flatten_at_next_bar(engine: Engine, breaker: Breaker, i: int = 2) -> None:
    """The plugin asks to flatten after bar ``i`` (a bar trading flat at 100)."""
    breaker.ask(ActionKind.FLATTEN)
    engine.run(BARS[i : i + 1])


def _decisions(engine: Engine, order_id: str) -> list[tuple[str, str]]:
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT plugin, action FROM risk_decisions WHERE client_order_id = ? ORDER BY id",
        order_id,
    )
    return [(str(plugin), str(action)) for plugin, action in rows]


def test_a_refused_close_leaves_the_position_its_stop_and_the_bot_says_so(
    tmp_path: Path,
) -> None:
    """The reproduction: the engine cancelled the stop-loss and take-profit before the
    plugin's close, the venue refused the close, and the position ran with no stop at all —
    a fall through 90 afterwards was not stopped (1 TEST still held at 88)."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    limit = resting_limit(engine)
    venue.refuse = ReasonCode.VENUE_UNAVAILABLE
    _flatten_at_next_bar(engine, breaker)

    assert engine.position(SYMBOL).quantity == 1.0
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]  # the entry is gone
    assert last_status(engine, limit) == "cancelled"
    [close] = venue.closes_sent
    # The plugin's close: its action's own id, through the chain, decided and counted.
    assert close.startswith(ACTION_IDS) and _decisions(engine, close) == [(PLUGIN, "approve")]
    [(message, data)] = journaled_events(engine, "flatten_failed")
    assert close in message and "venue is in maintenance" in message and PLUGIN in message
    assert f"{entry}-sl" in message and "the bot still holds 1 TEST" in message
    assert data["guards"] == [f"{entry}-sl", f"{entry}-tp"] and data["by"] == TAG
    assert journaled_events(engine, "flattened") == []  # no emergency stop's record: nothing owed

    engine.run([through_the_stop(3)])  # the market falls: the stop the bot kept acts
    assert engine.position(SYMBOL).quantity == 0.0 and not working_at(venue)
    [trade] = engine.portfolio.trades
    assert (trade.exit_reason, trade.exit_price) == ("stop_loss", 90.0)
    assert not engine.open_orders()


def test_the_stop_works_until_the_close_fills_and_then_no_child_is_left(tmp_path: Path) -> None:
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.hold = True  # the venue is slow: the close waits unanswered
    _flatten_at_next_bar(engine, breaker)
    [close] = venue.closes_sent
    assert close in {o.client_order_id for o in engine.open_orders()}
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]
    assert engine.stats.risk_decisions[(PLUGIN, "approve")] >= 1

    engine.run(BARS[3:4])  # a bar passes: the close still waits, the stop still guards
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]
    venue.release()
    engine.pump()
    engine.run(BARS[4:5])  # the close fills at the open

    assert_closed_by(engine, venue, SYMBOL, entry, close, TAG)
    assert journaled_events(engine, "flatten_failed") == []


def test_a_stop_that_fills_while_the_close_is_held_leaves_the_account_flat(
    tmp_path: Path,
) -> None:
    """The stop-loss fills first; the close, reduce-only, closes nothing, and the bot cancels
    it as soon as the position is flat. Never a short."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.hold = True
    _flatten_at_next_bar(engine, breaker)
    [close] = venue.closes_sent
    engine.run([through_the_stop(3)])
    assert engine.position(SYMBOL).quantity == 0.0
    [(message, data)] = journaled_events(engine, "risk_flatten")
    assert f"{entry}-sl" in message and close in message and data["cancelled"] == [close]

    venue.release()
    engine.pump()
    engine.run(BARS[4:5])
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    assert not working_at(venue) and not engine.open_orders()
    assert last_status(engine, close) == "cancelled"  # reduce-only: nothing left to reduce
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == "stop_loss"


def test_a_close_the_venue_lets_past_flat_is_closed_again(tmp_path: Path) -> None:
    """A venue that checks reduce-only when the order is sent: the stop-loss fills, the held
    close goes through all the same and opens a short; the bot closes it at once."""
    engine, venue, breaker, _entry_id = _long_with_bracket(tmp_path)
    venue.hold = True
    venue.ignore_reduce_only = True
    _flatten_at_next_bar(engine, breaker)
    [close] = venue.closes_sent
    engine.run([through_the_stop(3)])
    assert engine.position(SYMBOL).quantity == 0.0
    venue.release()
    engine.pump()
    engine.run(BARS[4:5])  # the close fills: short 1
    [*_, (message, late)] = journaled_events(engine, "risk_flatten")
    assert close in message and "past flat" in message and late["late_fill"] == close
    assert engine.position(SYMBOL).quantity == -1.0
    [_, again] = venue.closes_sent
    engine.run([bar(5, 100.0, 100.0, 100.0, 100.0)])  # the second close fills
    assert last_status(engine, again) == "filled"
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    assert not engine.open_orders()


def test_a_second_flatten_while_the_close_is_held_sends_no_second_close(tmp_path: Path) -> None:
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    venue.hold = True
    _flatten_at_next_bar(engine, breaker)
    _flatten_at_next_bar(engine, breaker, 3)
    assert len(venue.closes_sent) == 1
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]
    assert len(journaled_events(engine, "risk_action")) == 2  # both asks journaled


def test_a_flatten_of_one_symbol_leaves_the_others_orders(tmp_path: Path) -> None:
    """FLATTEN of a symbol touches that symbol's orders only; the flat account's orphan
    children are cancelled with its entries (nothing is left to guard)."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    breaker.ask(ActionKind.FLATTEN, "OTHER")
    engine.run(BARS[2:3])
    assert sorted(working_at(venue)) == sorted(
        [f"{entry}-sl", f"{entry}-tp", resting_limit(engine)]
    )
    assert venue.closes_sent == []


def test_on_a_spot_account_the_close_goes_once_the_venue_released_the_coin(
    tmp_path: Path,
) -> None:
    """The stop-loss holds the coin the close would sell: the venue refuses the close. The
    bot cancels the stop-loss and take-profit and sends the plugin's close again once the
    venue has confirmed their cancels."""
    venue = SpotVenue()
    engine, breaker = _engine(tmp_path / "journal.sqlite", {0: buy_with_bracket}, venue)
    engine.run(BARS[:2])
    entry = bracket_entry(engine)
    _flatten_at_next_bar(engine, breaker)
    [refused] = venue.closes_sent
    [(message, data)] = journaled_events(engine, "flatten_exits_cancelled")
    assert refused in message and "insufficient balance" in message and PLUGIN in message
    assert data["guards"] == [f"{entry}-sl", f"{entry}-tp"]
    assert sorted(venue.asked) == [f"{entry}-sl", f"{entry}-tp"]
    assert journaled_events(engine, "flatten_failed") == []

    engine.pump()
    assert venue.closes_sent == [refused]  # the cancels are not answered yet: no close
    venue.answer_cancels()
    engine.pump()
    [_, again] = venue.closes_sent
    assert refused.startswith(ACTION_IDS) and again.startswith(ACTION_IDS)
    assert _decisions(engine, again) == [(PLUGIN, "approve")]
    [(message, _)] = journaled_events(engine, "risk_flatten")
    assert again in message
    engine.run(BARS[3:4])
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    assert not engine.open_orders()
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == TAG


def test_a_reduce_keeps_the_stops(tmp_path: Path) -> None:
    """REDUCE never cancelled a stop: its order is reduce-only and the bracket's stop-loss and
    take-profit keep guarding what is left."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    breaker.ask(ActionKind.REDUCE, SYMBOL, 0.5)
    engine.run(BARS[2:4])
    assert engine.position(SYMBOL).quantity == pytest.approx(0.5)
    assert {f"{entry}-sl", f"{entry}-tp"} <= set(working_at(venue))


def test_a_risk_flatten_under_an_emergency_flatten_sends_no_second_close(tmp_path: Path) -> None:
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    held: list[str] = []
    submit = venue.submit

    def hold_emergency(order: Order) -> OrderUpdate:
        if order.tag == "emergency-flatten":
            held.append(order.client_order_id)
            return OrderUpdate(order.client_order_id, OrderStatus.PENDING, order.created_ts)
        return submit(order)

    venue.submit = hold_emergency  # type: ignore[method-assign]
    engine.halt("alice", "incident", flatten=True)
    _flatten_at_next_bar(engine, breaker)
    assert len(held) == 1 and venue.closes_sent == []
    assert sorted(working_at(venue)) == [f"{entry}-sl", f"{entry}-tp"]


def test_a_resume_of_a_plain_halt_keeps_a_close_waiting_for_its_guards(tmp_path: Path) -> None:
    """The plugin's close waits for the spot venue to confirm its guards' cancels; a person
    halts (without flatten) and resumes meanwhile: the close still goes once the venue
    confirmed (forgotten, the position would be left with neither its stop nor its close)."""
    venue = SpotVenue()
    engine, breaker = _engine(tmp_path / "journal.sqlite", {0: buy_with_bracket}, venue)
    engine.run(BARS[:2])
    _flatten_at_next_bar(engine, breaker)
    engine.halt("alice", "a look")
    engine.resume("alice", "done")
    venue.answer_cancels()
    engine.pump()
    assert len(venue.closes_sent) == 2
    engine.run(BARS[3:4])
    assert engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()


def test_an_emergency_flatten_takes_a_risk_flatten_over(tmp_path: Path) -> None:
    """The plugin's close works at the venue (a market order fills at the next bar); an
    emergency stop with flatten cancels it (the halt's flatten sends its own): the cancel is
    no failure, and the stop keeps guarding until the halt's close filled."""
    engine, venue, breaker, entry = _long_with_bracket(tmp_path)
    _flatten_at_next_bar(engine, breaker)
    [risk_close] = venue.closes_sent
    engine.halt("alice", "incident", flatten=True)
    assert last_status(engine, risk_close) == "cancelled"
    assert journaled_events(engine, "flatten_failed") == []
    [(_, flattened)] = journaled_events(engine, "flattened")
    closes = flattened["closes"]
    assert isinstance(closes, list) and len(closes) == 1 and closes[0] != risk_close
    assert sorted(working_at(venue)) == sorted([f"{entry}-sl", f"{entry}-tp", closes[0]])
    engine.run(BARS[3:4])
    assert engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()
    assert engine.journal.flatten_owed(engine.config.bot_name) is None  # type: ignore[attr-defined]


# -- the ccxt broker, linear futures (the fake Binance USDⓈ-M) ------------------------------


def _until(engine: Engine, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; working: {engine.open_orders()}")
        engine.pump()
        time.sleep(0.02)


def test_on_futures_a_refused_close_leaves_the_stop_working_at_the_venue(tmp_path: Path) -> None:
    venue = "binance-usdm"
    with harness_for(venue, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        journal = Journal(":memory:")
        start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
        symbol = harness.symbol
        config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
        buy = Scripted(
            {0: lambda ctx, _bar: ctx.buy(symbol, QUANTITY, stop_loss=48_000.0, take_profit=52e3)}
        )
        broker = harness.broker
        breaker = Breaker()
        engine = Engine(
            config,
            buy,
            broker,
            journal,
            [(PLUGIN, breaker)],
            venue=broker,
            brackets=broker,
            hooks=RiskHooks(actors=[(PLUGIN, breaker)]),
        )
        now = int(time.time()) // 60 * 60 - 60
        price = START_PRICE
        engine.run([Bar(symbol, 60, now, price, price, price, price, 1.0)])
        entry = engine.last_order_id
        guards = [f"{entry}-sl", f"{entry}-tp"]

        def status(order_id: str) -> OrderStatus | None:
            report = broker.query_order(order_id)
            return None if report is None else report.status

        _until(
            engine,
            lambda: (
                all(status(g) is OrderStatus.OPEN for g in guards)
                and {o.client_order_id for o in engine.open_orders()} == set(guards)
            ),
        )
        harness.fake.faults.inject(
            "reject",
            path=ORDER_PATH[venue],
            method="POST",
            code=-4131,
            msg="The counterparty's best price does not meet the PERCENT_PRICE filter limit.",
        )
        breaker.ask(ActionKind.FLATTEN)
        engine.run([Bar(symbol, 60, now + 60, price, price, price, price, 1.0)])
        _until(engine, lambda: bool(_journal_events(journal, "flatten_failed")))
        [(message, data)] = _journal_events(journal, "flatten_failed")
        assert data["guards"] == guards and "PERCENT_PRICE" in message
        assert all(status(g) is OrderStatus.OPEN for g in guards)
        assert engine.position(symbol).quantity == QUANTITY


def _journal_events(journal: Journal, kind: str) -> list[tuple[str, dict[str, object]]]:
    rows = journal.query("SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind)
    return [(str(message), json.loads(data) if data else {}) for message, data in rows]
