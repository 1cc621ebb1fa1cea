"""A spot flatten and the entries that fill after its cancel: the late entry's close waits for its
exits' cancels and closes only what no close on its way covers; a resume that forgets a spot wait
says the position runs without its exits. Found and checked in review (R38).

The paper venue as a spot account (it declares ``closes_from_balance``, so the engine cancels a
position's stop-loss and take-profit before its close), its cancels answered one by one when
the test says (``answer``), the flatten's closes held unanswered when the test says (``hold``).
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime.held_closes import HeldCloses, journaled_events
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_runtime.capabilities import SpotCloses
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
    Side,
)
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
FLATTEN = "emergency-flatten"
BARS = flat_bars([100.0] * 3)


class SlowHeld(HeldCloses):
    """The paper venue, the flatten's closes in the test's hands (``hold``, ``release``), a
    cancel taking effect only when the test answers it (``answer``: those named, or all)."""

    close_tag = FLATTEN

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self.asked.append(client_order_id)
        return None

    def answer(self, *ids: str) -> None:
        for order_id in ids or tuple(self.asked):
            self.asked.remove(order_id)
            update = PaperBroker.cancel(self, order_id) or OrderUpdate(
                order_id, OrderStatus.CANCELLED, self._now, "cancelled at the bot's request"
            )  # one the paper venue never placed (a fill the test handed the engine)
            self._queued.append(update)

    def refuse_held(self, order_id: str, code: ReasonCode) -> None:
        """The venue refuses the held close ``order_id`` (its answer comes as an event)."""
        [order] = [o for o in self.held if o.client_order_id == order_id]
        self.held.remove(order)
        self._queued.append(
            OrderUpdate(order_id, OrderStatus.REJECTED, order.created_ts, "refused", code=code)
        )


class SpotSlow(SlowHeld):
    """``SlowHeld`` as a spot account: a close sells from the balance (``SpotCloses``)."""

    def closes_from_balance(self, symbol: str) -> bool:
        return True


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=130.0)


def _engine(
    tmp_path: Path, actions: dict[int, Action], venue: SlowHeld | None = None
) -> tuple[Engine, SlowHeld]:
    venue = SpotSlow() if venue is None else venue
    venue.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", 10_000.0))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, 10_000.0, equity_chunk=1)
    engine = Engine(config, Scripted(actions=actions), venue, journal, venue=venue)
    return engine, venue


def _children(engine: Engine, parent: str) -> list[str]:
    return sorted(o.client_order_id for o in engine.open_orders() if o.parent_id == parent)


def _closes(engine: Engine) -> list[tuple[str, float]]:
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT client_order_id, quantity FROM orders WHERE tag = ? ORDER BY rowid", FLATTEN
    )
    return [(str(cid), float(qty)) for cid, qty in rows]


def _rest_a_bracketed_buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(
        SYMBOL,
        1.0,
        order_type=OrderType.LIMIT,
        price=95.0,
        stop_loss=85.0,
        take_profit=105.0,
    )


def _long_with_a_resting_bracketed_buy(tmp_path: Path) -> tuple[Engine, SlowHeld, str, str]:
    """Long 1 guarded, and a limit buy of 1 at 95 with its own bracket resting:
    (engine, venue, the position's entry, the resting entry)."""
    engine, venue = _engine(tmp_path, {0: _buy, 1: _rest_a_bracketed_buy})
    assert isinstance(venue, SpotCloses)
    engine.run(BARS[:2])
    assert engine.position(SYMBOL).quantity == 1.0
    [first] = {o.parent_id for o in engine.open_orders() if o.parent_id is not None}
    assert first is not None
    [late] = [o.client_order_id for o in engine.open_orders() if not o.reduce_only]
    return engine, venue, first, late


# -- change 2: the close the wait sends is only what no close on its way covers ----------------


def test_a_wait_ended_with_the_closes_on_their_way_covering_all_owes_nothing_once_flat(
    tmp_path: Path,
) -> None:
    """Spot, long 1: the flatten's close C1 of it goes (held by the venue). The resting bracketed
    buy fills late; the close waits for its exits' cancels; its take-profit fills before its
    cancel lands (W21's path). When the wait ends C1 covers all that is held: that is said, so
    once C1 fills the journal owes nothing (the newest ``flattened`` event used to name the
    symbol as left for good)."""
    engine, venue, first, late = _long_with_a_resting_bracketed_buy(tmp_path)
    venue.hold = True
    engine.halt("alice", "incident", flatten=True)
    venue.answer(*_children(engine, first))  # the position's exits' cancels land
    engine.pump()
    [(close, quantity)] = _closes(engine)
    assert quantity == 1.0 and venue.held  # C1 on its way, unanswered
    engine.run([bar(2, 100.0, 101.0, 94.0, 96.0)])  # the limit buy fills at 95: late
    assert engine.position(SYMBOL).quantity == 2.0
    exits = _children(engine, late)
    assert len(exits) == 2 and _closes(engine) == [(close, 1.0)]  # waits for their cancels
    engine.run([bar(3, 100.0, 106.0, 99.0, 104.0)])  # its take-profit fills at 105 first
    assert engine.position(SYMBOL).quantity == 1.0
    venue.answer()  # every other cancel lands
    engine.pump()
    assert _closes(engine) == [(close, 1.0)]  # C1 covers what is held: nothing more sent
    venue.release()
    engine.run([bar(4, 100.0, 100.0, 100.0, 100.0)])  # C1 fills
    engine.pump()
    assert engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()
    newest = journaled_events(engine, "flattened")[-1][1]
    assert engine.journal.flatten_owed("bot") is None, (  # type: ignore[attr-defined]
        f"flat, nothing working, yet the flatten is owed: newest flattened {newest}"
    )


# -- change 3: a resume that forgets a spot wait says the position runs without its exits -------


def _rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)


def test_a_resume_after_the_exits_cancels_landed_still_says_they_are_gone(tmp_path: Path) -> None:
    """Spot, long 1 guarded, the strategy's limit sell of it resting (W21). The flatten cancels
    the stop-loss, the take-profit and the sell, and waits for all three. The venue confirms the
    exits' cancels first; the sell's is still on its way when a person resumes: the position
    runs without its exits, and the resume says so (it used to look only at the exits still in
    the book, and said nothing)."""
    engine, venue = _engine(tmp_path, {0: _buy, 1: _rest_a_sell})
    engine.run(BARS[:2])
    [entry] = {o.parent_id for o in engine.open_orders() if o.parent_id is not None}
    assert entry is not None
    exits = _children(engine, entry)
    [sell] = [o.client_order_id for o in engine.open_orders() if o.parent_id is None]
    engine.halt("alice", "incident", flatten=True)
    [(_, flattened)] = journaled_events(engine, "flattened")
    assert flattened["waiting"] == {SYMBOL: sorted([*exits, sell])}
    venue.answer(*exits)
    engine.pump()
    assert engine.protective_exits([SYMBOL]) == [] and _closes(engine) == []
    engine.resume("alice", "false alarm")
    venue.answer()  # the sell's cancel lands
    engine.pump()
    assert engine.position(SYMBOL).quantity == 1.0 and not engine.open_orders()
    said = journaled_events(engine, "stop_cancelled")
    assert said, "1 TEST held with no stop-loss after the resume, and nothing said"


# -- checks that hold (passing): the paths the brief named ------------------------------------


def _rest_a_plain_buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=95.0)


def test_off_spot_a_close_refused_after_the_rest_went_is_said_and_owed(
    tmp_path: Path,
) -> None:
    """Not spot (the guards are kept): long 1, the flatten's C1 held by the venue; a resting buy
    fills late and its close C2 goes at once. The venue refuses C1 for want of funds (the
    guards hold the coin): the guards are cancelled, and once confirmed the close sent is only
    what C2 does not cover (change 2: before 777336b, the whole 2). Then C2 is refused too:
    1 is left held, bare — not closed, but said (``flatten_failed``) and owed."""
    engine, venue = _engine(tmp_path, {0: _buy, 1: _rest_a_plain_buy}, SlowHeld())
    engine.run(BARS[:2])
    [entry] = {o.parent_id for o in engine.open_orders() if o.parent_id is not None}
    assert entry is not None
    venue.hold = True
    engine.halt("alice", "incident", flatten=True)
    engine.run([bar(2, 100.0, 101.0, 94.0, 96.0)])  # the buy fills late
    [(c1, _), (c2, _)] = _closes(engine)
    venue.refuse_held(c1, ReasonCode.INSUFFICIENT_FUNDS)
    engine.pump()
    venue.answer(*_children(engine, entry))
    engine.pump()
    [_, _, (_c3, quantity)] = _closes(engine)
    assert quantity == 1.0  # what C2 leaves
    venue.refuse_held(c2, ReasonCode.INSUFFICIENT_FUNDS)
    engine.pump()
    venue.release()
    engine.run([bar(3, 100.0, 100.0, 100.0, 100.0)])  # C3 fills
    engine.pump()
    assert engine.position(SYMBOL).quantity == 1.0 and not engine.open_orders()
    [(message, failed)] = journaled_events(engine, "flatten_failed")[-1:]
    assert failed["client_order_id"] == c2 and "no stop-loss protects it" in message
    assert engine.journal.flatten_owed("bot") == ("alice", "incident")  # type: ignore[attr-defined]


def _rest_a_bracketed_sell_of_two(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(
        SYMBOL,
        2.0,
        order_type=OrderType.LIMIT,
        price=105.0,
        stop_loss=115.0,
        take_profit=95.0,
    )


def test_a_late_bracketed_sell_that_flips_the_long_is_closed_once(
    tmp_path: Path,
) -> None:
    """Spot, long 1, the strategy's bracketed limit sell of 2 resting: the flatten waits for
    it (it would reduce the position) as for the exits. It fills first: short 1, its own exits
    (buys) placed. Once every cancel landed, one buy of 1 closes it, nothing else."""
    engine, venue = _engine(tmp_path, {0: _buy, 1: _rest_a_bracketed_sell_of_two})
    engine.run(BARS[:2])
    engine.halt("alice", "incident", flatten=True)
    engine.run([bar(2, 100.0, 106.0, 99.0, 104.0)])  # the sell fills at 105
    assert engine.position(SYMBOL).quantity == -1.0
    assert _closes(engine) == []
    venue.answer()
    engine.pump()
    venue.answer()  # the cancels asked meanwhile (the sell's exits)
    engine.pump()
    working = [(o.client_order_id, o.side.value, o.quantity) for o in engine.open_orders()]
    [(close, quantity)] = _closes(engine)
    assert quantity == 1.0 and working == [(close, "buy", 1.0)]


def _in_flight(engine: Engine) -> float:
    """What the flatten's closes still working sell."""
    return sum(o.quantity for o in engine.open_orders(SYMBOL) if o.tag == FLATTEN)


def test_a_late_entry_filled_in_two_parts_is_closed_once_in_all(
    tmp_path: Path,
) -> None:
    """Spot, long 1, C1 held by the venue. The resting bracketed buy fills 0.4 late: the close
    waits for its exits' cancels, then sends what C1 leaves (0.4). The rest of the buy, 0.6,
    fills before its own cancel lands: closed too, and all the closes together sell what is
    held, no more."""
    engine, venue, first, late = _long_with_a_resting_bracketed_buy(tmp_path)
    venue.hold = True
    engine.halt("alice", "incident", flatten=True)
    venue.answer(*_children(engine, first))
    engine.pump()
    ts = BARS[2].ts
    venue._queued.append(Fill(late, SYMBOL, Side.BUY, 0.4, 95.0, 0.0, ts, "part"))
    engine.pump()
    exits = _children(engine, late)
    assert len(exits) == 2 and _in_flight(engine) == 1.0
    venue.answer(*exits)
    engine.pump()
    assert abs(_in_flight(engine) - 1.4) < 1e-9
    venue._queued.append(Fill(late, SYMBOL, Side.BUY, 0.6, 95.0, 0.0, ts, "rest"))
    engine.pump()
    venue.answer()
    engine.pump()
    venue.answer()
    engine.pump()
    held = engine.position(SYMBOL).quantity
    working = [(o.client_order_id, o.tag, o.quantity) for o in engine.open_orders()]
    assert abs(held - 2.0) < 1e-9 and abs(_in_flight(engine) - held) < 1e-9, working


def _rest_two_bracketed_buys(ctx: StrategyContext, _bar: Bar) -> None:
    for price in (95.0, 94.0):
        ctx.buy(
            SYMBOL,
            1.0,
            order_type=OrderType.LIMIT,
            price=price,
            stop_loss=85.0,
            take_profit=105.0,
        )


def test_two_late_entries_on_one_symbol_are_closed_once(tmp_path: Path) -> None:
    """Spot, long 1, C1 held by the venue; two resting bracketed buys both fill late in one
    bar. The first's exits make the close wait; the second's fill joins that wait. Once every
    cancel landed, the closes on their way sell what is held, no more."""
    engine, venue = _engine(tmp_path, {0: _buy, 1: _rest_two_bracketed_buys})
    engine.run(BARS[:2])
    [first] = {o.parent_id for o in engine.open_orders() if o.parent_id is not None}
    assert first is not None
    venue.hold = True
    engine.halt("alice", "incident", flatten=True)
    venue.answer(*_children(engine, first))
    engine.pump()
    engine.run([bar(2, 100.0, 101.0, 93.0, 96.0)])  # both buys fill
    assert engine.position(SYMBOL).quantity == 3.0 and _in_flight(engine) == 1.0
    venue.answer()
    engine.pump()
    venue.answer()
    engine.pump()
    working = [(o.client_order_id, o.tag, o.quantity) for o in engine.open_orders()]
    assert _in_flight(engine) == 3.0 and len(working) == 2, working
