"""A strategy's close that waits for the venue's cancels: its end, the orders held behind it,
and the signals they came from (review R40).

- A waited order that ends by its fill (no final status follows one on this venue, nor on MT5)
  ends the wait: the close and the orders held behind it go (the wait never ended, and every
  later order of the symbol was held for ever).
- A second signal while the first one's order is held is refused, naming why (it was accepted
  and its ``close`` dropped the first one's order, which had been answered accepted).
- A wait taken up again asks the cancel of an order whose cancel the close asked once.
- Held: a pause between hold and send refuses the held entry and still closes; a wait on one
  symbol never holds the other's orders; a held order sent by an in-bar end of the wait fills
  at a later bar's open, never at the bar it was decided in; held orders take ids no earlier
  run knows; the strategy closing again from ``on_order_update`` on the waited order's cancel
  is still one close.

The venue is the paper broker whose cancels take effect when the test answers them
(``SlowCancels``); a subclass whose ``closes_from_balance`` is True acts as spot.
"""

from __future__ import annotations

from pathlib import Path

from tests.runtime.held_closes import SlowCancels, SpotSlowCancels, journaled_events
from tests.runtime.helpers import HOUR, Action, Scripted, bar, flat_bars, start_test_run
from tests.runtime.test_flatten_waits_for_reducing_orders import BARS, SYMBOL, _slow_engine
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.contracts import BrokerContext, StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus, OrderType, OrderUpdate, Side
from tradefleet_runtime.order_ids import client_order_id
from tradefleet_runtime.service.api import Direction, Signal
from tradefleet_runtime.spec.model import Mode

OTHER = "OTHER"


def _buy(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.buy(SYMBOL, 1.0)


def _rest_a_sell(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)


def _close(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)


def _close_and_sell_three(ctx: StrategyContext, _bar: Bar) -> None:
    ctx.close(SYMBOL)
    ctx.sell(SYMBOL, 3.0)


def _orders(engine: Engine, symbol: str = SYMBOL) -> list[tuple[str, str, float, str]]:
    """(id, side, quantity, tag) of the entry orders journaled for ``symbol``, oldest first."""
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT client_order_id, side, quantity, tag FROM orders "
        "WHERE parent_id IS NULL AND symbol = ? ORDER BY rowid",
        symbol,
    )
    return [(str(i), str(s), float(q), str(t)) for i, s, q, t in rows]


class _CountedCancels(SlowCancels):
    """``SlowCancels`` that remembers every cancel ever asked."""

    def __init__(self) -> None:
        super().__init__()
        self.every: list[str] = []

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        self.every.append(client_order_id)
        return super().cancel(client_order_id)


def _engine(
    tmp_path: Path,
    venue: SlowCancels,
    strategy: Scripted | ExternalSignal,
    symbols: tuple[str, ...] = (SYMBOL,),
    capital: float = 10_000.0,
) -> Engine:
    venue.connect(BrokerContext("bot", Mode.PAPER, symbols, "USD", capital))
    journal = Journal(tmp_path / "journal.sqlite")
    start_test_run(journal, "run-1")
    config = EngineConfig("bot", "paper", symbols, HOUR, capital, equity_chunk=1)
    return Engine(config, strategy, venue, journal, venue=venue)


# -- findings ----------------------------------------------------------------------------------


def test_a_waited_sell_that_fills_ends_the_wait(tmp_path: Path) -> None:
    """Long 1 (no bracket) and the strategy's own exit, a limit sell of 1 at 120. The strategy
    closes: the close waits for the sell's cancel. The market trades through 120 and the sell
    fills before the cancel lands: flat, nothing left to close. The venue has nothing to
    cancel any more and says nothing more (the paper venue's fills come with no final status,
    as on some live venues). The strategy buys again two bars later: that order must go."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell, 2: _close, 5: _buy})
    engine.run(BARS[:3])
    assert journaled_events(engine, "close_waits")  # waits for the sell
    engine.run([bar(3, 100.0, 125.0, 99.0, 121.0)])  # the sell fills at 120
    assert engine.position(SYMBOL).quantity == 0.0 and not engine.open_orders()
    venue.answer_cancels()  # the venue: nothing to cancel, no answer
    engine.pump()
    engine.run([bar(i, 121.0, 121.0, 121.0, 121.0) for i in (4, 5, 6, 7)])
    message, _data = journaled_events(engine, "close_waits")[-1]
    buys = [o for o in _orders(engine) if o[1] == "buy"]
    assert len(buys) == 2, (
        f"the strategy's buy of bar 5 was never sent (held behind a close that waits for an "
        f"order that filled; last close_waits: {message!r}; still waiting: "
        f"{sorted(engine._strategy_closes)})"
    )
    assert engine.position(SYMBOL).quantity == 1.0


def test_a_second_signal_while_the_first_is_held_is_refused_as_before(tmp_path: Path) -> None:
    """``external-signal`` (reverse on opposite, no pyramiding), long 1 with its bracket, on
    spot: a SELL reverses (close + sell), the close waits for the bracket's cancels and the
    sell entry is held; answered accepted, "sent once it has". A second SELL (another alert,
    volume 2) comes before the venue answers. With the entry working (sent at once, as before
    closes waited), it was refused: "a sell entry is already working". Held, it is in no book:
    the second was accepted, its close dropped the first signal's entry, and the first
    signal's journaled answer still said its order would be sent. Now it is refused."""
    strategy = ExternalSignal(ExternalSignalParams.model_validate({"reverse_on_opposite": True}))
    venue = SpotSlowCancels()
    engine = _engine(tmp_path, venue, strategy, capital=100_000.0)
    engine.signals = strategy
    engine.run(BARS[:1])
    buy = Signal(SYMBOL, Direction.BUY, 100.0, stop_loss=90.0, take_profit=110.0, volume=1.0)
    assert engine.handle_signal(buy)[0]
    engine.run(BARS[1:3])
    assert engine.position(SYMBOL).quantity == 1.0
    first = Signal(SYMBOL, Direction.SELL, 100.0, stop_loss=110.0, take_profit=90.0, volume=1.0)
    accepted, reason, _order = engine.handle_signal(first)
    assert accepted, reason
    second = Signal(SYMBOL, Direction.SELL, 100.0, stop_loss=110.0, take_profit=90.0, volume=2.0)
    accepted, reason, order_id = engine.handle_signal(second)
    dropped = [d for _m, d in journaled_events(engine, "close_waits") if "dropped" in d]
    assert not accepted, (
        f"a second SELL while the first's entry is held was accepted ({reason!r}, "
        f"{order_id!r}); dropped: {dropped}"
    )


def test_a_rewait_on_an_order_there_before_asks_its_cancel_once(tmp_path: Path) -> None:
    """Long 1 (bracketed), a resting sell of 2 at 120 and a resting buy of 1 at 80. The close
    cancels all three and waits for the sell only (the buy adds to a long). The sell fills
    first: short 1, which the buy now reduces. The wait taken up again waits for the buy, and
    asks the venue to cancel it once only (it asked twice, and said the buy was "placed since"
    the close)."""

    def bracketed(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=130.0)

    def rest_both(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.sell(SYMBOL, 2.0, order_type=OrderType.LIMIT, price=120.0)
        ctx.buy(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=80.0)

    venue = _CountedCancels()
    engine = _engine(tmp_path, venue, Scripted(actions={0: bracketed, 1: rest_both, 2: _close}))
    engine.run(BARS[:3])
    [limit_buy] = [o.client_order_id for o in engine.open_orders() if o.price == 80.0]
    engine.run([bar(3, 100.0, 125.0, 99.0, 121.0)])  # the sell of 2 fills: short 1
    assert engine.position(SYMBOL).quantity == -1.0
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(i, 121.0, 121.0, 121.0, 121.0) for i in (4, 5)])
    assert engine.position(SYMBOL).quantity == 0.0  # the close bought the short back: right
    rewait = [m for m, d in journaled_events(engine, "close_waits") if limit_buy in m]
    assert venue.every.count(limit_buy) == 1, f"cancel of {limit_buy} asked twice: {rewait}"
    assert not any("placed since" in m for m in rewait), rewait


# -- checks that held ---------------------------------------------------------------------------


def test_a_pause_between_hold_and_send_refuses_the_held_entry_and_closes(tmp_path: Path) -> None:
    """Fails if the sell of 3 were decided when asked, before the pause (as with no wait:
    ``behind = set()`` in ``_strategy_close`` makes it fail), or the close were held back."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell, 2: _close_and_sell_three})
    engine.run(BARS[:3])
    engine.pause("alice", "news")
    venue.answer_cancels()
    engine.pump()
    sells = [(side, qty, tag) for _i, side, qty, tag in _orders(engine)[2:]]
    assert sells == [("sell", 1.0, "close")]
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT plugin, action FROM risk_decisions WHERE quantity_in = 3.0"
    )
    assert [tuple(r) for r in rows] == [("engine.paused", "veto")]
    engine.run([bar(i, 100.0, 100.0, 100.0, 100.0) for i in (3, 4)])
    assert engine.position(SYMBOL).quantity == 0.0


def _two_symbol_bars(i: int) -> list[Bar]:
    return [bar(i, 100.0, 100.0, 100.0, 100.0), bar(i, 50.0, 50.0, 50.0, 50.0, OTHER)]


def test_a_wait_on_one_symbol_never_holds_the_others_orders(tmp_path: Path) -> None:
    """Fails if ``_process_intents`` held by anything but the intent's own symbol, or if the
    wait's end sent the other symbol's orders again."""

    def buy_test(ctx: StrategyContext, b: Bar) -> None:
        if b[0] == SYMBOL:
            ctx.buy(SYMBOL, 1.0)

    def rest(ctx: StrategyContext, b: Bar) -> None:
        if b[0] == SYMBOL:
            ctx.sell(SYMBOL, 1.0, order_type=OrderType.LIMIT, price=120.0)

    def close_and_buy_other(ctx: StrategyContext, b: Bar) -> None:
        if b[0] == SYMBOL:
            ctx.close(SYMBOL)
            ctx.buy(SYMBOL, 1.0)
            ctx.buy(OTHER, 1.0)

    # The counter is per bar seen: two bars a timestamp, TEST first.
    actions: dict[int, Action] = {0: buy_test, 2: rest, 4: close_and_buy_other}
    venue = SlowCancels()
    engine = _engine(tmp_path, venue, Scripted(actions=actions), (SYMBOL, OTHER))
    for i in range(3):
        engine.run(_two_symbol_bars(i))
    assert engine.position(SYMBOL).quantity == 1.0
    assert journaled_events(engine, "close_waits")
    assert [o[1:] for o in _orders(engine, OTHER)] == [("buy", 1.0, "")]  # sent in the bar
    assert [o[1] for o in _orders(engine)] == ["buy", "sell"]  # TEST's held
    engine.run(_two_symbol_bars(3))
    assert engine.position(OTHER).quantity == 1.0
    venue.answer_cancels()
    engine.pump()
    assert len(_orders(engine, OTHER)) == 1
    assert [o[1:] for o in _orders(engine)][2:] == [("sell", 1.0, "close"), ("buy", 1.0, "")]


def test_a_held_order_sent_inside_a_bar_fills_at_a_later_bar(tmp_path: Path) -> None:
    """Spot: long 1 with its stop-loss (90) and take-profit (110); the close waits for both
    and a re-entry (market buy) is held. The next bar reaches 110: the take-profit fills and
    the venue cancels its stop-loss sibling in that bar's events, which ends the wait inside
    the bar, before the engine's clock moves: the held buy is decided then. It must fill at
    the following bar's open (105), not at this bar's. Fails if the held buy were filled in
    bar 3 (at 110 or 101: a price from before it was decided). Note: dropping
    ``between_bars`` from ``_strategy_close_ended`` does not make it fail (the venue matched
    bar 3 before its events ended the wait); the safety rests on that order."""

    def bracketed(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.buy(SYMBOL, 1.0, stop_loss=90.0, take_profit=110.0)

    def close_and_buy(ctx: StrategyContext, _bar: Bar) -> None:
        ctx.close(SYMBOL)
        ctx.buy(SYMBOL, 1.0)

    venue = SpotSlowCancels()
    engine = _engine(tmp_path, venue, Scripted(actions={0: bracketed, 2: close_and_buy}))
    engine.run(BARS[:3])
    assert len(journaled_events(engine, "close_waits")[-1][1]["waiting_for"]) == 2  # type: ignore[arg-type]
    engine.run([bar(3, 100.0, 115.0, 99.0, 101.0)])  # the take-profit fills at 110
    venue.answer_cancels()
    engine.pump()
    engine.run([bar(4, 105.0, 105.0, 105.0, 105.0), bar(5, 106.0, 106.0, 106.0, 106.0)])
    ids = [o[0] for o in _orders(engine) if o[1] == "buy"]
    assert len(ids) == 2, _orders(engine)
    rows = engine.journal.query(  # type: ignore[attr-defined]
        "SELECT price, ts FROM fills WHERE client_order_id = ?", ids[1]
    )
    assert [tuple(r) for r in rows] == [(105.0, BARS[0].ts + 4 * HOUR)]
    assert engine.position(SYMBOL).quantity == 1.0


def test_held_orders_take_ids_no_earlier_run_knows(tmp_path: Path) -> None:
    """The close and the held sell go between bars, under the next free ids: the two an
    earlier run journaled at the same time are skipped, not taken for "already sent". Fails
    if ``_strategy_close_ended`` sent them with ``replay=True``."""
    engine, venue = _slow_engine(tmp_path, {0: _buy, 1: _rest_a_sell, 2: _close_and_sell_three})
    engine.run(BARS[:3])
    now = engine.now
    taken = {client_order_id(engine._prefix, now, SYMBOL, seq) for seq in (0, 1)}
    engine.known_ids = frozenset(taken)
    venue.answer_cancels()
    engine.pump()
    sent = _orders(engine)[2:]
    assert [(side, qty, tag) for _i, side, qty, tag in sent] == [
        ("sell", 1.0, "close"),
        ("sell", 3.0, ""),
    ]
    assert not taken & {i for i, *_ in sent}
    assert engine.stats.known_ids_skipped == 0


class _ClosesOnCancel(Scripted):
    """Closes again when the order the close waits for is cancelled (from its hook)."""

    waited: str = ""

    def on_order_update(self, update: OrderUpdate) -> None:
        super().on_order_update(update)
        if update.client_order_id == self.waited and update.status is OrderStatus.CANCELLED:
            self.ctx.close(SYMBOL)


def test_closing_again_from_the_hook_on_the_waited_cancel_is_one_close(tmp_path: Path) -> None:
    """The cancel's answer ends the wait (the close and the held sell of 3 go) and then the
    hook closes again: that close cancels both just sent and waits for them; their cancels
    land, it closes the 1 held. Never two closes filled. Fails if the hook's close went beside
    the first (sold 2 of the 1 held) or the held sell survived the newer close."""
    strategy = _ClosesOnCancel(actions={0: _buy, 1: _rest_a_sell, 2: _close_and_sell_three})
    venue = SlowCancels()
    engine = _engine(tmp_path, venue, strategy)
    engine.run(BARS[:2])
    [strategy.waited] = [o.client_order_id for o in engine.open_orders() if o.price == 120.0]
    engine.run(BARS[2:3])
    venue.answer_cancels()
    engine.pump()
    assert {o.side for o in engine.open_orders()} == {Side.SELL}
    venue.answer_cancels()
    engine.pump()
    engine.run(flat_bars([100.0] * 6)[3:6])
    assert engine.position(SYMBOL).quantity == 0.0
    closes = [o for o in _orders(engine) if o[3] == "close"]
    assert len(closes) == 2 and len(engine.portfolio.trades) == 1
