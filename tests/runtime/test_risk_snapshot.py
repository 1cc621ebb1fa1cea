"""The risk chain's account snapshot and the driver's order: built cheaply, never stale."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.engine.risk_driver import RiskDriver
from tradefleet_runtime.engine.risk_snapshot import RiskSnapshots, protective_stops
from tradefleet_runtime.engine.trading_state import TradingState
from tradefleet_runtime.model import (
    Fill,
    Instrument,
    Order,
    OrderIntent,
    OrderType,
    Position,
    RiskDecision,
    Side,
)

T0 = 1_700_000_000


def fill(n: int, symbol: str, side: Side, quantity: float, price: float = 100.0) -> Fill:
    return Fill(f"o{n}", symbol, side, quantity, price, 0.0, T0 + n, f"f{n}")


def stop(n: int, symbol: str, side: Side, quantity: float, price: float) -> Order:
    return Order(f"s{n}", symbol, side, quantity, OrderType.STOP, price, reduce_only=True)


def account() -> tuple[Portfolio, OrderBook, RiskSnapshots]:
    portfolio = Portfolio(cash=10_000.0, leverage=5.0)
    book = OrderBook()
    portfolio.apply(fill(1, "A", Side.BUY, 2.0))
    portfolio.apply(fill(2, "B", Side.SELL, 3.0))
    portfolio.marks.update({"A": 101.0, "B": 99.0})
    book.add(stop(1, "A", Side.SELL, 2.0, 95.0))
    book.add(stop(2, "B", Side.BUY, 3.0, 105.0))
    book.add(stop(3, "A", Side.BUY, 1.0, 90.0))  # the wrong side: protects nothing
    snapshots = RiskSnapshots(portfolio, book, lambda s: Instrument(s, lot_step=0.1), 10_000.0)
    return portfolio, book, snapshots


def test_the_snapshot_is_the_account_in_copies() -> None:
    portfolio, _, snapshots = account()
    ctx = snapshots.context("A", T0 + 10, 9_900.0, 10_100.0)
    assert (ctx.ts, ctx.equity, ctx.cash) == (T0 + 10, portfolio.equity(), portfolio.cash)
    assert (ctx.start_of_day_equity, ctx.peak_equity, ctx.initial_equity) == (
        9_900.0, 10_100.0, 10_000.0,
    )  # fmt: skip
    assert ctx.positions == portfolio.open_positions
    assert all(ctx.positions[s] is not p for s, p in portfolio.open_positions.items())
    assert ctx.marks == portfolio.marks and ctx.marks is not portfolio.marks
    assert ctx.stops == {"A": ((2.0, 95.0),), "B": ((3.0, 105.0),)}
    assert ctx.instrument == Instrument("A", lot_step=0.1) and ctx.leverage == 5.0


def test_copies_are_shared_until_a_fill_or_an_order_changes_the_account() -> None:
    portfolio, book, snapshots = account()
    first = snapshots.context("A", T0, 1.0, 1.0)
    portfolio.marks["A"] = 120.0  # a new bar: marks and equity move, positions do not
    second = snapshots.context("B", T0 + 1, 1.0, 1.0)
    assert second.positions is first.positions and second.stops is first.stops
    assert second.marks["A"] == 120.0 and first.marks["A"] == 101.0
    assert second.equity == portfolio.equity() != first.equity
    portfolio.apply(fill(3, "A", Side.BUY, 1.0, 120.0))  # in place, in the portfolio
    third = snapshots.context("A", T0 + 2, 1.0, 1.0)
    assert first.positions["A"].quantity == 2.0  # the earlier snapshot never changes
    assert third.positions["A"].quantity == 3.0
    assert third.stops == first.stops  # a fill that touches no stop leaves them as they were
    book.on_fill(Fill("s1", "A", Side.SELL, 0.5, 95.0, 0.0, T0 + 3, "x"))  # the stop, in part
    assert snapshots.context("A", T0 + 3, 1.0, 1.0).stops["A"] == ((1.5, 95.0),)
    book.remove("s2")
    assert "B" not in snapshots.context("A", T0 + 4, 1.0, 1.0).stops


@given(
    st.lists(
        st.tuples(st.sampled_from("AB"), st.sampled_from(list(Side)), st.floats(0.1, 5.0)),
        max_size=12,
    )
)
def test_after_any_fills_the_snapshot_matches_a_fresh_copy(
    fills: list[tuple[str, Side, float]],
) -> None:
    portfolio, book, snapshots = account()
    snapshots.context("A", T0, 1.0, 1.0)
    for n, (symbol, side, quantity) in enumerate(fills, start=10):
        portfolio.apply(fill(n, symbol, side, quantity))
        ctx = snapshots.context(symbol, T0 + n, 1.0, 1.0)
        fresh = {
            s: Position(s, p.quantity, p.average_price, p.realized_pnl, p.opened_ts)
            for s, p in portfolio.open_positions.items()
        }
        assert ctx.positions == fresh
        assert ctx.stops == protective_stops(portfolio, book)


# -- the driver ---------------------------------------------------------------------------


class Recorder:
    def __init__(self, answer: RiskDecision | None = None, fail: bool = False) -> None:
        self.answer = answer if answer is not None else RiskDecision.approve()
        self.fail = fail
        self.seen: list[tuple[Order, float]] = []

    def check(self, intent: OrderIntent, ctx: Any) -> RiskDecision:
        return self.answer

    def on_order(self, order: Order, reference: float) -> None:
        if self.fail:
            raise RuntimeError("observer broke")
        self.seen.append((order, reference))


def driver(*chain: tuple[str, Any], observers: tuple[tuple[str, Any], ...] = ()) -> RiskDriver:
    _, _, snapshots = account()
    return RiskDriver(
        list(chain),
        TradingState(),
        lambda s: Instrument(s, lot_step=0.1),
        lambda s: snapshots.context(s, T0, 1.0, 1.0),
        lambda *a: None,
        order_observers=observers,
    )


def test_the_order_carries_every_field_of_the_intent() -> None:
    intent = OrderIntent(
        "A", Side.SELL, 1.27, OrderType.LIMIT, 102.0, 110.0, 90.0, True, "tagged", 0.5
    )
    order = driver(("r", Recorder(RiskDecision.shrink(1.25, "x")))).order_for(intent, "id", T0)
    assert order == Order(
        client_order_id="id", symbol="A", side=Side.SELL, quantity=1.2,
        order_type=OrderType.LIMIT, price=102.0, stop_loss=110.0, take_profit=90.0,
        reduce_only=True, parent_id=None, oco_group=None, created_ts=T0, tag="tagged",
    )  # fmt: skip
    assert type(order) is Order


@pytest.mark.parametrize(
    ("intent", "reference"),
    [
        (OrderIntent("A", Side.BUY, 1.0), 101.0),  # market: the mark it was decided at
        (OrderIntent("A", Side.BUY, 1.0, OrderType.LIMIT, 99.5), 99.5),  # its own price
        (OrderIntent("C", Side.BUY, 1.0), None),  # no mark: nothing to measure against
    ],
)
def test_order_observers_get_each_order_with_its_decision_price(
    intent: OrderIntent, reference: float | None
) -> None:
    watcher, broken = Recorder(), Recorder(fail=True)
    chosen = driver(("w", watcher), observers=(("broken", broken), ("w", watcher)))
    order = chosen.order_for(intent, "id", T0)
    assert order is not None  # an observer's fault never stops an order
    assert watcher.seen == ([] if reference is None else [(order, reference)])


def test_a_vetoed_intent_is_never_observed() -> None:
    watcher = Recorder(RiskDecision.veto("no"))
    assert (
        driver(("w", watcher), observers=(("w", watcher),)).order_for(
            OrderIntent("A", Side.BUY, 1.0), "id", T0
        )
        is None
    )
    assert watcher.seen == []


class ContextReader:
    """A plugin that sizes by the equity it is shown, and remembers each context."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def check(self, intent: OrderIntent, ctx: Any) -> RiskDecision:
        self.seen.append(ctx)
        return (
            RiskDecision.approve(ctx.equity / 10_000.0)
            if intent.quantity is None
            else (RiskDecision.approve())
        )


def test_intent_only_plugins_cost_no_snapshot_and_the_others_share_one() -> None:
    from tradefleet_runtime.engine.risk_driver import BLANK_CONTEXT

    _, _, snapshots = account()
    built: list[str] = []

    def context(symbol: str) -> Any:
        built.append(symbol)
        return snapshots.context(symbol, T0, 1.0, 1.0)

    def chain(*links: tuple[str, Any], intent_only: frozenset[str]) -> RiskDriver:
        return RiskDriver(
            list(links),
            TradingState(),
            lambda s: Instrument(s),
            context,
            lambda *a: None,
            intent_only=intent_only,
        )

    sizer, reader, later = ContextReader(), ContextReader(), ContextReader()
    sized = chain(("size", sizer), intent_only=frozenset({"size"}))
    # Declared intent-only and reading the equity anyway: NaN sizes nothing (a plugin fault).
    assert sized.order_for(OrderIntent("A", Side.BUY, None), "id", T0) is None
    assert sizer.seen == [BLANK_CONTEXT] and built == []
    both = chain(
        ("size", sizer), ("read", reader), ("later", later), intent_only=frozenset({"size"})
    )
    assert both.order_for(OrderIntent("A", Side.BUY, 1.0), "id2", T0) is not None
    assert sizer.seen[-1] is BLANK_CONTEXT
    assert built == ["A"]  # one snapshot for the intent, built when the first reader came
    assert reader.seen[-1] is later.seen[-1] and reader.seen[-1].equity == 10_005.0


def test_the_blank_context_cannot_be_written_into() -> None:
    from tradefleet_runtime.engine.risk_driver import BLANK_CONTEXT

    with pytest.raises(TypeError):
        BLANK_CONTEXT.positions["A"] = Position("A", 1.0)  # type: ignore[index]
    assert BLANK_CONTEXT.mark("A") == 0.0 and BLANK_CONTEXT.equity != BLANK_CONTEXT.equity
