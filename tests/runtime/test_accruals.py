"""A payment a venue accrues on an open position and books only at its close (an MT5 swap) is in
the bot's equity while the position is held, as it is in the venue's (``Accrual``).

The venue's equity counts a position's running swap; a bot that counts it only once the closing
deal books it has an equity, and daily-loss and drawdown limits measured on it, more lenient
than the account's. An ``Accrual`` is a mark: the newest replaces the previous, cash is not
touched, and the payment, once booked as a ``CashFlow``, leaves the accrual so equity never
counts it twice. The MT5 broker's side is ``tests/brokers/mt5/test_mt5_swap_accrual.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, flat_bars, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.cash_flows import accrual_problem
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.portfolio import (
    Portfolio,
    accrual_after_payment,
    accruals_total,
)
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Accrual, Bar, CashFlow, Fill, OrderUpdate, Side
from tradefleet_runtime.spec.model import Mode

SYMBOL = "TEST"
CAPITAL = 10_000.0


def _fill(side: Side, quantity: float, price: float, fee: float = 0.0, n: int = 0) -> Fill:
    return Fill(f"o{n}", SYMBOL, side, quantity, price, fee, T0 + n, f"f{n}")


def _held(quantity: float = 100.0, price: float = 10.0, mark: float = 11.0) -> Portfolio:
    """A portfolio holding ``quantity`` TEST bought at ``price``, marked at ``mark``."""
    portfolio = Portfolio(cash=CAPITAL)
    portfolio.apply(_fill(Side.BUY, quantity, price))
    portfolio.marks[SYMBOL] = mark
    return portfolio


# -- the pure rules ------------------------------------------------------------------------------


def test_a_booked_payment_leaves_the_accrual_never_past_zero() -> None:
    # a partial close's share of the swap: the rest stays accrued
    assert accrual_after_payment(-2.1, -0.84) == pytest.approx(-1.26)
    assert accrual_after_payment(-2.1, -2.1) == 0.0  # the whole swap booked
    assert accrual_after_payment(5.0, 2.0) == pytest.approx(3.0)  # a credit
    # a payment beyond the accrual the bot knew (an older mark): nothing left, not +0.7
    assert accrual_after_payment(-1.4, -2.1) == 0.0
    assert accrual_after_payment(0.0, -2.1) == 0.0
    assert accruals_total({"A": -2.1, "B": 0.7}) == pytest.approx(-1.4)
    assert accruals_total({}) == 0.0


def _accrual(**changes: Any) -> Accrual:
    return Accrual(SYMBOL, -2.1, "USD", T0)._replace(**changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": math.nan}, "amount nan is not a finite number"),
        ({"amount": math.inf}, "amount inf is not a finite number"),
        ({"amount": "-2.1"}, "amount '-2.1' is not a number"),
        ({"amount": True}, "amount True is not a number"),
        ({"symbol": "OTHER"}, "symbol 'OTHER' is not one of the bot's (TEST)"),
        ({"currency": "EUR"}, "currency 'EUR' is not the account's (USD)"),
        ({"currency": ""}, "currency '': missing"),
    ],
)
def test_an_accrual_the_bot_cannot_count_is_named_by_its_field(
    changes: dict[str, Any], field: str
) -> None:
    assert field in accrual_problem(_accrual(**changes), (SYMBOL,), "USD")


def test_a_readable_accrual_has_no_problem() -> None:
    assert accrual_problem(_accrual(), (SYMBOL,), "usd") == ""
    assert accrual_problem(_accrual(amount=0), (SYMBOL,), "USD") == ""


# -- the portfolio -------------------------------------------------------------------------------


def test_equity_counts_the_accrual_and_cash_does_not() -> None:
    portfolio = _held()
    before = portfolio.equity(), portfolio.cash
    assert before == (CAPITAL + 100.0, CAPITAL - 1000.0)
    portfolio.set_accrual(SYMBOL, -2.1)
    assert portfolio.equity() == pytest.approx(before[0] - 2.1)
    assert portfolio.equity_and_exposure() == (pytest.approx(before[0] - 2.1), 1100.0)
    assert portfolio.cash == before[1]
    portfolio.set_accrual(SYMBOL, -1.4)  # a mark: the newest replaces, never adds
    assert portfolio.equity() == pytest.approx(before[0] - 1.4)
    portfolio.set_accrual(SYMBOL, 0.0)
    assert portfolio.equity() == before[0] and portfolio.accrued == {}


def test_a_close_keeps_equity_continuous_with_its_swap() -> None:
    """The closing deal's swap is booked (cash) just before its fill: the accrual that counted
    it goes, so equity just after the close is equity just before it, at the same mark."""
    portfolio = _held()
    portfolio.set_accrual(SYMBOL, -2.1)
    before = portfolio.equity()
    portfolio.book_cash_flow(-2.1, SYMBOL)
    assert portfolio.equity() == pytest.approx(before)
    portfolio.apply(_fill(Side.SELL, 100.0, 11.0, n=1))
    assert portfolio.equity() == pytest.approx(before)
    assert portfolio.accrued == {} and portfolio.accrued_total == 0.0
    assert portfolio.cash == pytest.approx(CAPITAL + 100.0 - 2.1)
    (trade,) = portfolio.trades
    assert trade.funding == pytest.approx(-2.1)


def test_a_position_that_ends_drops_an_accrual_its_payment_did_not_cover() -> None:
    # The venue's mark was older than the payment (a rollover in between): the close books
    # -2.1 while -1.4 was known; nothing of it may stay in equity once the position is gone.
    portfolio = _held()
    portfolio.set_accrual(SYMBOL, -1.4)
    portfolio.book_cash_flow(-2.1, SYMBOL)
    assert portfolio.accrued == {}
    portfolio.set_accrual(SYMBOL, -0.7)  # a stale report before the fill
    portfolio.apply(_fill(Side.SELL, 100.0, 11.0, n=1))
    assert portfolio.accrued == {} and portfolio.equity() == portfolio.cash


def test_a_partial_close_books_its_share_and_keeps_the_rest_accrued() -> None:
    """Hedging: a partial close books its share of the swap while the position stays open;
    until the venue reports the rest, the accrual holds the rest, not the whole (counted twice
    with the share in cash)."""
    portfolio = _held()
    portfolio.set_accrual(SYMBOL, -1.4)
    before = portfolio.equity()
    portfolio.book_cash_flow(-0.56, SYMBOL)
    portfolio.apply(_fill(Side.SELL, 40.0, 11.0, n=1))
    assert portfolio.accrued == {SYMBOL: pytest.approx(-0.84)}
    assert portfolio.equity() == pytest.approx(before)
    portfolio.set_accrual(SYMBOL, -0.84)  # the venue's refresh: the same
    assert portfolio.equity() == pytest.approx(before)


def test_a_reversal_ends_the_position_and_its_accrual() -> None:
    portfolio = _held()
    portfolio.set_accrual(SYMBOL, -0.7)
    portfolio.apply(_fill(Side.SELL, 150.0, 11.0, n=1))  # long 100 -> short 50
    assert portfolio.positions[SYMBOL].quantity == -50.0
    assert portfolio.accrued == {}


def test_an_open_trade_ended_at_the_end_of_data_carries_its_accrual() -> None:
    portfolio = _held()
    portfolio.set_accrual(SYMBOL, -2.1)
    (trade,) = portfolio.end_of_data_trades(T0 + HOUR)
    assert trade.funding == pytest.approx(-2.1)
    assert trade.net_pnl == pytest.approx(portfolio.equity() - CAPITAL)


# -- the engine ----------------------------------------------------------------------------------


class AccruingPaper(PaperBroker):
    """The paper broker, reporting the accruals (and payments) ``due`` at a bar's time before
    that bar's own events, as a venue broker's drain would (MT5: a deal's swap before its
    fill)."""

    def __init__(self) -> None:
        super().__init__(PaperBrokerParams())
        self.due: dict[int, list[Accrual | CashFlow]] = {}

    # Wider than the paper broker's own: it reports accruals, which the paper broker does not.
    def on_bar(self, bar: Bar) -> Sequence[Fill | OrderUpdate | CashFlow | Accrual]:  # type: ignore[override]
        return [*self.due.pop(bar.ts, []), *super().on_bar(bar)]


def _engine(strategy: Scripted) -> tuple[Engine, AccruingPaper, Journal]:
    broker = AccruingPaper()
    broker.connect(BrokerContext("bot", Mode.PAPER, (SYMBOL,), "USD", CAPITAL))
    journal = Journal(":memory:")
    start_test_run(journal, "paper")
    config = EngineConfig("bot", "paper", (SYMBOL,), HOUR, CAPITAL, equity_chunk=1)
    return Engine(config, strategy, broker, journal), broker, journal


def _refused(journal: Journal) -> list[str]:
    rows = journal.query("SELECT message FROM events WHERE kind = 'accrual_refused' ORDER BY rowid")
    return [row[0] for row in rows]


def _at(i: int) -> int:
    return T0 + i * HOUR


def test_the_engine_counts_an_accrual_in_equity_and_its_snapshots() -> None:
    """Bought 10 at bar 0 (filled at bar 1's open, 100); the venue reports -2.1 accrued at bar
    2, then -2.8 at bar 3: each bar's equity snapshot (what a day's start and the peak are
    taken from, in the bar loop and at its end) and what the strategy reads count it; cash
    does not."""
    seen: list[tuple[float, float]] = []

    def look(ctx: Any, bar: Bar) -> None:
        seen.append((ctx.equity, ctx.cash))

    strategy = Scripted({0: lambda ctx, bar: ctx.buy(SYMBOL, 10), 2: look, 3: look})
    engine, broker, _ = _engine(strategy)
    broker.due[_at(2)] = [Accrual(SYMBOL, -2.1, "USD", _at(2))]
    broker.due[_at(3)] = [Accrual(SYMBOL, -2.8, "USD", _at(3))]
    engine.run(flat_bars([100.0] * 4, SYMBOL))
    result = engine.finish()
    assert list(result.equity) == pytest.approx([CAPITAL, CAPITAL, CAPITAL - 2.1, CAPITAL - 2.8])
    assert seen == [(pytest.approx(CAPITAL - 2.1), 9000.0), (pytest.approx(CAPITAL - 2.8), 9000.0)]
    assert engine.equity == pytest.approx(CAPITAL - 2.8)
    assert engine.portfolio.cash == 9000.0


def test_bad_accruals_are_said_once_per_symbol_and_left_out() -> None:
    strategy = Scripted({0: lambda ctx, bar: ctx.buy(SYMBOL, 10)})
    engine, broker, journal = _engine(strategy)
    broker.due[_at(2)] = [Accrual(SYMBOL, -2.1, "USD", T0)]
    broker.due[_at(3)] = [
        Accrual(SYMBOL, math.nan, "USD", T0),
        Accrual(SYMBOL, -9.0, "EUR", T0),  # the same symbol: said once already
        Accrual("OTHER", -1.0, "USD", T0),
    ]
    broker.due[_at(4)] = [Accrual(SYMBOL, math.inf, "USD", T0)]
    engine.run(flat_bars([100.0] * 5, SYMBOL))
    # the last good mark stands; the engine ran on
    assert engine.portfolio.accrued == {SYMBOL: -2.1}
    assert engine.equity == pytest.approx(CAPITAL - 2.1)
    refused = _refused(journal)
    assert len(refused) == 2
    assert "amount nan is not a finite number" in refused[0]
    assert "symbol 'OTHER' is not one of the bot's (TEST)" in refused[1]


def test_the_swap_booked_at_the_close_replaces_the_accrual_in_the_engine() -> None:
    """The venue books the swap (a ``CashFlow`` before the closing fill): equity after the
    close equals equity before it (same mark, no fee), the swap counted once."""
    strategy = Scripted(
        {0: lambda ctx, bar: ctx.buy(SYMBOL, 10), 3: lambda ctx, bar: ctx.close(SYMBOL)}
    )
    engine, broker, _ = _engine(strategy)
    bars = flat_bars([100.0] * 5, SYMBOL)
    broker.due[_at(2)] = [Accrual(SYMBOL, -2.1, "USD", _at(2))]
    # The paper broker fills the close at bar 4's open; the venue's swap comes first.
    broker.due[_at(4)] = [CashFlow("swap:1", SYMBOL, -2.1, "USD", _at(4), "swap")]
    engine.run(bars[:4])
    before = engine.equity
    engine.run(bars[4:])
    assert before == pytest.approx(CAPITAL - 2.1)
    assert engine.portfolio.positions[SYMBOL].quantity == 0.0
    assert engine.equity == pytest.approx(before)
    assert engine.portfolio.accrued == {}
