"""Funding and other payments a venue makes outside fills are booked into the bot's account.

A perpetual future's holder pays or receives funding every few hours: the venue moves it in or
out of the wallet, with no order and no fill. A bot that does not book it has an equity (and
daily-loss and drawdown limits measured on it) that drifts from the venue's by every payment.

The venue here is the paper broker's account held outside the bot's process, as in
``test_reconcile.py``, plus a funding ledger: payments are reported as ``CashFlow`` events while
the bot runs and by ``cash_flow_reports`` after a restart (``reports-cash-flows``).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console

from tests.plugin_hooks import registry_with
from tests.runtime.venue_view import VenueView, paper_bot_manifest
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    CarriedState,
    CashFlow,
    Fill,
    OrderUpdate,
    Side,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.json_schema import report_json, trades_json
from tradefleet_runtime.report.metrics import ReportInput, build_report
from tradefleet_runtime.report.sources import from_journal
from tradefleet_runtime.report.table import report_table
from tradefleet_runtime.sdk import NoParams, PluginKind, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.service.last_known import last_known_account
from tradefleet_runtime.session import BotSession, assemble, cash_flows_since
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)
NAME = "funding-bot"
SYMBOL = "BTCUSDT"


class FundingVenue(VenueView):
    """One account that outlives every broker object made for it, with a funding ledger."""

    account: ClassVar[PaperBroker | None] = None
    # Every payment the venue made, and those not yet reported to a running broker.
    ledger: ClassVar[list[CashFlow]] = []
    unreported: ClassVar[list[CashFlow]] = []
    asked_since: ClassVar[list[int]] = []

    def __init__(self, params: Any) -> None:
        if FundingVenue.account is None:
            FundingVenue.account = PaperBroker(PaperBrokerParams())
            FundingVenue.account.connect(
                BrokerContext(NAME, "paper", (SYMBOL,), "USDT", 100_000.0)  # type: ignore[arg-type]
            )
        super().__init__(FundingVenue.account)

    @classmethod
    def pay(cls, flow: CashFlow, *, reported: bool = True) -> None:
        """The venue books ``flow``; a running broker reports it (``reported``)."""
        cls.ledger.append(flow)
        if reported:
            cls.unreported.append(flow)

    def connect(self, ctx: BrokerContext) -> None:
        FundingVenue.unreported.clear()  # a new broker reports from its connect on

    def drain_events(self) -> Sequence[Fill | OrderUpdate | CashFlow]:
        flows = list(FundingVenue.unreported)
        FundingVenue.unreported.clear()
        return [*self.venue.drain_events(), *flows]

    def cash_flow_reports(self, since_ts: int) -> Sequence[CashFlow]:
        FundingVenue.asked_since.append(since_ts)
        return [flow for flow in FundingVenue.ledger if flow.ts >= since_ts]


class BuyOnce(Strategy):
    """Buys 1 at market on its first bar and holds it; closes it at the bar of ``close_at``."""

    close_at: ClassVar[int | None] = None

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        held = ctx.position(bar.symbol).quantity
        if bar.ts == BuyOnce.close_at:
            if held:
                ctx.close(bar.symbol)
        elif held == 0 and not ctx.open_orders(bar.symbol) and BuyOnce.close_at is None:
            ctx.buy(bar.symbol, 1)


class PayingBars:
    """Bars that make the venue pay each of ``flows`` as the bar at its time is handed out
    (``at``: at that bar's time instead, for a payment whose own time is unreadable)."""

    def __init__(self, bars: list[Bar], flows: Sequence[CashFlow], at: int | None = None) -> None:
        self.bars = bars
        self.flows = {flow.ts if at is None else at: flow for flow in flows}

    def __iter__(self) -> Any:
        for bar in self.bars:
            flow = self.flows.get(bar.ts)
            if flow is not None:
                FundingVenue.pay(flow)
            yield bar


HOOKS = type(
    "Hooks",
    (),
    {
        "tradefleet_strategies": staticmethod(
            hookimpl(
                lambda: [
                    PluginSpec(
                        kind=PluginKind.STRATEGY,
                        name="buy-once",
                        version="1.0.0",
                        factory=BuyOnce,
                        params=NoParams,
                    )
                ]
            )
        ),
        "tradefleet_brokers": staticmethod(
            hookimpl(
                lambda: [
                    PluginSpec(
                        kind=PluginKind.BROKER,
                        name="funding-venue",
                        version="1.0.0",
                        factory=FundingVenue,
                        params=NoParams,
                        modes=frozenset({"paper", "backtest"}),
                        capabilities=frozenset(
                            {Capability.VENUE_EXECUTION, Capability.REPORTS_CASH_FLOWS}
                        ),
                    )
                ]
            )
        ),
    },
)


@pytest.fixture
def registry() -> PluginRegistry:
    FundingVenue.account = None
    FundingVenue.ledger = []
    FundingVenue.unreported = []
    FundingVenue.asked_since = []
    BuyOnce.close_at = None
    return registry_with(HOOKS)  # type: ignore[arg-type]


def _bars(start: int, count: int) -> list[Bar]:
    return [
        Bar(SYMBOL, HOUR, T0 + i * HOUR, 100.0, 101.0, 99.0, 100.0, 10.0)
        for i in range(start, start + count)
    ]


def _manifest(folder: Path) -> Path:
    return paper_bot_manifest(
        folder, NAME, "buy-once", "funding-venue", symbol=SYMBOL, currency="USDT"
    )


def _session(folder: Path, registry: PluginRegistry, bars: Any) -> tuple[BotSession, Journal]:
    bot = assemble(load_manifest(_manifest(folder)), registry, folder)
    assert bot.venue is not None and bot.cash_flows is not None
    journal = Journal(folder / "journal.sqlite", durable=True)
    return BotSession(bot, journal, bars=bars), journal


def _run(folder: Path, registry: PluginRegistry, bars: Any) -> BotSession:
    """One life of the bot: open (reconcile), trade ``bars``, then die."""
    session, journal = _session(folder, registry, bars)
    session.open()
    session.run()
    journal.close()
    return session


def _funding(flow_id: str, amount: float, hours: int, **changes: Any) -> CashFlow:
    return CashFlow(flow_id, SYMBOL, amount, "USDT", T0 + hours * HOUR)._replace(**changes)


def _rows(folder: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(folder / "journal.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _events(folder: Path, kind: str) -> list[tuple[str, str]]:
    return [
        (row[0], row[1])
        for row in _rows(folder, f"SELECT message, data FROM events WHERE kind = '{kind}'")
    ]


def test_funding_reported_while_the_bot_runs_is_booked_into_cash_once(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """Long 1 at 100, then the venue charges 12.5 of funding at hour 3 and reports it twice (a
    poll's overlap). The account's cash and equity fall by 12.5 once; nothing else moves."""
    paid = _funding("fund-1", -12.5, 3)
    session = _run(tmp_path, registry, PayingBars(_bars(0, 6), [paid]))
    FundingVenue.unreported.append(paid)  # the same payment reported again
    engine = session.engine
    assert engine is not None
    engine.pump()
    portfolio = engine.portfolio
    assert portfolio.positions[SYMBOL].quantity == 1.0
    assert portfolio.cash_flows == -12.5
    # Equity is cash + position at the mark; cash is what the fills left, less the payment.
    fills = _rows(tmp_path, "SELECT quantity, price, fee FROM fills")
    spent = sum(q * p + f for q, p, f in fills)
    assert math.isclose(portfolio.cash, 100_000.0 - spent - 12.5, abs_tol=1e-9)
    assert math.isclose(portfolio.equity(), portfolio.cash + 1.0 * 100.0, abs_tol=1e-9)
    journaled = _rows(
        tmp_path, "SELECT flow_id, kind, symbol, currency, amount, ts, booked FROM cash_flows"
    )
    assert journaled == [("fund-1", "funding", SYMBOL, "USDT", -12.5, paid.ts, 1)]
    # No trade, no fill, no order for it.
    assert len(fills) == 1 and not portfolio.trades
    result = engine.finish()
    assert result.cash_flows == -12.5
    assert math.isclose(result.final_equity, 100_000.0 - spent - 12.5 + 100.0, abs_tol=1e-9)


def test_a_restart_keeps_booked_funding_and_books_what_was_paid_while_down(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """Run 1 books fund-1 (−12.5). While the bot is down the venue charges fund-2 (−7.25) and
    pays fund-3 (+1.5). The restarted bot has all three in its cash before its first bar, each
    once: fund-1 from its journal, the others from the venue, asked from fund-1's time on."""
    _run(tmp_path, registry, PayingBars(_bars(0, 6), [_funding("fund-1", -12.5, 3)]))
    FundingVenue.pay(_funding("fund-2", -7.25, 8), reported=False)
    FundingVenue.pay(_funding("fund-3", 1.5, 16), reported=False)
    session, journal = _session(tmp_path, registry, _bars(20, 2))
    engine = session.open()
    try:
        assert FundingVenue.asked_since == [T0 + 3 * HOUR]
        assert engine.portfolio.cash_flows == pytest.approx(-12.5 - 7.25 + 1.5)
        (said,) = _events(tmp_path, "cash_flows_caught_up")
        assert said[0] == "2 funding payment(s) made while the bot was down booked: -5.75 USDT"
        booked = _rows(tmp_path, "SELECT flow_id, amount FROM cash_flows ORDER BY id")
        assert booked == [("fund-1", -12.5), ("fund-2", -7.25), ("fund-3", 1.5)]
        equity_before_bars = engine.portfolio.equity()
        session.run()
        assert engine.portfolio.equity() == pytest.approx(equity_before_bars)
    finally:
        journal.close()
    # A third start books nothing again.
    session, journal = _session(tmp_path, registry, _bars(22, 1))
    engine = session.open()
    journal.close()
    assert engine.portfolio.cash_flows == pytest.approx(-18.25)
    assert len(_rows(tmp_path, "SELECT flow_id FROM cash_flows")) == 3
    assert FundingVenue.asked_since[-1] == T0 + 16 * HOUR


def test_funding_in_another_currency_is_journaled_and_said_not_booked(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    other = _funding("fund-bnb", -0.02, 2, currency="BNB")
    session = _run(tmp_path, registry, PayingBars(_bars(0, 4), [other]))
    assert session.engine is not None and session.engine.portfolio.cash_flows == 0.0
    assert _rows(tmp_path, "SELECT flow_id, booked FROM cash_flows") == [("fund-bnb", 0)]
    ((message, _),) = _events(tmp_path, "cash_flow_unbooked")
    assert "-0.02 BNB" in message and "books in USDT" in message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": math.nan}, "amount nan"),
        ({"amount": math.inf}, "amount inf"),
        ({"amount": "12"}, "amount '12'"),
        ({"flow_id": ""}, "flow_id ''"),
        ({"symbol": "ETHUSDT"}, "symbol 'ETHUSDT'"),
        ({"ts": 0}, "ts 0"),
    ],
)
def test_a_payment_the_bot_cannot_read_is_refused_naming_the_field(
    tmp_path: Path, registry: PluginRegistry, changes: dict[str, Any], field: str
) -> None:
    """A broker's bad answer is said, naming the field, and kept out of the account; the bot
    goes on (a crash of the engine's thread would leave its positions unwatched)."""
    bad = _funding("fund-bad", -3.0, 2)._replace(**changes)
    session = _run(tmp_path, registry, PayingBars(_bars(0, 4), [bad], at=T0 + 2 * HOUR))
    engine = session.engine
    assert engine is not None
    assert engine.portfolio.cash_flows == 0.0 and engine.stats.bars == 4
    refused = _events(tmp_path, "cash_flow_refused")
    assert refused and all(field in message for message, _ in refused)
    assert _rows(tmp_path, "SELECT COUNT(*) FROM cash_flows") == [(0,)]


def test_a_first_start_asks_for_no_payments_from_before_the_bot(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """Funding the account paid before the bot existed (a position a person held) is not the
    bot's: a first start asks nothing, and neither does a restart of a bot that never filled."""
    FundingVenue.pay(_funding("before", -99.0, 0), reported=False)
    session, journal = _session(tmp_path, registry, [])
    engine = session.open()
    journal.close()
    assert FundingVenue.asked_since == [] and engine.portfolio.cash_flows == 0.0


def test_where_a_restart_asks_from() -> None:
    fill = Fill("o1", SYMBOL, Side.BUY, 1.0, 100.0, 0.0, T0 + 50, "t1")
    state = CarriedState(initial_capital=1.0)
    assert cash_flows_since(state) is None
    assert cash_flows_since(state, [fill]) == T0 + 50  # a fill made while down
    state.fills = [fill._replace(ts=T0 + 70), fill._replace(ts=T0 + 60)]
    assert cash_flows_since(state) == T0 + 60
    state.cash_flows = [_funding("b", 1.0, 9), _funding("a", 1.0, 5)]
    assert cash_flows_since(state) == T0 + 9 * HOUR  # the newest payment, not the last row


def test_a_restart_after_the_upgrade_asks_only_from_the_upgrade() -> None:
    """A journal brought to the release that books payments at ``cash_flows_from``: the
    weeks of funding a position held over the upgrade were never the bot's to book, and would
    land today in one step, where a daily loss limit sees them."""
    fill = Fill("o1", SYMBOL, Side.BUY, 1.0, 100.0, 0.0, T0, "t1")
    state = CarriedState(initial_capital=1.0, fills=[fill], cash_flows_from=T0 + 30 * 86400)
    assert cash_flows_since(state) == T0 + 30 * 86400
    assert cash_flows_since(state, [fill._replace(ts=T0 + 40 * 86400)]) == T0 + 30 * 86400
    state.cash_flows_from = T0 - 86400  # upgraded before the bot's first fill
    assert cash_flows_since(state) == T0
    state.cash_flows = [_funding("a", 1.0, 5)]  # booked since: from the newest, as always
    state.cash_flows_from = T0 + 30 * 86400
    assert cash_flows_since(state) == T0 + 5 * HOUR


def test_the_report_of_a_run_shows_its_funding_apart_from_its_trades(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """``tradefleet report`` of a live or paper run: funding is a line of its own and in the
    net P&L (the equity), in no trade's P&L."""
    _run(tmp_path, registry, PayingBars(_bars(0, 6), [_funding("fund-1", -12.5, 3)]))
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        (run,) = journal.runs()
        report = build_report(from_journal(journal, run))
    finally:
        journal.close()
    out = report_json(report, "USDT")
    assert out["funding"] == -12.5
    fills = _rows(tmp_path, "SELECT quantity, price, fee FROM fills")
    spent_fees = sum(f for _, _, f in fills)
    # Bought 1 at the open and marked at 100 since: the net P&L is the fee and the funding.
    assert out["net_pnl"] == pytest.approx(-12.5 - spent_fees + sum(100.0 - p for _, p, _ in fills))
    console = Console(width=120, record=True)
    console.print(report_table("run", report, "USDT"))
    assert re.search(r"funding\s+│\s+-12\.50 USDT", console.export_text())


def test_a_run_without_funding_shows_no_funding_line(tmp_path: Path) -> None:
    report = build_report(
        ReportInput(
            initial=100.0, currency="USD", timeframe_s=HOUR, timestamps=[T0 + HOUR],
            equity=[100.0], exposure=[0.0], trades=[], fees=0.0,
        )
    )  # fmt: skip
    console = Console(width=120, record=True)
    console.print(report_table("run", report, "USD"))
    assert "funding" not in console.export_text()
    assert report_json(report, "USD")["funding"] == 0.0


def test_a_trade_carries_the_funding_paid_while_it_held_its_position_across_a_restart(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """Long 1 from hour 0; the venue charges 12.5 at hour 3, the bot dies, the venue charges
    7.25 at hour 8 while it is down, the restarted bot closes at hour 10. The trade's funding is
    −19.75, in its net P&L, in the journal's trade row and in ListTrades' source; a trade that
    held no position at a payment gets none of it."""
    _run(tmp_path, registry, PayingBars(_bars(0, 6), [_funding("fund-1", -12.5, 3)]))
    FundingVenue.pay(_funding("fund-2", -7.25, 8), reported=False)
    BuyOnce.close_at = T0 + 10 * HOUR
    session = _run(tmp_path, registry, PayingBars(_bars(9, 4), [_funding("fund-3", 2.0, 12)]))
    engine = session.engine
    assert engine is not None
    (trade,) = engine.portfolio.trades
    assert trade.funding == pytest.approx(-19.75)  # fund-3 came after the close: no trade's
    assert trade.net_pnl == pytest.approx(trade.gross_pnl - trade.fees - 19.75)
    assert engine.portfolio.cash_flows == pytest.approx(-17.75)
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        runs = journal.runs()
        (journaled,) = [t for run in runs for t in journal.trades(run.run_id)]
    finally:
        journal.close()
    assert journaled == trade
    assert trades_json([trade])[0]["funding"] == pytest.approx(-19.75)


def test_funding_before_a_fill_goes_to_the_trade_that_held_the_position_then() -> None:
    """The replay after a restart puts each payment between the fills it came between."""
    from tradefleet_runtime.engine.portfolio import Portfolio

    def fill(i: int, side: Side, hours: int) -> Fill:
        return Fill(f"o{i}", SYMBOL, side, 1.0, 100.0, 0.0, T0 + hours * HOUR, f"t{i}")

    portfolio = Portfolio(cash=1000.0)
    portfolio.apply(fill(1, Side.BUY, 0))
    portfolio.book_cash_flow(-1.0, SYMBOL)
    portfolio.apply(fill(2, Side.SELL, 2))
    portfolio.book_cash_flow(-5.0, "ETHUSDT")  # another symbol's position: not this trade's
    portfolio.apply(fill(3, Side.SELL, 3))
    portfolio.book_cash_flow(3.0, SYMBOL)
    portfolio.apply(fill(4, Side.BUY, 5))
    assert [t.funding for t in portfolio.trades] == [-1.0, 3.0]
    assert portfolio.cash == pytest.approx(1000.0 - 1.0 - 5.0 + 3.0)


def test_a_restarted_bot_waiting_for_its_venue_shows_the_cash_its_funding_left(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """The last-known account (status while Starting) replays the journaled payments as the
    engine does: its balance is the cash the run left, not the fills' alone."""
    session = _run(tmp_path, registry, PayingBars(_bars(0, 6), [_funding("fund-1", -12.5, 3)]))
    assert session.engine is not None
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        known = last_known_account(journal, NAME)
    finally:
        journal.close()
    assert known is not None
    assert known.balance == pytest.approx(session.engine.portfolio.cash)


def test_a_restart_replays_a_payment_stamped_with_its_closing_fill_into_that_trade() -> None:
    """An MT5 swap is stamped with the deal that closes its position, the paper broker's
    funding with the bar whose open fills an order: the replay after a restart books such a
    payment before the fill of the same second, into the trade that held the position."""
    from tests.runtime.helpers import Scripted, make_engine

    engine = make_engine(Scripted({}), symbols=(SYMBOL,))
    opened = Fill("o1", SYMBOL, Side.BUY, 1.0, 100.0, 0.0, T0, "t1")
    closed = Fill("o2", SYMBOL, Side.SELL, 1.0, 110.0, 0.0, T0 + 5 * HOUR, "t2")
    swap = CashFlow("swap:t2", SYMBOL, -2.5, "USD", T0 + 5 * HOUR, "swap")
    state = CarriedState(initial_capital=10_000.0, fills=[opened, closed], cash_flows=[swap])
    engine.restore(state)
    (trade,) = engine.portfolio.trades
    assert trade.funding == -2.5 and trade.net_pnl == pytest.approx(10.0 - 2.5)
    assert engine.portfolio.cash == pytest.approx(10_000.0 + 10.0 - 2.5)
