"""``RiskContext.closable``: what each open position still holds net of the exits working on its
closing side, as the engine's reduce-only marking counts it (``risk_snapshot.reducible``), in
the engine's snapshot and the vectorised backtest's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.order_book import OrderBook
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.engine.risk_driver import BLANK_CONTEXT
from tradefleet_runtime.engine.risk_snapshot import RiskSnapshots, reducible
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, Instrument, Order, OrderIntent, OrderType, Side
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.vector_backtest import columns_of, vector_backtest

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000


def _account() -> tuple[Portfolio, OrderBook, RiskSnapshots]:
    """Long 2 A, short 3 B."""
    portfolio = Portfolio(cash=10_000.0, leverage=5.0)
    book = OrderBook()
    portfolio.apply(Fill("o1", "A", Side.BUY, 2.0, 100.0, 0.0, T0, "f1"))
    portfolio.apply(Fill("o2", "B", Side.SELL, 3.0, 100.0, 0.0, T0, "f2"))
    portfolio.marks.update({"A": 100.0, "B": 100.0})
    return portfolio, book, RiskSnapshots(portfolio, book, Instrument, 10_000.0)


def _exit(order_id: str, symbol: str, side: Side, quantity: float, **kw: Any) -> Order:
    return Order(order_id, symbol, side, quantity, OrderType.MARKET, reduce_only=True, **kw)


def test_with_no_exit_working_the_whole_of_each_position_is_closable() -> None:
    _, _, snapshots = _account()
    assert snapshots.context("A", T0, 1.0, 1.0).closable == {"A": 2.0, "B": 3.0}


def test_a_working_exit_is_taken_off_and_the_copy_follows_the_book() -> None:
    portfolio, book, snapshots = _account()
    book.add(_exit("x1", "A", Side.SELL, 2.0))  # ctx.close("A")
    book.add(_exit("x2", "B", Side.BUY, 1.0))  # a third of the short
    ctx = snapshots.context("A", T0, 1.0, 1.0)
    assert ctx.closable == {"A": 0.0, "B": 2.0}
    assert ctx.closing(OrderIntent("A", Side.SELL, 3.0), 3.0) == 0.0
    assert ctx.closing(OrderIntent("B", Side.BUY, 5.0), 5.0) == 2.0
    # As the engine's reduce-only marking counts it, for every position.
    for symbol, side in (("A", Side.SELL), ("B", Side.BUY)):
        assert ctx.closable[symbol] == reducible(portfolio, book, symbol, side)
    book.remove("x2")  # cancelled: the copy is taken again
    assert snapshots.context("A", T0 + 1, 1.0, 1.0).closable == {"A": 0.0, "B": 3.0}


def test_a_brackets_children_and_orders_on_the_adding_side_close_nothing_here() -> None:
    _, book, snapshots = _account()
    # A bracket's stop guards the long; one of its pair at most fills: not an exit sent.
    book.add(
        Order("e1-sl", "A", Side.SELL, 2.0, OrderType.STOP, 95.0, reduce_only=True, parent_id="e1")
    )
    book.add(_exit("x1", "A", Side.BUY, 1.0))  # the long's own side: closes nothing of it
    assert snapshots.context("A", T0, 1.0, 1.0).closable == {"A": 2.0, "B": 3.0}


def test_the_blank_context_has_nothing_to_close() -> None:
    assert BLANK_CONTEXT.closable == {}
    assert BLANK_CONTEXT.closing(OrderIntent("A", Side.SELL, 1.0), 1.0) == 0.0


def test_the_vectorised_path_hands_a_sizer_every_field(tmp_path: Path) -> None:
    """``_decisions`` builds its context positionally: every field is there, ``entries``
    included, and ``closable`` holds the whole position (no exit works when it decides)."""
    manifest = ROOT / "examples" / "bots" / "eurusd-ema-cross.yaml"
    document = yaml.safe_load(manifest.read_text())
    bot = assemble(parse_manifest(document), PluginRegistry.discover(), manifest.parent)
    name, sizer = bot.risk[0]
    assert name == "fixed-fractional"
    seen: list[RiskContext] = []
    check = sizer.check

    def recording(intent: OrderIntent, ctx: RiskContext) -> Any:
        seen.append(ctx)
        return check(intent, ctx)

    sizer.check = recording  # type: ignore[method-assign]
    journal = Journal(tmp_path / "vector.sqlite", batched=True)
    assert bot.feed is not None
    bars = bot.feed.bars(BotSession(bot, journal).feed_request())
    columns = columns_of(bars, bot)
    assert columns is not None
    done = vector_backtest(bot, journal, columns)
    journal.close()
    assert not isinstance(done, str), done
    assert seen
    for ctx in seen:
        assert len(ctx) == len(RiskContext._fields)
        assert ctx.entries == ()
        [(symbol, position)] = ctx.positions.items()
        assert ctx.closable == {symbol: abs(position.quantity)}
    assert any(ctx.closable and next(iter(ctx.closable.values())) > 0 for ctx in seen)
