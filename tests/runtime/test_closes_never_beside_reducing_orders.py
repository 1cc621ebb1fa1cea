"""A close the engine sends on its own never goes beside another order that would reduce the same
position: a flatten's close sized while a late entry's children are cancelled, the close after a
refused stop-loss, a risk plugin's close sent again at a bar. Each waits for the venue to confirm
the cancel of such an order (``Engine._close_or_wait``), or closes only what no close on its way
covers. Found in review (R35) of the flatten's wait (``test_flatten_waits_for_reducing_orders``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.runtime import held_closes
from tests.runtime.held_closes import SlowCancels, journaled_events
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tests.runtime.test_risk_flatten_keeps_stops import PLUGIN, Breaker, HeldCloses
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import STOP_LOSS_TAG, STOP_REFUSED_TAG
from tradefleet_runtime.capabilities import ActionKind
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    CashFlow,
    Fill,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
)
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
BARS = flat_bars([100.0] * 8)
FLATTEN = "emergency-flatten"


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=130.0)


def _rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)


def _engine(
    tmp_path: Path, venue: PaperBroker, actions: dict[int, Action], breaker: Breaker | None = None
) -> Engine:
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    if breaker is None:
        return Engine(config, Scripted(actions=actions), venue, journal, venue=venue)
    return Engine(
        config,
        Scripted(actions=actions),
        venue,
        journal,
        [(PLUGIN, breaker)],
        venue=venue,
        hooks=RiskHooks(actors=[(PLUGIN, breaker)]),
    )


def _refuse_stop(engine: Engine, venue: PaperBroker, stop: str) -> None:
    """The venue refuses a working stop-loss (its price crossed): reported as an event."""
    venue._queued.append(
        OrderUpdate(
            stop,
            OrderStatus.REJECTED,
            engine.now,
            "stop price crossed",
            code=ReasonCode.INVALID_PRICE,
        )
    )
    engine.pump()


def _working(engine: Engine) -> list[tuple[str, str, str, float]]:
    return [
        (o.client_order_id, o.tag, o.side.value, o.quantity) for o in engine.open_orders(SYMBOL)
    ]


def _closing_in_flight(engine: Engine) -> float:
    """What the working orders on the closing side of the position would trade, left to fill,
    but the guards (bracket children, which the flatten keeps on purpose)."""
    held = engine.position(SYMBOL).quantity
    closing = "sell" if held > 0.0 else "buy"
    return sum(
        o.quantity
        for o in engine.open_orders(SYMBOL)
        if o.side.value == closing and o.parent_id is None
    )


# -- a cancel answered at once inside ``_close_late_entry`` ends the wait ---------------------


class ReportsLater(PaperBroker):
    """The plain paper venue — cancels answered at once — whose executions at a bar are
    reported as events (``pump``), as every real venue reports them: an order it filled is
    gone from its book (a cancel finds nothing: None) before the bot hears of the fill."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams())
        self.later = False

    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow]:
        events = super().on_bar(bar)
        if not self.later:
            return events
        self._queued.extend(e for e in events if not isinstance(e, CashFlow))
        return [e for e in events if isinstance(e, CashFlow)]  # booked as ever


def test_a_late_fill_whose_childrens_cancel_ends_the_wait_gets_no_close_of_its_own(
    tmp_path: Path,
) -> None:
    """Long 1 and a resting reversal (sell 2 at 120, bracketed). The venue fills the sell; before
    the bot hears it, the emergency flatten asks its cancel and waits. The fill comes (short 1):
    the late entry's children are cancelled first, and a cancel answered at once ends the wait
    and sends the waiting close of the short. The late entry then sent a close of its own too
    (2 bought for 1 held short); now the waiting close is the only one."""

    def reverse(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(
            SYMBOL,
            2.0,
            order_type=OrderType.LIMIT,
            price=120.0,
            stop_loss=130.0,
            take_profit=100.0,
        )

    venue = ReportsLater()
    engine = _engine(tmp_path, venue, {0: _buy, 1: reverse})
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 1.0
    venue.later = True
    engine.run([bar(2, 100.0, 121.0, 99.0, 115.0)])  # trades through 120: the venue fills it
    assert engine.position(SYMBOL).quantity == 1.0  # not heard yet
    engine.halt("alice", "incident", flatten=True)
    [(_, flattened)] = journaled_events(engine, "flattened")
    assert flattened["waiting"]  # the close waits for the reversal's cancel
    engine.pump()  # the reversal's fill: short 1
    held = engine.position(SYMBOL).quantity
    assert held == -1.0
    closes = [
        (o.client_order_id, o.quantity) for o in engine.open_orders(SYMBOL) if o.tag == FLATTEN
    ]
    assert _closing_in_flight(engine) <= abs(held) + 1e-12, (
        f"closes on their way {closes} buy more than the {abs(held)} held short"
    )


# -- a close on its way sized before the position grew ---------------------------------------


class HeldStopRefusedCloses(held_closes.HeldCloses):
    close_tag = STOP_REFUSED_TAG


def test_a_stop_refused_beside_a_close_sized_before_an_entry_closes_that_entry(
    tmp_path: Path,
) -> None:
    """Long 1 (bracket A); A's stop-loss refused: its close of 1 goes (held unanswered). The
    strategy buys 1 more (bracket B), and B's stop-loss is refused too: the close on its way
    covers only A's 1, so B's 1 is closed beside it — never left bare with nothing coming."""
    venue = HeldStopRefusedCloses()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _buy})
    engine.run(BARS[:2])
    [stop_a] = [o.client_order_id for o in engine.open_orders(SYMBOL) if o.tag == STOP_LOSS_TAG]
    venue.hold = True
    _refuse_stop(engine, venue, stop_a)
    [(_close, tag, _side, quantity)] = _working(engine)
    assert quantity == 1.0 and tag == STOP_REFUSED_TAG
    engine.run(BARS[2:4])  # the second entry, sent at bar 2, fills at bar 3's open
    assert engine.position(SYMBOL).quantity == 2.0
    [stop_b] = [o.client_order_id for o in engine.open_orders(SYMBOL) if o.tag == STOP_LOSS_TAG]
    _refuse_stop(engine, venue, stop_b)
    venue.release()  # the venue takes the held close: it fills at the next open
    engine.pump()
    engine.run(BARS[4:7])
    held = engine.position(SYMBOL).quantity
    assert held == 0.0 or engine.open_orders(SYMBOL), (
        f"{held} {SYMBOL} held with nothing working (its stop-loss refused) and nothing sent; "
        f"close_owed={engine.journal.closes_owed('bot')}"  # type: ignore[attr-defined]
    )


# -- closes sent outside ``_close_keeping_guards`` --------------------------------------------


def test_the_close_after_a_refused_stop_waits_for_a_resting_sells_cancel(tmp_path: Path) -> None:
    """Long 1 with its bracket and the strategy's resting sell of 1. The venue refuses the
    stop-loss: the close of the position went at once beside the resting sell (2 to sell for 1
    held); now the sell is cancelled and the close waits for the venue to confirm it."""
    venue = SlowCancels()
    engine = _engine(tmp_path, venue, {0: _buy, 1: _rest_a_sell})
    engine.run(BARS[:2])
    [stop] = [o.client_order_id for o in engine.open_orders(SYMBOL) if o.tag == STOP_LOSS_TAG]
    _refuse_stop(engine, venue, stop)
    held = engine.position(SYMBOL).quantity
    assert _closing_in_flight(engine) <= held + 1e-12, (
        f"{_working(engine)} sell more than the {held} held"
    )


def test_a_risk_close_sent_again_waits_for_a_resting_sells_cancel(tmp_path: Path) -> None:
    """A risk plugin's close refused for a passing reason is sent again at the next bar, after
    the strategy (not halted by the plugin's flatten) rested a sell: it went beside it; now it
    waits for that sell's cancel."""
    venue = HeldCloses(ReasonCode.RATE_LIMITED)
    breaker = Breaker()
    engine = _engine(tmp_path, venue, {0: _buy, 2: _rest_a_sell}, breaker)
    engine.run(BARS[:1])
    breaker.ask(ActionKind.FLATTEN, SYMBOL)
    engine.run(BARS[1:2])  # the plugin's close, refused: retried at the next bar
    engine.run(BARS[2:3])  # retried (refused again); the strategy rests a sell
    venue.refuse = None
    engine.run(BARS[3:4])  # retried: taken
    held = engine.position(SYMBOL).quantity
    assert _closing_in_flight(engine) <= held + 1e-12, (
        f"{_working(engine)} sell more than the {held} held"
    )
