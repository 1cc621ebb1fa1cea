"""The stop policy's flatten (``spec.onStop.flattenPositions``) never leaves a position bare.

A stopping bot closes each position at market, but keeps the position's stop-loss and
take-profit working until that close has filled; then it cancels them and waits for the
venue's word on those cancels too (``STOP_CANCEL_WAIT_S``). A close the venue refuses, or does
not answer before the process exits, leaves the position under its stop — and the ``stopped``
event (and the log) says the close was not confirmed and which orders still protect it.

The venue is the paper broker answering as a venue does, later, as events (``AnsweringVenue``):
the stop's closes are filled, refused or never answered as the test says.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from tests.brokers.harness import BOT, ORDER_PATH, QUANTITY, START_PRICE, VenueHarness, harness_for
from tests.runtime.held_closes import last_status
from tests.runtime.helpers import (
    HOUR,
    Action,
    Scripted,
    bar,
    flat_bars,
    paper_engine,
    start_test_run,
)
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
)
from tradefleet_runtime.session import Bot, apply_stop_policy
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
CLOSE_TAG = "stop-flatten"
BARS = flat_bars([100.0] * 3)
WAIT_S = 0.5  # the stop's wait for the venue's answers (15 s in a pod)


class AnsweringVenue(PaperBroker):
    """The paper account answering as a venue: the stop's closes are filled at the next look
    (``answer="fill"``), refused (``"refuse"``) or never answered (``"silent"``). With
    ``spot`` a resting sell holds the coin it sells (a close of what they hold is refused for
    want of funds) and cancels take effect only when the venue answers them, at the next
    look."""

    def __init__(self, answer: str = "fill", *, spot: bool = False) -> None:
        super().__init__(PaperBrokerParams())
        self.answer = answer
        self.spot = spot
        self.asked: list[str] = []
        self.closes_sent: list[str] = []
        self._tick = False

    def submit(self, order: Order) -> OrderUpdate:
        if order.tag != CLOSE_TAG:
            return super().submit(order)
        self.closes_sent.append(order.client_order_id)
        if self.spot:
            held = self.positions()[order.symbol].quantity
            resting = sum(o.quantity for o in self.open_orders() if o.side is order.side)
            if order.quantity > held - resting + 1e-12:
                return self._refused(order, "Account has insufficient balance for requested "
                                     "action.", ReasonCode.INSUFFICIENT_FUNDS)  # fmt: skip
        if self.answer == "refuse":
            return self._refused(order, "the venue is in maintenance", ReasonCode.VENUE_UNAVAILABLE)
        if self.answer == "silent":
            return OrderUpdate(order.client_order_id, OrderStatus.PENDING, order.created_ts)
        self._tick = True  # a market order: the venue fills it at its next look
        return super().submit(order)

    def _refused(self, order: Order, reason: str, code: ReasonCode) -> OrderUpdate:
        return OrderUpdate(order.client_order_id, OrderStatus.REJECTED, order.created_ts, reason,
                           code=code)  # fmt: skip

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        if not self.spot:
            return super().cancel(client_order_id)
        self.asked.append(client_order_id)
        return None

    def drain_events(self) -> list[Fill | OrderUpdate]:
        asked, self.asked = self.asked, []
        for order_id in asked:
            update = PaperBroker.cancel(self, order_id)
            if update is not None:
                self._queued.append(update)
        if self._tick:
            self._tick = False
            self._queued.extend(self.on_bar(bar(3, 100.0, 100.0, 100.0, 100.0)))
        return list(super().drain_events())


def _buy_with_bracket(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=110.0)


def _rest_a_limit_buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=80.0)


def _bot(tmp_path: Path, engine: Engine, venue: AnsweringVenue | None) -> Bot:
    manifest = parse_manifest(
        {
            "apiVersion": "tradefleet.io/v1alpha1",
            "kind": "TradingBot",
            "metadata": {"name": "bot"},
            "spec": {
                "mode": "paper",
                "strategy": {"name": "ema-cross"},
                "market": {"symbols": [SYMBOL], "timeframe": "1h"},
                "broker": {"name": "paper"},
                "capital": {"currency": "USD", "initial": 10_000},
                "onStop": {"cancelOpenOrders": True, "flattenPositions": True},
            },
        }
    )
    return Bot(manifest, engine.strategy, engine.broker, None, [], tmp_path, venue=venue,
               executes=venue)  # fmt: skip


def _long_with_bracket(
    tmp_path: Path, venue: AnsweringVenue, actions: dict[int, Action] | None = None
) -> tuple[Engine, str]:
    """A bot holding 1 TEST bought at 100, its stop-loss at 90 and take-profit at 110 working
    at the venue, and a limit buy at 80 resting: (engine, entry id)."""
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    strategy = Scripted(actions=actions or {0: _buy_with_bracket, 1: _rest_a_limit_buy})
    engine = Engine(config, strategy, venue, journal, venue=venue)
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 1.0
    [entry] = {o.parent_id for o in engine.open_orders() if o.parent_id is not None}
    assert entry is not None
    return engine, entry


def _working(venue: PaperBroker) -> list[str]:
    return sorted(o.client_order_id for o in venue.open_orders())


def _stopped(engine: Engine) -> tuple[str, dict[str, object]]:
    [(message, data)] = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT message, data FROM events WHERE kind = 'stopped'"
    )
    return str(message), json.loads(data)


def test_a_refused_close_leaves_the_position_its_stop_and_the_journal_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The reproduction: the stop policy's close cancelled the stop-loss and take-profit
    first; the venue refused the close, and the process exited with the position open and no
    stop at the venue."""
    venue = AnsweringVenue("refuse")
    engine, entry = _long_with_bracket(tmp_path, venue)
    guards = [f"{entry}-sl", f"{entry}-tp"]
    with caplog.at_level(logging.ERROR, "tradefleet.session"):
        apply_stop_policy(_bot(tmp_path, engine, venue), engine, WAIT_S)

    assert engine.position(SYMBOL).quantity == 1.0
    assert _working(venue) == guards  # the entry is cancelled, the stop still guards
    [close] = venue.closes_sent
    message, data = _stopped(engine)
    assert "positions flattened" not in message
    assert "flatten NOT confirmed filled" in message and close in message
    assert f"{entry}-sl" in message and "still protect" in message
    assert data["flatten_unconfirmed"] == [close] and data["exits_kept"] == guards
    assert data["cancel_unconfirmed"] == []  # the guards were never asked to cancel
    assert data["open_orders"] == guards
    assert any(close in r.getMessage() and f"{entry}-sl" in r.getMessage() for r in caplog.records)
    [(failed,)] = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT message FROM events WHERE kind = 'flatten_failed'"
    )
    assert close in str(failed) and "venue is in maintenance" in str(failed)


def test_a_close_unanswered_before_exit_leaves_the_stop_working(tmp_path: Path) -> None:
    venue = AnsweringVenue("silent")
    engine, entry = _long_with_bracket(tmp_path, venue)
    guards = [f"{entry}-sl", f"{entry}-tp"]
    apply_stop_policy(_bot(tmp_path, engine, venue), engine, WAIT_S)

    assert _working(venue) == guards
    [close] = venue.closes_sent
    message, data = _stopped(engine)
    assert "flatten NOT confirmed filled within 0.5s" in message and close in message
    assert data["flatten_unconfirmed"] == [close] and data["exits_kept"] == guards
    assert data["cancel_unconfirmed"] == []
    assert sorted(data["open_orders"]) == sorted([*guards, close])  # type: ignore[call-overload]


def test_a_filled_close_takes_the_stop_and_target_with_it(tmp_path: Path) -> None:
    venue = AnsweringVenue("fill")
    engine, entry = _long_with_bracket(tmp_path, venue)
    apply_stop_policy(_bot(tmp_path, engine, venue), engine, WAIT_S)

    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    assert _working(venue) == [] and not engine.open_orders()
    message, data = _stopped(engine)
    assert message.endswith("resting orders cancelled; positions flattened"), message
    assert data["flatten_unconfirmed"] == [] and data["cancel_unconfirmed"] == []
    assert (last_status(engine, f"{entry}-sl"), last_status(engine, f"{entry}-tp")) == (
        "cancelled",
        "cancelled",
    )
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == CLOSE_TAG


def test_on_a_spot_account_the_close_goes_once_the_venue_released_the_coin(
    tmp_path: Path,
) -> None:
    """The stop-loss holds the coin: the venue refuses a close sent while it rests. The bot
    cancels the stop-loss and take-profit, and closes once the venue confirmed the cancels
    (before, the close went out with the cancels unanswered, was refused, and the process
    exited holding the coin with no stop)."""
    venue = AnsweringVenue("fill", spot=True)
    engine, _entry = _long_with_bracket(tmp_path, venue, {0: _buy_with_bracket})
    apply_stop_policy(_bot(tmp_path, engine, venue), engine, WAIT_S)

    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    assert _working(venue) == [] and not engine.open_orders()
    refused, filled = venue.closes_sent
    assert last_status(engine, refused) == "rejected" and last_status(engine, filled) == "filled"
    message, data = _stopped(engine)
    assert message.endswith("positions flattened"), message
    assert data["flatten_unconfirmed"] == [] and data["cancel_unconfirmed"] == []


def test_a_paper_bot_keeps_the_stop_with_its_close_and_the_restart_cancels_it(
    tmp_path: Path,
) -> None:
    """A paper bot's close fills at the next bar, in its next run: until then the position
    keeps its stop-loss and take-profit (the journal re-arms all three); once the re-armed close
    has filled, they protect nothing and are cancelled."""
    venue = AnsweringVenue("fill")
    engine, entry = _long_with_bracket(tmp_path, venue)
    guards = [f"{entry}-sl", f"{entry}-tp"]
    apply_stop_policy(_bot(tmp_path, engine, None), engine)
    [close] = venue.closes_sent
    assert {o.client_order_id for o in engine.open_orders()} == {close, *guards}
    engine.journal.close()  # type: ignore[attr-defined]

    journal = Journal(tmp_path / "journal.sqlite")
    restarted = paper_engine(journal, "run-2", Scripted(), restores_account=True)
    carried = journal.carried_state("bot")
    assert carried is not None
    restarted.restore(carried)
    assert {o.client_order_id for o in restarted.open_orders()} == {close, *guards}
    restarted.run([bar(3, 100.0, 100.0, 100.0, 100.0)])  # the close fills at the open
    assert restarted.position(SYMBOL).quantity == 0.0
    assert not restarted.open_orders()
    statuses = dict(journal.order_statuses())
    assert (statuses[close], statuses[guards[0]], statuses[guards[1]]) == (
        "filled",
        "cancelled",
        "cancelled",
    )
    journal.close()


# -- the ccxt broker, linear futures (the fake Binance USDⓈ-M) ------------------------------


def test_on_futures_a_refused_close_leaves_the_stop_working_at_the_venue(tmp_path: Path) -> None:
    """Before, the stop-loss and take-profit were cancelled at the venue with the close; the
    venue refused the close and the process exited holding 0.01 BTC with no stop there."""
    with harness_for("binance-usdm", tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        broker = harness.broker
        journal = Journal(":memory:")
        start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
        symbol, price = harness.symbol, START_PRICE
        config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
        buy = Scripted(
            {0: lambda ctx, _b: ctx.buy(symbol, QUANTITY, stop_loss=48e3, take_profit=52e3)}
        )
        engine = Engine(config, buy, broker, journal, venue=broker, brackets=broker)
        now = int(time.time()) // 60 * 60 - 60
        engine.run([Bar(symbol, 60, now, price, price, price, price, 1.0)])
        entry = engine.last_order_id
        guards = [f"{entry}-sl", f"{entry}-tp"]

        def at_venue(order_id: str) -> OrderStatus | None:
            report = broker.query_order(order_id)
            return None if report is None else report.status

        deadline = time.monotonic() + 10.0
        while not (
            all(at_venue(g) is OrderStatus.OPEN for g in guards)
            and {o.client_order_id for o in engine.open_orders()} == set(guards)
        ):
            assert time.monotonic() < deadline, engine.open_orders()
            engine.pump()
            time.sleep(0.02)
        harness.fake.faults.inject(
            "reject",
            path=ORDER_PATH["binance-usdm"],
            method="POST",
            code=-4131,
            msg="The counterparty's best price does not meet the PERCENT_PRICE filter limit.",
        )
        apply_stop_policy(_bot(tmp_path, engine, broker), engine, 5.0)

        assert all(at_venue(g) is OrderStatus.OPEN for g in guards)
        assert engine.position(symbol).quantity == QUANTITY
        message, data = _stopped(engine)
        assert "flatten NOT confirmed filled" in message and "(rejected)" in message
        assert data["exits_kept"] == guards and data["cancel_unconfirmed"] == []
