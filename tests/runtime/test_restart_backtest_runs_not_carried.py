"""A backtest run written into a paper or live bot's journal (``tradefleet backtest --journal``,
same bot name) is never a restart point: the account a restart continues, and the timeframe its
spec check compares with, are the bot's paper and live runs' alone (``Journal._earlier_runs``,
``Journal.run_timeframe``).

Before, ``carried_state`` read every earlier run of the bot whatever its mode: a paper restart
after such a backtest restored the backtest's positions and working orders into the paper
account (orders it never sent, a position it never bought), and the timeframe check took the
backtest's timeframe for the account's, so a backtest on the new timeframe hid a 1h -> 4h change
off a boundary while the paper account held a long.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.runtime.helpers import HOUR, T0, Scripted, bar, paper_engine, start_test_run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Fill, OrderStatus, OrderType, Position, Side
from tradefleet_runtime.restart_spec_check import restart_refusals
from tradefleet_runtime.spec.model import Mode

MONDAY = 1483315200  # 2017-01-02 00:00 UTC


def _run(journal: Journal, run_id: str, mode: str, timeframe_s: int) -> None:
    journal.start_run(
        run_id=run_id,
        bot="b",
        mode=mode,
        currency="USD",
        initial_capital=100000.0,
        timeframe_s=timeframe_s,
        config_hash="x",
        manifest={},
    )
    time.sleep(0.01)  # runs are ordered by started_at


def _fill(journal: Journal, order_id: str, symbol: str, quantity: float) -> None:
    position = Position(symbol)
    position.quantity = quantity
    fill = Fill(order_id, symbol, Side.BUY, quantity, 1.05, 0.0, MONDAY + 7 * HOUR, order_id)
    journal.record_fill(fill, position, OrderStatus.FILLED)
    journal.flush()


def test_a_backtest_run_does_not_hide_a_timeframe_change_of_the_paper_account(
    tmp_path: Path,
) -> None:
    """R29a: the journal's timeframe is the paper account's (1h), not a later backtest's (4h)
    into the same file: a 1h -> 4h change at 07:00 while the account holds a long is refused."""
    journal = Journal(tmp_path / "j.sqlite")
    try:
        _run(journal, "paper-1", "paper", HOUR)
        _fill(journal, "o1", "EURUSD", 1000.0)  # the paper account holds a long
        _run(journal, "bt-1", "backtest", 4 * HOUR)  # a backtest on 4h, same bot, same file
        journal.run_id = "paper-2"  # the restart's run is not started yet
        assert journal.run_timeframe("b") == HOUR, "the paper account's runs were on 1h"
        state = journal.carried_state("b")
        assert state is not None
        state.last_bar_ts = MONDAY + 7 * HOUR  # 07:00: no 4h boundary
        refusals = restart_refusals(state, journal.run_timeframe("b"), ["EURUSD"], 4 * HOUR)
    finally:
        journal.close()
    assert [r.field for r in refusals] == ["spec.market.timeframe"], refusals


def test_a_backtests_open_position_is_not_a_holding_of_the_paper_account(
    tmp_path: Path,
) -> None:
    """R29a: pre-existing in ``Journal.carried_state`` (no mode filter), newly a refusal of the
    restart spec check: a symbol the paper bot never traded was refused as held."""
    journal = Journal(tmp_path / "j.sqlite")
    try:
        _run(journal, "paper-1", "paper", HOUR)
        _run(journal, "bt-1", "backtest", HOUR)
        _fill(journal, "bt-o1", "GBPUSD", 5.0)  # the backtest's data ended with it open
        journal.run_id = "paper-2"
        state = journal.carried_state("b")
        assert state is not None
        refusals = restart_refusals(state, journal.run_timeframe("b"), ["EURUSD"], HOUR)
    finally:
        journal.close()
    assert refusals == [], refusals


def test_only_backtest_runs_leave_nothing_to_carry(tmp_path: Path) -> None:
    """A journal holding nothing but the bot's backtests is a first start's: no carried state,
    no journal timeframe."""
    journal = Journal(tmp_path / "j.sqlite")
    try:
        _run(journal, "bt-1", "backtest", 4 * HOUR)
        _fill(journal, "bt-o1", "GBPUSD", 5.0)
        journal.run_id = "paper-1"
        assert journal.carried_state("b") is None
        assert journal.run_timeframe("b") is None
        assert journal.account_terms("b") is None
    finally:
        journal.close()


def _backtest_engine(journal: Journal, strategy: Scripted) -> Engine:
    """A backtest of the paper helper's bot "bot" on TEST, into the same journal file."""
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext("bot", Mode.BACKTEST, ("TEST",), "USD", 10_000.0))
    start_test_run(journal, "bt-1", mode="backtest")
    config = EngineConfig("bot", "backtest", ("TEST",), HOUR, 10_000.0, equity_chunk=1024)
    return Engine(config, strategy, broker, journal)


def test_a_paper_restart_after_a_backtest_restores_none_of_its_positions_or_orders(
    tmp_path: Path,
) -> None:
    """Money: the paper account holds 2 TEST with a resting limit sell; a backtest of the same
    bot into the same journal ends holding 7 TEST with its stop-loss and take-profit working
    and a limit buy resting. The paper restart restores the paper account's 2 TEST and its limit
    sell only: none of the backtest's position, cash or orders (which it would otherwise work,
    and fill, as its own)."""
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    paper = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 2),
            1: lambda ctx, b: ctx.sell("TEST", 2, order_type=OrderType.LIMIT, price=150),
        }
    )
    engine = paper_engine(journal, "run-1", paper)
    engine.run([bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 100, 101, 99, 100)])
    cash, held = engine.portfolio.cash, engine.position("TEST").quantity
    paper_orders = {o.client_order_id for o in engine.open_orders()}
    assert held == 2 and len(paper_orders) == 1
    journal.close()
    time.sleep(0.01)  # runs are ordered by started_at

    journal = Journal(path, durable=True)
    backtest = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 7, stop_loss=80, take_profit=140),
            1: lambda ctx, b: ctx.buy("TEST", 3, order_type=OrderType.LIMIT, price=60),
        }
    )
    tested = _backtest_engine(journal, backtest)
    tested.run([bar(3, 100, 100, 100, 100), bar(4, 100, 101, 99, 100), bar(5, 100, 101, 99, 100)])
    tested.finish()  # the data ended with the position open, its bracket working
    assert tested.position("TEST").quantity == 7 and len(tested.open_orders()) == 3
    journal.close()
    time.sleep(0.01)

    journal = Journal(path, durable=True)
    try:
        restarted = paper_engine(journal, "run-2", Scripted(), restores_account=True)
        carried = journal.carried_state("bot")
        assert carried is not None
        restarted.restore(carried)
        assert restarted.position("TEST").quantity == held
        assert restarted.portfolio.cash == cash
        assert {o.client_order_id for o in restarted.open_orders()} == paper_orders
        assert not any(o.order_type is OrderType.STOP for o in restarted.open_orders())
        assert carried.runs == 1  # the paper run alone
        assert carried.last_bar_ts == T0 + 3 * HOUR  # the paper run's last bar, not bt-1's
    finally:
        journal.close()
