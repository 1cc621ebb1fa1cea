"""A flatten never sends its close beside another order that would reduce the same position.

A flatten (the emergency stop's, the stop policy's, a risk plugin's) cancels every working
order of a position but its stop-loss and take-profit, and closes the position at market. An
order that would reduce the position too — a strategy's resting sell, the restart's close of
a spent bracket (``-bs``), a risk plugin's close the emergency takes over — may fill before
its cancel lands. Sent at once beside it, the flatten's close and that fill would together
sell twice what the bot holds: on spot, which knows no reduce-only, the account's other coins.
So the close waits for the venue to confirm those cancels (or for the order to end however it
ends), and closes what is left then; the position's guards keep working meanwhile.

The venue is the paper broker whose cancels take effect only when the test answers them, as a
real venue's do (``SlowCancels``).
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime import test_reconcile_spent_uncovered as spent
from tests.runtime.held_closes import AnsweredCancels, SlowCancels, journaled_events
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tests.runtime.test_risk_flatten_keeps_stops import PLUGIN, Breaker, HeldCloses
from tradefleet_runtime.brackets import BRACKET_SPENT_TAG, STOP_LOSS_TAG
from tradefleet_runtime.capabilities import ActionKind
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    CarriedState,
    Fill,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
    Side,
)
from tradefleet_runtime.reconcile import ReconcilePlan
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
BARS = flat_bars([100.0] * 4)
FLATTEN = "emergency-flatten"


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=130.0)


def _rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)


def _slow_engine(tmp_path: Path, actions: dict[int, Action]) -> tuple[Engine, SlowCancels]:
    """A paper bot on TEST whose venue answers cancels when the test says (``SlowCancels``)."""
    venue = SlowCancels()
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    engine = Engine(config, Scripted(actions=actions), venue, journal, venue=venue)
    return engine, venue


def _long_with_a_resting_sell(tmp_path: Path) -> tuple[Engine, SlowCancels, str]:
    """A bot holding 1 TEST with its stop-loss and take-profit working, and a limit sell of
    the whole position resting at 120 (the strategy's own exit): (engine, venue, sell id)."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell})
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 1.0
    [sell] = [o.client_order_id for o in engine.open_orders() if o.parent_id is None]
    return engine, venue, sell


def _closes(engine: Engine, tag: str = FLATTEN) -> list[tuple[str, float]]:
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT client_order_id, quantity FROM orders WHERE tag = ? ORDER BY rowid", tag
    )
    return [(str(cid), float(qty)) for cid, qty in rows]


def _guards(engine: Engine) -> list[str]:
    return sorted(o.client_order_id for o in engine.open_orders() if o.parent_id is not None)


def test_the_emergency_close_waits_for_the_resting_sells_cancel_then_closes(
    tmp_path: Path,
) -> None:
    engine, venue, sell = _long_with_a_resting_sell(tmp_path)
    guards = _guards(engine)
    engine.halt("alice", "incident", flatten=True)
    assert venue.asked == [sell]
    assert _closes(engine) == []  # nothing beside the sell whose cancel is not confirmed
    [(message, flattened)] = journaled_events(engine, "flattened")
    assert flattened["left"] == [SYMBOL] and flattened["waiting"] == {SYMBOL: [sell]}
    assert f"confirm the cancel of {sell}" in message
    assert engine.journal.flatten_owed("bot") == ("alice", "incident")  # type: ignore[attr-defined]
    assert engine.exits_kept([SYMBOL]) == guards  # the stop-loss still guards the position

    engine.pump()
    assert _closes(engine) == []
    venue.answer_cancels()
    engine.pump()
    [(close, quantity)] = _closes(engine)
    assert quantity == 1.0
    [_, (message, later)] = journaled_events(engine, "flattened")
    assert sell in message and later["closes"] == [close] and later["left"] == []
    engine.run(BARS[2:3])
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    venue.answer_cancels()  # the guards, cancelled once the close filled
    engine.pump()
    assert not engine.open_orders()
    [trade] = engine.portfolio.trades
    assert trade.exit_reason == FLATTEN


def test_a_resting_sell_that_fills_before_its_cancel_lands_closes_the_position_alone(
    tmp_path: Path,
) -> None:
    """The old flatten sent its close at once: it filled at the next open and the resting
    sell filled too, selling 2 of the 1 held (on a futures account the bot went short and
    closed that again; on spot, the account's other coins were sold)."""
    engine, venue, sell = _long_with_a_resting_sell(tmp_path)
    engine.halt("alice", "incident", flatten=True)
    engine.run([bar(2, 100.0, 125.0, 99.0, 121.0)])  # trades through 120: the sell fills
    assert engine.position(SYMBOL).quantity == 0.0
    venue.answer_cancels()
    engine.pump()
    engine.run(BARS[3:4])
    assert _closes(engine) == []
    assert engine.position(SYMBOL).quantity == 0.0 and not venue.positions()
    [trade] = engine.portfolio.trades
    assert trade.exit_price == 120.0
    [_, (message, done)] = journaled_events(engine, "flattened")
    assert sell in message and done["left"] == [] and done["closes"] == []
    assert engine.journal.flatten_owed("bot") is None  # type: ignore[attr-defined]


def test_a_part_fill_before_the_cancel_lands_leaves_only_the_rest_to_close(tmp_path: Path) -> None:
    engine, venue, sell = _long_with_a_resting_sell(tmp_path)
    engine.halt("alice", "incident", flatten=True)
    # The venue executes 0.4 of the sell before it takes the cancel.
    venue._queued.append(Fill(sell, SYMBOL, Side.SELL, 0.4, 120.0, 0.0, BARS[2].ts, "part"))
    engine.pump()
    assert engine.position(SYMBOL).quantity == 0.6
    assert _closes(engine) == []
    venue.answer_cancels()
    engine.pump()
    [(_close, quantity)] = _closes(engine)
    assert abs(quantity - 0.6) < 1e-12


def test_the_stop_policys_close_waits_too_and_is_owed_meanwhile(tmp_path: Path) -> None:
    engine, venue, sell = _long_with_a_resting_sell(tmp_path)
    engine.flatten_on_stop([SYMBOL])
    assert venue.asked == [sell] and _closes(engine, "stop-flatten") == []
    assert engine.flatten_pending([SYMBOL]) == [SYMBOL]
    assert engine.journal.closes_owed("bot") == {SYMBOL: ("stop-flatten", None)}  # type: ignore[attr-defined]
    [(message, data)] = journaled_events(engine, "stop_flatten")
    assert sell in message and data["waiting_for"] == [sell]
    venue.answer_cancels()
    engine.pump()
    [(_close, quantity)] = _closes(engine, "stop-flatten")
    assert quantity == 1.0
    engine.run(BARS[2:3])
    assert engine.position(SYMBOL).quantity == 0.0
    venue.answer_cancels()  # the guards, cancelled once the close filled
    engine.pump()
    assert engine.flatten_pending([SYMBOL]) == []
    assert engine.journal.closes_owed("bot") == {}  # type: ignore[attr-defined]


def test_an_emergency_flatten_right_after_a_restarts_spent_close_sends_nothing_beside_it(
    tmp_path: Path,
) -> None:
    """Walkthrough W20: the restart sent ``-bs`` for the 0.6 its spent bracket left bare; the
    operator's ``EmergencyStop(flatten)`` comes before it filled. The old flatten asked its
    cancel and sent a close of the 0.6 beside it at once."""
    venue = SlowCancels()
    venue.connect(BrokerContext("bot", Mode.PAPER, ("BTC",), "USD", 100_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", ("BTC",), HOUR, 100_000.0, equity_chunk=1)
    engine = Engine(config, Scripted(), venue, journal, venue=venue)
    working = spent._working(0.4)
    state = CarriedState(
        initial_capital=100_000.0,
        fills=[spent._fill("tfentry", 0.4, 1)],
        working=working,
        known_order_ids=frozenset(order.client_order_id for order, _ in working),
    )
    at_venue = spent._children_at_venue(0.4, 0.4)
    plan = ReconcilePlan(
        missed_fills=(spent._fill("tfentry", 0.6, 2), spent._fill(spent.SL, 0.4, 3, Side.SELL)),
        closed=(
            (spent.ENTRY.client_order_id, spent._report(spent.ENTRY, 1.0, 1.0)),
            (spent.SL, at_venue[spent.SL]),
        ),
        adopted=(at_venue[spent.TP],),
        orphaned=(spent.TP,),
    )
    engine.restore_from_venue(state, plan, 10)
    assert _closes(engine, BRACKET_SPENT_TAG) == [(spent.BS, 0.6)]

    engine.halt("operator", "spec.emergencyStop", flatten=True)
    assert spent.BS in venue.asked
    assert _closes(engine) == []  # nothing beside -bs, whose cancel is not confirmed
    venue.answer_cancels()
    engine.pump()
    [(_close, quantity)] = _closes(engine)
    assert abs(quantity - 0.6) < 1e-12 and engine.position("BTC").quantity == 0.6


# -- found in review (R34) -------------------------------------------------------------------


def _reducing_in_flight(engine: Engine) -> float:
    """What the working orders that would reduce the (long) position sell, left to fill:
    the flatten's closes, any other close, a resting sell — but not the guards, which the
    flatten keeps on purpose (OCO with each other, cancelled once flat)."""
    return sum(
        o.quantity
        for o in engine.open_orders(SYMBOL)
        if o.side.value == "sell" and o.parent_id is None
    )


# -- 1. liveness: a waited order that ends by its fill alone ---------------------------------


def test_a_waited_sell_its_fill_ended_lets_the_close_of_the_rest_go(
    tmp_path: Path,
) -> None:
    """Long 1 with a resting sell of 0.5 (a partial exit). The flatten waits for the sell's
    cancel; the sell fills whole first, and the venue ends it with its fill alone (no final
    status follows). The close of the 0.5 left goes then: before, nothing ever closed it, and
    a second flatten sent nothing either (the wait counted as a close on its way)."""

    def rest_half(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 0.5, order_type=OrderType.LIMIT, price=120.0)

    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: rest_half})
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 1.0
    engine.halt("alice", "incident", flatten=True)
    engine.run([bar(2, 100.0, 125.0, 99.0, 121.0)])  # trades through 120: the sell fills whole
    assert engine.position(SYMBOL).quantity == 0.5
    [(_close, quantity)] = _closes(engine)  # the rest's close went at once
    assert quantity == 0.5
    venue.answer_cancels()  # the sell's cancel finds nothing working
    engine.pump()
    engine.run(flat_bars([100.0] * 6)[3:5])
    engine.halt("bob", "still open?", flatten=True)  # a second flatten, to be sure
    engine.pump()
    engine.run(flat_bars([100.0] * 6)[5:6])
    closes = [o for o in engine.open_orders(SYMBOL) if o.tag == FLATTEN]
    assert closes or engine.position(SYMBOL).quantity == 0.0, (
        f"held {engine.position(SYMBOL).quantity}, flatten_pending="
        f"{engine.flatten_pending([SYMBOL])}, no emergency close ever sent"
    )


# -- 2. money: a close sent while the wait was on, then the waiting close beside it -----------


def test_a_late_entry_while_the_close_waits_is_closed_by_that_close_alone(tmp_path: Path) -> None:
    """Long 1, a resting sell of 1 and a resting buy of 1. The flatten waits for the sell's
    cancel; the buy fills first (its cancel lost the race). Before, the late fill got a close
    of its own at once, and the waiting close then closed the whole 2 beside it: 3 sold for 2
    held. Now the waiting close closes all that is held when it goes."""

    def rest_both(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)
        ctx.buy(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=95.0)

    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: rest_both})
    engine.run(BARS[:2])
    engine.halt("alice", "incident", flatten=True)
    engine.run([bar(2, 100.0, 101.0, 94.0, 96.0)])  # the buy fills at 95 (stop at 90 holds)
    assert engine.position(SYMBOL).quantity == 2.0
    venue.answer_cancels()
    engine.pump()
    held = engine.position(SYMBOL).quantity
    closes = [
        (o.client_order_id, o.quantity) for o in engine.open_orders(SYMBOL) if o.tag == FLATTEN
    ]
    assert _reducing_in_flight(engine) <= held + 1e-12, (
        f"closes on their way {closes} sell more than the {held} held"
    )


def test_a_strategys_close_while_the_flatten_waits_is_cancelled_and_waited_for(
    tmp_path: Path,
) -> None:
    """Halted, a strategy's ``close`` still goes (reduce-only). Sent while the flatten's close
    waits, it is cancelled and waited for too: before, the flatten's close went beside it."""

    def rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)

    def close(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.close(SYMBOL)

    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: rest_a_sell, 2: close})
    engine.run(BARS[:2])
    engine.halt("alice", "incident", flatten=True)
    # The strategy's close is sent at this bar's close (the paper venue fills it next open).
    engine.run(BARS[2:3])
    venue.answer_cancels()
    engine.pump()
    held = engine.position(SYMBOL).quantity
    working = [(o.client_order_id, o.tag, o.quantity) for o in engine.open_orders(SYMBOL)]
    assert _reducing_in_flight(engine) <= held + 1e-12, f"{working} sell more than the {held} held"


def test_a_stop_refused_while_the_close_waits_sends_no_close_beside_it(
    tmp_path: Path,
) -> None:
    """The venue refuses the position's stop-loss while the flatten's close waits: the close
    after a refused stop (``_exit_unprotected``) used to go at once beside the unconfirmed
    sell, and the waiting close beside both. The flatten's close, once it goes, is the one."""

    def rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)

    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: rest_a_sell})
    engine.run(BARS[:2])
    [stop] = [o.client_order_id for o in engine.open_orders(SYMBOL) if o.tag == STOP_LOSS_TAG]
    engine.halt("alice", "incident", flatten=True)
    venue._queued.append(
        OrderUpdate(
            stop,
            OrderStatus.REJECTED,
            BARS[1].ts,
            "stop price crossed",
            code=ReasonCode.INVALID_PRICE,
        )
    )
    engine.pump()
    venue.answer_cancels()
    engine.pump()
    held = engine.position(SYMBOL).quantity
    working = [(o.client_order_id, o.tag, o.quantity) for o in engine.open_orders(SYMBOL)]
    assert _reducing_in_flight(engine) <= held + 1e-12, f"{working} sell more than the {held} held"


# -- 3. truthfulness: the journal says the flatten finished while its close still waits ------


def test_the_flatten_is_owed_while_its_close_waits(tmp_path: Path) -> None:
    """A late entry's fill while the flatten's close waits: the newest ``flattened`` event still
    names the symbol as left, so the journal owes the flatten (a restart sends it)."""

    def rest_both(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)
        ctx.buy(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=95.0)

    engine, _venue = _slow_engine(tmp_path, {0: _buy, 1: rest_both})
    engine.run(BARS[:2])
    engine.halt("alice", "incident", flatten=True)
    engine.run([bar(2, 100.0, 101.0, 94.0, 96.0)])  # the buy fills late
    engine.run(flat_bars([100.0] * 6)[3:4])  # the sell's cancel still unanswered
    assert engine.position(SYMBOL).quantity == 2.0
    assert engine.flatten_pending([SYMBOL]) == [SYMBOL]  # the engine knows it still waits
    owed = engine.journal.flatten_owed("bot")  # type: ignore[attr-defined]
    assert owed == ("alice", "incident"), "the journal says the flatten finished"


# -- 4. a close refused for good is sent again (and its refusal forgotten) through the wait ---


class _SlowCancelsRefusingRiskCloses(AnsweredCancels, HeldCloses):
    """The paper venue: the breaker's closes refused for good (below the minimum), cancels
    answered when the test says (``answer_cancels``)."""

    def __init__(self) -> None:
        super().__init__(ReasonCode.BELOW_MIN_QUANTITY)
        self.asked = []


def test_a_stuck_close_stays_stuck_through_the_wait(tmp_path: Path) -> None:
    """A risk plugin's close refused for a reason no retry changes is stuck. The plugin's next
    FLATTEN finds a resting sell: the sell is cancelled, but nothing is owed afresh (a restart
    would resume the stuck close) and the close is not sent again once the cancel lands."""

    def rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)

    venue = _SlowCancelsRefusingRiskCloses()
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    breaker = Breaker()
    engine = Engine(
        config,
        Scripted(actions={0: _buy, 2: rest_a_sell}),
        venue,
        journal,
        [(PLUGIN, breaker)],
        venue=venue,
        hooks=RiskHooks(actors=[(PLUGIN, breaker)]),
    )
    engine.run(BARS[:1])
    breaker.ask(ActionKind.FLATTEN, SYMBOL)
    engine.run(BARS[1:2])
    stuck = {SYMBOL: (f"risk:{PLUGIN}", "below_min_quantity")}
    assert engine.journal.closes_owed("bot") == stuck  # type: ignore[attr-defined]
    assert len(venue.closes_sent) == 1
    engine.run(BARS[2:3])  # the strategy rests a sell
    breaker.ask(ActionKind.FLATTEN, SYMBOL)
    engine.run(flat_bars([100.0] * 6)[3:4])
    assert engine.journal.closes_owed("bot") == stuck, "a restart now resumes the stuck close"  # type: ignore[attr-defined]
    venue.answer_cancels()
    engine.pump()
    assert len(venue.closes_sent) == 1, f"the stuck close was sent again: {venue.closes_sent}"
