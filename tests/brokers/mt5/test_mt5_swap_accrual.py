"""An MT5 position's running swap is in the bot's equity while the position is open, as it is in
the terminal's (``reports-accruals``): a prop firm's daily loss limit, measured on the
terminal's equity, counts it, and so must the bot's risk plugins.

The real engine on the emulated terminal, which charges swap at ``rollover(days)`` (EURUSD: 1
point is 1 USD a lot, so ``swap_long`` -0.7 is 0.70 USD a lot and night). A lot bought at the
ask (1.10010) and marked at the bid (1.10000) is 10 USD down on the spread; the terminal
charges ``COMMISSION`` a lot and deal."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

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
from tests.runtime.helpers import Action, Scripted
from tests.venues.mt5 import MT5Terminal
from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.mt5_reports import accruals_due, position_swaps
from tradefleet_plugins.registry import tradefleet_brokers
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.engine.risk_hooks import ACTION_TAG, RiskHooks
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.sdk import Accrual, Capability, CashFlow, Fill, OrderUpdate

LOT = 100_000.0  # EURUSD units in one lot
CAPITAL = 10_000.0  # live_engine's
COMMISSION = -3.5  # per lot and deal
SPREAD = 10.0  # USD a lot: bought at the ask, marked at the bid
SWAP = -0.7  # EURUSD swap_long, points (USD) a lot and night
BID = 1.1  # the terminal's EURUSD bid, and the bars' close


def _venue(margin: str, commission: float = COMMISSION) -> Mt5Harness:
    specs = gold_pro_symbols()
    specs["EURUSD"].update(commission_per_lot=commission, swap_long=SWAP)
    harness = Mt5Harness.build(margin, venue=MT5Terminal(margin_mode=margin, symbols=specs))
    harness.symbols = ("EURUSD",)
    return harness.connect()


@pytest.fixture(params=["netting", "hedging"])
def margin(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def _equity(venue: Mt5Harness) -> float:
    account = venue.terminal.account_info()
    assert account is not None
    return float(account.equity)


def _recorded(broker: Mt5Broker) -> list[Accrual]:
    """Every ``Accrual`` the broker hands the bot from now on (before an engine binds it)."""
    seen: list[Accrual] = []
    drain: Callable[[], Sequence[Fill | OrderUpdate | CashFlow | Accrual]] = broker.drain_events

    def recording() -> Sequence[Fill | OrderUpdate | CashFlow | Accrual]:
        events = drain()
        seen.extend(e for e in events if isinstance(e, Accrual))
        return events

    broker.drain_events = recording  # type: ignore[method-assign]
    return seen


def _held_over(venue: Mt5Harness, nights: int, **steps: Any) -> tuple[Engine, Journal]:
    """A bot buys a lot of EURUSD at bar 0; the terminal rolls ``nights`` over and the broker
    polls; ``steps`` (``"1"``: an action at bar 1, ...) follow."""
    actions = {int(index): action for index, action in steps.items()}
    strategy = Scripted({0: lambda ctx, bar: ctx.buy("EURUSD", LOT), **actions})
    engine, journal = live_engine(venue, strategy)
    engine.run([minute_bar(0, BID)])
    settle_and_pump(engine, venue)
    venue.terminal.rollover(nights)
    settle_and_pump(engine, venue)
    return engine, journal


@pytest.mark.usefixtures("transport")
def test_a_held_positions_swap_is_in_the_bots_equity_as_in_the_terminals(margin: str) -> None:
    venue = _venue(margin)
    try:
        before = _equity(venue)
        accruals = _recorded(venue.broker)
        engine, _ = _held_over(venue, 3)
        cash = engine.portfolio.cash
        engine.run([minute_bar(1, BID)])
        [position] = venue.terminal.positions_get() or ()
        assert position.swap == pytest.approx(3 * SWAP)
        # -10 spread, -3.50 commission, -2.10 swap: the terminal's equity, to the cent
        assert _equity(venue) - before == pytest.approx(-SPREAD + COMMISSION + 3 * SWAP)
        assert engine.equity - CAPITAL == pytest.approx(_equity(venue) - before)
        assert engine.portfolio.cash == cash  # a mark, never in cash (the status' balance)
        assert [(a.symbol, a.amount, a.currency, a.kind) for a in accruals] == [
            ("EURUSD", pytest.approx(-2.1), "USD", "swap")
        ]
        # the bar's journaled snapshot (a day's start, the peak) counts it too
        assert engine.finish().equity[-1] == pytest.approx(CAPITAL - 15.6)
    finally:
        venue.close()


def test_closing_keeps_the_equity_and_reports_the_end_of_the_accrual_once(margin: str) -> None:
    """The closing deal books the swap (a cash flow before its fill): equity after the close,
    at the same price, is equity before it — the swap counted once, not twice, not dropped."""
    venue = _venue(margin, commission=0.0)
    try:
        before = _equity(venue)
        accruals = _recorded(venue.broker)
        engine, _ = _held_over(venue, 3, **{"1": lambda ctx, bar: ctx.close("EURUSD")})
        held = engine.equity
        assert held == pytest.approx(CAPITAL - SPREAD + 3 * SWAP)
        engine.run([minute_bar(1, BID)])
        settle_and_pump(engine, venue)
        settle_and_pump(engine, venue)
        assert not venue.terminal.positions_get()
        assert engine.portfolio.positions["EURUSD"].quantity == 0.0
        assert engine.equity == pytest.approx(held)
        assert engine.equity - CAPITAL == pytest.approx(_equity(venue) - before)
        assert engine.portfolio.accrued == {}
        (trade,) = engine.portfolio.trades
        assert trade.funding == pytest.approx(3 * SWAP)
        assert [a.amount for a in accruals] == [pytest.approx(-2.1), 0.0]
    finally:
        venue.close()


def test_a_partial_close_on_hedging_does_not_count_its_swap_twice() -> None:
    """0.4 of the lot closes: its deal books 0.56 of the 1.40 swap into cash while 0.84 stays
    on the position. Before the broker's next read of the positions the bot's accrual holds
    the 0.84 (the booked part taken out), not the 1.40, and equals the terminal's after it."""
    venue = _venue("hedging", commission=0.0)
    try:
        before = _equity(venue)
        engine, _ = _held_over(venue, 2, **{"1": lambda ctx, bar: ctx.sell("EURUSD", 0.4 * LOT)})
        assert engine.portfolio.accrued == {"EURUSD": pytest.approx(-1.4)}
        engine.run([minute_bar(1, BID)])
        venue.broker.position_reports()  # a query: the close has run, no poll since
        engine.pump()  # the deal's swap and fill, no refresh of the accrual yet
        [position] = venue.terminal.positions_get() or ()
        assert position.swap == pytest.approx(-0.84)
        assert engine.portfolio.cash_flows == pytest.approx(-0.56)
        assert engine.portfolio.accrued == {"EURUSD": pytest.approx(-0.84)}
        assert engine.equity - CAPITAL == pytest.approx(_equity(venue) - before)
        settle_and_pump(engine, venue)  # the broker's refresh: the terminal's own -0.84
        assert engine.portfolio.accrued == {"EURUSD": pytest.approx(-0.84)}
        assert engine.equity - CAPITAL == pytest.approx(_equity(venue) - before)
    finally:
        venue.close()


def _by_hand(venue: Mt5Harness, lots: float, position: int) -> None:
    """A person sells ``lots`` in the terminal (magic 0) against the bot's long ``position``."""
    term = venue.terminal
    request = {
        "action": term.TRADE_ACTION_DEAL,
        "symbol": "EURUSD",
        "volume": lots,
        "type": term.ORDER_TYPE_SELL,
        "type_filling": term.ORDER_FILLING_IOC,
        "magic": 0,
    }
    account = term.account_info()
    assert account is not None
    if account.margin_mode == term.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING:
        request["position"] = position
    result = term.order_send(request)
    assert result is not None and result.retcode == term.TRADE_RETCODE_DONE, result


def test_a_partial_close_found_by_the_poll_leaves_the_rest_accrued(margin: str) -> None:
    """A person closes 0.4 of the bot's lot in the terminal: the poll finds the deal (its
    swap share, -0.56, then its fill) and then reads the positions (-0.84 left): in that
    order, so the bot takes the share out of -1.40 and ends on the terminal's -0.84."""
    venue = _venue(margin, commission=0.0)
    try:
        before = _equity(venue)
        engine, _ = _held_over(venue, 2)
        [position] = venue.terminal.positions_get() or ()
        _by_hand(venue, 0.4, int(position.ticket))
        for _ in range(2):
            settle_and_pump(engine, venue)
            assert engine.portfolio.position("EURUSD").quantity == pytest.approx(0.6 * LOT)
            assert engine.portfolio.cash_flows == pytest.approx(-0.56)
            assert engine.portfolio.accrued == {"EURUSD": pytest.approx(-0.84)}
        engine.run([minute_bar(1, BID)])
        assert engine.equity - CAPITAL == pytest.approx(_equity(venue) - before)
    finally:
        venue.close()


def test_a_daily_loss_limit_sees_the_swap_of_an_open_position(margin: str) -> None:
    """prop-firm with a 12 USD daily loss limit (flatten at all of it): a lot held is 10 USD
    down on the spread, and three nights of swap (2.10) take the day's loss past 12 while the
    position is open. The terminal's equity (a prop firm's measure) is past the limit; the
    bot's must be too, and the plugin flattens."""
    venue = _venue(margin, commission=0.0)
    try:
        params = PropFirmParams(
            max_daily_loss=0.0012,
            flatten_at=1.0,
            require_stop=False,
            unprotected_move=0.0,
            fee_bps=0.0,
            slippage_bps=0.0,
        )
        guard = PropFirm(params)
        buy: Action = lambda ctx, bar: ctx.buy("EURUSD", LOT)  # noqa: E731
        strategy = Scripted({0: buy, 2: buy})
        _, journal = live_engine(venue, strategy)
        config = EngineConfig(venue.bot, "live", ("EURUSD",), 60, CAPITAL)
        hooks = RiskHooks(fill_observers=(("prop-firm", guard),), actors=(("prop-firm", guard),))
        engine = Engine(
            config,
            strategy,
            venue.broker,
            journal,
            [("prop-firm", guard)],
            venue=venue.broker,
            hooks=hooks,
        )
        engine.run([minute_bar(0, BID)])
        settle_and_pump(engine, venue)
        engine.run([minute_bar(1, BID)])
        settle_and_pump(engine, venue)
        assert engine.equity == pytest.approx(CAPITAL - SPREAD)  # within the limit: held
        assert venue.terminal.positions_get()
        venue.terminal.rollover(3)
        settle_and_pump(engine, venue)  # the accrual, and the flatten it asks for
        settle_and_pump(engine, venue)
        assert not venue.terminal.positions_get()
        (trade,) = engine.portfolio.trades
        assert trade.exit_reason == f"{ACTION_TAG}prop-firm"
        assert trade.funding == pytest.approx(3 * SWAP)
        engine.run([minute_bar(2, BID)])  # the day is blocked: the next entry is vetoed
        settle_and_pump(engine, venue)
        assert not venue.terminal.positions_get()
        codes = journal.query("SELECT action, code FROM risk_decisions ORDER BY id")
        assert codes[-1] == ("veto", "daily_loss")
    finally:
        venue.close()


def test_a_restarted_bot_counts_the_swap_from_before_its_first_bar(
    margin: str, tmp_path: Path
) -> None:
    """Nothing of an accrual is journaled: the restarted broker reports the swap its positions
    hold at ``connect`` (its start reads them), so the bot's equity counts it from the first
    events it applies — before its first bar — not from a later poll."""
    path = tmp_path / "journal.sqlite"
    venue = _venue(margin)
    term = venue.terminal
    before = _equity(venue)
    bracketed_then_down(venue, path, LOT)
    term.rollover(3)
    venue.broker.close()
    restarted = Mt5Harness.build(margin, venue=term)
    restarted.symbols = ("EURUSD",)
    restarted.connect()
    # Queued by connect itself (the start's own read of the positions), whatever the polls do.
    queued = list(restarted.broker._events)
    assert [(e.symbol, e.amount) for e in queued if isinstance(e, Accrual)] == [
        ("EURUSD", pytest.approx(-2.1))
    ]
    second = Journal(path, durable=True)
    try:
        again, carried, plan = restarted_plan(restarted, second, EMULATOR_T0 - 3600)
        seen: list[float] = []
        assert isinstance(again.strategy, Scripted)
        again.strategy.actions[0] = lambda ctx, bar: seen.append(ctx.equity)
        again.restore_from_venue(carried, plan, EMULATOR_T0)
        again.pump()  # what a live session does before its first bar (the position check)
        # no bar yet: the position at its entry price, the swap counted
        assert again.equity == pytest.approx(CAPITAL + COMMISSION + 3 * SWAP)
        again.run([minute_bar(1, BID)])
        assert seen == [pytest.approx(CAPITAL + _equity(restarted) - before)]
        assert again.equity - CAPITAL == pytest.approx(_equity(restarted) - before)
    finally:
        second.close()
        restarted.close()


def test_the_mt5_broker_declares_reports_accruals() -> None:
    (descriptor,) = [spec for spec in tradefleet_brokers() if spec.name == "mt5"]
    assert Capability.REPORTS_ACCRUALS in descriptor.capabilities


# -- the pure rules ------------------------------------------------------------------------------


def _position(symbol: str, swap: float) -> Any:
    return SimpleNamespace(symbol=symbol, swap=swap)


def test_the_swap_is_summed_per_bot_symbol() -> None:
    held = [_position("EURUSD", -0.7), _position("GOLD.pro", -3.1), _position("EURUSD", -0.56)]
    names = {"GOLD.pro": "XAUUSD"}
    totals = position_swaps(held, lambda venue: names.get(venue, venue))
    assert totals == {"EURUSD": -1.26, "XAUUSD": -3.1}  # the sum's float noise rounded away


def test_an_accrual_is_reported_when_it_changed_and_its_end_once() -> None:
    symbols = ("EURUSD", "XAUUSD")
    # a start: the held swap, nothing for a symbol flat (a bot starts from 0)
    assert accruals_due({"EURUSD": -2.1}, {}, symbols) == {"EURUSD": -2.1}
    assert accruals_due({"EURUSD": -2.1}, {"EURUSD": -2.1}, symbols) == {}
    assert accruals_due({"EURUSD": -2.8}, {"EURUSD": -2.1}, symbols) == {"EURUSD": -2.8}
    assert accruals_due({}, {"EURUSD": -2.8}, symbols) == {"EURUSD": 0.0}  # gone
    assert accruals_due({}, {"EURUSD": 0.0}, symbols) == {}  # once
    # a deal booked part of it: the bot's is unknown, the total reported even if unchanged
    assert accruals_due({"EURUSD": -0.84}, {"EURUSD": float("nan")}, symbols) == {"EURUSD": -0.84}
    assert accruals_due({}, {"EURUSD": float("nan")}, symbols) == {"EURUSD": 0.0}
