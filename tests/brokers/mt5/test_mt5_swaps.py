"""MT5 swaps: the swap a position accrued is booked at the deal that closes it as a ``CashFlow``
(kind ``swap``, id ``swap:<deal ticket>``), not folded into the fill's fee, so the fill's fee is
the venue's commission, a swap credit is booked instead of dropped, the bot's cash moves as the
terminal's balance does and the closed trade's ``funding`` holds the swap. The real engine on
the emulated terminal, which charges swap at ``rollover(days)`` (EURUSD: 1 point is 1 USD a
lot, so ``swap_long`` points are USD per lot and day)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.mt5.deal_stubs import deal_stub
from tests.brokers.mt5.harness import (
    EMULATOR_T0,
    Mt5Harness,
    bracketed_then_down,
    gold_pro_symbols,
    live_engine,
    minute_bar,
    restarted_plan,
    settle_and_pump,
)
from tests.runtime.helpers import Scripted
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams
from tradefleet_plugins.brokers.mt5_reports import deal_credit, fill_from_deal, swap_flow
from tradefleet_plugins.registry import tradefleet_brokers
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Capability, CashFlow, CashFlowReporter
from tradefleet_runtime.session import cash_flows_since

LOT = 100_000.0  # EURUSD units in one lot
CAPITAL = 10_000.0  # live_engine's
COMMISSION = -3.5  # per lot and deal


def _venue(margin: str, **eurusd: Any) -> Mt5Harness:
    """A broker on a fresh terminal charging 3.5 USD a lot per deal, EURUSD's swap rates set
    by ``eurusd``."""
    specs = gold_pro_symbols()
    specs["EURUSD"].update(commission_per_lot=COMMISSION, **eurusd)
    harness = Mt5Harness.build(margin, venue=MT5Terminal(margin_mode=margin, symbols=specs))
    harness.symbols = ("EURUSD",)
    return harness.connect()


@pytest.fixture(params=["netting", "hedging"])
def margin(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def _balance(venue: Mt5Harness) -> float:
    account = venue.terminal.account_info()
    assert account is not None
    return float(account.balance)


def _flows(journal: Journal) -> list[tuple[Any, ...]]:
    return list(
        journal.query(
            "SELECT flow_id, kind, symbol, currency, amount, booked FROM cash_flows ORDER BY id"
        )
    )


def _fees(journal: Journal) -> list[float]:
    return [row[0] for row in journal.query("SELECT fee FROM fills ORDER BY rowid")]


def _closing_tickets(venue: Mt5Harness) -> list[int]:
    return [int(d.ticket) for d in venue.deals() if d.entry != venue.terminal.DEAL_ENTRY_IN]


def _trade_in_and_out(venue: Mt5Harness, days: int, *steps: Any) -> tuple[Engine, Journal, float]:
    """A bot buys a lot of EURUSD at bar 0, the terminal rolls ``days`` over, then ``steps``
    (bar index -> action) run at bars 1.. . Returns the engine, its journal and the terminal's
    balance before the bot traded."""
    before = _balance(venue)
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", LOT), **dict(steps)})
    engine, journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, 1.1)])
    settle_and_pump(engine, venue)
    venue.terminal.rollover(days)
    last = max(index for index, _ in steps)
    for i in range(1, last + 1):
        engine.run([minute_bar(i, 1.105)])
        settle_and_pump(engine, venue)
    return engine, journal, before


@pytest.mark.usefixtures("transport")
def test_a_charged_swap_is_a_cash_flow_of_the_closed_trade_not_a_fee(margin: str) -> None:
    venue = _venue(margin, swap_long=-0.7)
    try:
        engine, journal, before = _trade_in_and_out(
            venue, 3, (1, lambda ctx, bar: ctx.close("EURUSD"))
        )
        deals = venue.deals()
        assert [d.swap for d in deals] == [0.0, -2.1]  # 3 days × -0.7 USD a lot
        assert _fees(journal) == [3.5, 3.5]  # the commission alone
        (close,) = _closing_tickets(venue)
        assert _flows(journal) == [(f"swap:{close}", "swap", "EURUSD", "USD", -2.1, 1)]
        assert engine.portfolio.cash - CAPITAL == pytest.approx(_balance(venue) - before)
        (trade,) = engine.portfolio.trades
        assert trade.funding == pytest.approx(-2.1)
        assert trade.fees == pytest.approx(7.0)
        journaled = list(journal.query("SELECT fees, funding FROM trades"))
        assert journaled == [(pytest.approx(7.0), pytest.approx(-2.1))]
    finally:
        venue.close()


def test_a_swap_credit_larger_than_the_commission_is_booked_not_dropped(margin: str) -> None:
    # Closed by its SL, which the terminal fires: the broker's poll reports the deal.
    venue = _venue(margin, swap_long=5.0)
    try:
        before = _balance(venue)
        strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", LOT, stop_loss=1.0950)})
        engine, journal = live_engine(venue, strategy)
        engine.run([minute_bar(0, 1.1)])
        settle_and_pump(engine, venue)
        venue.terminal.rollover(1)
        venue.terminal.set_price("EURUSD", 1.0940)
        settle_and_pump(engine, venue)
        assert [d.swap for d in venue.deals()] == [0.0, 5.0]
        assert _fees(journal) == [3.5, 3.5]
        (close,) = _closing_tickets(venue)
        assert _flows(journal) == [(f"swap:{close}", "swap", "EURUSD", "USD", 5.0, 1)]
        assert engine.portfolio.cash - CAPITAL == pytest.approx(_balance(venue) - before)
        (trade,) = engine.portfolio.trades
        assert trade.exit_reason == "stop_loss"
        assert trade.funding == pytest.approx(5.0)
    finally:
        venue.close()


def test_each_partial_close_books_its_own_share_of_the_swap(margin: str) -> None:
    venue = _venue(margin, swap_long=-0.7)
    try:
        engine, journal, before = _trade_in_and_out(
            venue,
            2,
            (1, lambda ctx, bar: ctx.sell("EURUSD", 0.4 * LOT)),
            (2, lambda ctx, bar: ctx.close("EURUSD")),
        )
        first, second = _closing_tickets(venue)
        # the terminal's split: -1.40 over 0.4 lot, then what is left
        assert [d.swap for d in venue.deals()] == [0.0, -0.56, -0.84]
        assert [(row[0], row[4]) for row in _flows(journal)] == [
            (f"swap:{first}", -0.56),
            (f"swap:{second}", -0.84),
        ]
        assert _fees(journal) == [3.5, 1.4, 2.1]
        assert engine.portfolio.cash - CAPITAL == pytest.approx(_balance(venue) - before)
        (trade,) = engine.portfolio.trades
        assert trade.funding == pytest.approx(-1.4)
    finally:
        venue.close()


def test_a_swap_on_a_deal_made_while_down_is_booked_once_at_restart(
    margin: str, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite"
    venue = _venue(margin, swap_long=-0.7)
    term = venue.terminal
    before = _balance(venue)
    parent = bracketed_then_down(venue, path, LOT)
    term.rollover(3)
    term.set_price("EURUSD", 1.0940)  # the SL fires while the bot is down
    venue.broker.close()
    restarted = Mt5Harness.build(margin, venue=term)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    second = Journal(path, durable=True)
    try:
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        assert [f.client_order_id for f in plan.missed_fills] == [f"{parent}-sl"]
        # As the session does (``_reconcile``): the payments made while down are asked first
        # and booked among the missed fills, in time order, then said.
        since = cash_flows_since(carried, plan.missed_fills)
        assert since is not None
        flows = restarted.broker.cash_flow_reports(since)
        (close,) = _closing_tickets(restarted)
        assert flows == [
            CashFlow(f"swap:{close}", "EURUSD", -2.1, "USD", plan.missed_fills[0].ts, "swap")
        ]
        again.restore_from_venue(carried, plan, EMULATOR_T0, flows)
        assert again.book_missed_cash_flows(flows)
        assert again.book_missed_cash_flows(restarted.broker.cash_flow_reports(since)) == ""
        # The swap is the trade's that the stop closed while the bot was down, not cash alone.
        (trade,) = again.portfolio.trades
        assert trade.exit_reason == "stop_loss" and trade.funding == pytest.approx(-2.1)
        assert second.trades(second.runs()[-1].run_id)[0].funding == pytest.approx(-2.1)
        assert [row[0] for row in _flows(second)] == [f"swap:{close}"]
        assert again.portfolio.cash - CAPITAL == pytest.approx(_balance(restarted) - before)
        # the running poll does not report it again: the deal was there at start
        restarted.broker.settle(timeout=30.0)
        assert not [e for e in restarted.broker.drain_events() if isinstance(e, CashFlow)]
    finally:
        second.close()
        restarted.close()


def test_the_mt5_broker_declares_and_has_reports_cash_flows() -> None:
    (descriptor,) = [spec for spec in tradefleet_brokers() if spec.name == "mt5"]
    assert Capability.REPORTS_CASH_FLOWS in descriptor.capabilities
    assert isinstance(Mt5Broker(Mt5BrokerParams()), CashFlowReporter)


# -- the pure rule: a deal's fee and its swap ------------------------------------------------


def _deal(**fields: Any) -> Any:
    return deal_stub(EMULATOR_T0, **fields)


def _units(_symbol: str, volume: float) -> float:
    return volume * LOT


@pytest.mark.parametrize("swap", [-30.0, 2.0, 10.0])
def test_the_fee_is_the_commission_and_the_swap_is_its_own_flow(swap: float) -> None:
    fill = fill_from_deal(_deal(swap=swap), "x", "EURUSD", _units)
    assert fill is not None and fill.fee == pytest.approx(3.5)
    assert deal_credit(_deal(swap=swap)) == 0.0  # nothing left unbooked
    flow = swap_flow(_deal(swap=swap), "EURUSD", "USD", EMULATOR_T0)
    assert flow == CashFlow("swap:7", "EURUSD", swap, "USD", EMULATOR_T0, "swap")


def test_no_swap_no_flow_and_a_commission_rebate_stays_unbookable() -> None:
    assert swap_flow(_deal(), "EURUSD", "USD", EMULATOR_T0) is None
    assert swap_flow(_deal(type=2, swap=5.0), "EURUSD", "USD", EMULATOR_T0) is None  # balance
    rebate = fill_from_deal(_deal(commission=2.0), "x", "EURUSD", _units)
    assert rebate is not None and rebate.fee == 0.0
    assert deal_credit(_deal(commission=2.0)) == pytest.approx(2.0)
