"""A restarted paper bot continues its account and re-arms its working orders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, bar, paper_engine
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.errors import SpecError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import OrderType
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.report.metrics import build_report
from tradefleet_runtime.report.sources import from_journal
from tradefleet_runtime.session import Bot, BotSession, apply_stop_policy, assemble
from tradefleet_runtime.spec import parse_manifest
from tradefleet_runtime.spec.model import Mode

ROOT = Path(__file__).resolve().parents[2]
EURUSD = ROOT / "data" / "EURUSD_H1_2017.csv"


def _engine(journal: Journal, run_id: str, strategy: Scripted) -> Engine:
    return paper_engine(journal, run_id, strategy, fee_bps=10, restores_account=True)


def test_restart_carries_cash_positions_and_brackets(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    first = Journal(path, durable=True)
    opener = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 5, stop_loss=95, take_profit=110),
            1: lambda ctx, b: ctx.sell("TEST", 1, order_type=OrderType.LIMIT, price=130),
        }
    )
    engine = _engine(first, "run-1", opener)
    engine.run([bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 100, 101, 99, 100)])
    cash_before, position_before = engine.portfolio.cash, engine.position("TEST").quantity
    assert position_before == 5
    # The process dies here: no finish(), no stop policy; the journal is all that is left.
    first.close()

    second = Journal(path, durable=True)
    survivor = Scripted()
    restarted = _engine(second, "run-2", survivor)
    carried = second.carried_state("bot")
    assert carried is not None and carried.runs == 1
    summary = restarted.restore(carried)
    assert "1 earlier run" in summary
    assert restarted.portfolio.cash == pytest.approx(cash_before)
    assert restarted.position("TEST").quantity == position_before
    working = {o.client_order_id[-3:]: o for o in restarted.open_orders()}
    assert {"-sl", "-tp"} <= set(working)  # the protective bracket is armed again
    assert any(o.order_type is OrderType.LIMIT and o.price == 130 for o in restarted.open_orders())
    # The next bar trades through the stop: the re-armed bracket closes the position.
    restarted.run([bar(3, 99, 99, 90, 92)])
    assert restarted.position("TEST").quantity == 0
    [trade] = restarted.portfolio.trades
    assert (trade.entry_price, trade.exit_price, trade.entry_ts) == (100, 95, T0 + HOUR)
    assert [f.reason for f in survivor.fills] == ["stop_loss"]
    events = second.query("SELECT message FROM events WHERE kind = 'restored'")
    assert len(events) == 1 and "3 order(s) re-armed" in events[0][0]
    second.close()


def test_history_shown_at_a_restart_cancels_no_working_order(tmp_path: Path) -> None:
    """A replayed bar's ``close`` (or ``cancel``) is history like its orders: the re-armed
    stop-loss and take-profit of the open position stay working."""
    path = tmp_path / "journal.sqlite"
    first = Journal(path, durable=True)
    opener = Scripted({0: lambda ctx, b: ctx.buy("TEST", 5, stop_loss=95, take_profit=110)})
    engine = _engine(first, "run-1", opener)
    engine.run([bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100)])
    assert engine.position("TEST").quantity == 5
    first.close()

    second = Journal(path, durable=True)

    def close_everything(ctx: Any, b: Any) -> None:
        for order in ctx.open_orders():
            ctx.cancel(order.client_order_id)
        ctx.close("TEST")

    replayer = Scripted({0: close_everything, 1: close_everything})
    restarted = _engine(second, "run-2", replayer)
    carried = second.carried_state("bot")
    assert carried is not None
    restarted.restore(carried)
    # What the restore journals is stamped at the last bar the account saw, not at 0.
    rearmed = second.query("SELECT ts FROM order_updates WHERE reason = 're-armed on restart'")
    assert rearmed == [(T0 + 2 * HOUR,), (T0 + 2 * HOUR,)]
    assert restarted.catch_up([bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100)]) == 2
    working = sorted(o.client_order_id[-3:] for o in restarted.open_orders())
    assert working == ["-sl", "-tp"]
    assert restarted.stats.warmup_intents == 2  # the closes themselves were dropped, counted
    cancelled = second.query("SELECT client_order_id FROM order_updates WHERE status = 'cancelled'")
    assert cancelled == []
    # Live bars are not history: the same cancels act then.
    for order in restarted.open_orders():
        restarted.ctx.cancel(order.client_order_id)
    assert restarted.open_orders() == []
    second.close()


def test_a_stop_keeps_an_exit_on_its_way(tmp_path: Path) -> None:
    """Stopped right after the strategy closed its position: the stop policy cancels the
    resting entry but keeps the reduce-only exit and the position's SL/TP (which the close
    keeps working until it fills), or the position would be left with no order protecting or
    closing it."""
    journal = Journal(tmp_path / "journal.sqlite", durable=True)

    def exit_and_rest_an_entry(ctx: Any, b: Any) -> None:
        ctx.close("TEST")
        ctx.buy("TEST", 1, order_type=OrderType.LIMIT, price=50)

    strategy = Scripted(
        {
            0: lambda ctx, b: ctx.buy("TEST", 5, stop_loss=95, take_profit=110),
            1: lambda ctx, b: ctx.buy("TEST", 1, order_type=OrderType.LIMIT, price=40),
            2: exit_and_rest_an_entry,
        }
    )
    engine = _engine(journal, "run-1", strategy)
    engine.run([bar(0, 100, 100, 100, 100), bar(1, 100, 101, 99, 100), bar(2, 100, 101, 99, 100)])
    assert engine.position("TEST").quantity == 5
    assert sorted((o.reduce_only, o.order_type.value, o.price) for o in engine.open_orders()) == [
        (False, "limit", 50),
        (True, "limit", 110),
        (True, "market", None),
        (True, "stop", 95),
    ]
    # The close's cancel of the resting entry is stamped when asked (the bar's close), not at
    # the simulator's clock (the bar's open), before the order it ends.
    decided = T0 + 3 * HOUR
    stamps = journal.query(
        "SELECT u.ts, o.created_ts FROM order_updates u JOIN orders o"
        " USING (run_id, client_order_id) WHERE u.status = 'cancelled'"
    )
    assert len(stamps) == 1 and all(ts == decided >= created for ts, created in stamps)
    apply_stop_policy(_paper_bot("2017-03-01"), engine)
    kept = sorted((o.reduce_only, o.order_type.value, o.quantity) for o in engine.open_orders())
    assert kept == [(True, "limit", 5), (True, "market", 5), (True, "stop", 5)]
    journal.close()


def test_a_backtest_never_inherits_state(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    assert journal.carried_state("bot") is None


def _paper_bot(end: str) -> Bot:
    manifest = {
        "apiVersion": "tradefleet.io/v1alpha1",
        "kind": "TradingBot",
        "metadata": {"name": "continued"},
        "spec": {
            "mode": "paper",
            "strategy": {
                "name": "ema-cross",
                "params": {
                    "fast": 12,
                    "slow": 48,
                    "stop_loss_pct": 0.004,
                    "take_profit_pct": 0.008,
                },
            },
            "market": {"symbols": ["EURUSD"], "timeframe": "1h"},
            "broker": {"name": "paper", "params": {"fee_bps": 0.2, "leverage": 30}},
            "data": {"name": "csv", "params": {"path": str(EURUSD), "end": end}},
            "risk": [{"name": "fixed-fractional", "params": {"risk_per_trade": 0.005}}],
            "capital": {"currency": "USD", "initial": 100_000},
        },
    }
    return assemble(parse_manifest(manifest), PluginRegistry.discover(), ROOT)


def test_a_continued_runs_figures_are_its_own(tmp_path: Path) -> None:
    """A restarted paper bot's run starts from the equity it took over and counts its own
    trades and fees: the runs' P&L adds up to the account's, and the run summary the journal
    keeps, the report read back from it and the trades journaled in the run agree."""
    path = tmp_path / "paper.sqlite"
    for end in ("2017-03-01", "2017-04-01"):  # the second run resumes after the first's bars
        journal = Journal(path, durable=True)
        try:
            BotSession(_paper_bot(end), journal).run_to_end()
        finally:
            journal.close()
    journal = Journal(path)
    try:
        first, second = journal.runs()
        ended_first = journal.equity_curve(first.run_id)[1][-1]
        ended_second = journal.equity_curve(second.run_id)[1][-1]
        assert journal.start_equity(first) == 100_000
        assert journal.start_equity(second) == ended_first != 100_000
        assert first.summary is not None and second.summary is not None
        assert second.summary["net_pnl"] == pytest.approx(ended_second - ended_first, abs=1e-6)
        assert first.summary["net_pnl"] + second.summary["net_pnl"] == pytest.approx(
            ended_second - 100_000, abs=1e-6
        )
        assert second.summary["trades"] == len(journal.trades(second.run_id)) > 0
        assert second.summary["fees"] == pytest.approx(journal.fees(second.run_id), rel=1e-9)
        for run in (first, second):
            assert run.summary is not None
            shown = build_report(from_journal(journal, run)).figures.as_json()
            assert shown == pytest.approx(run.summary, rel=1e-9, abs=1e-9)
    finally:
        journal.close()


def test_a_live_run_never_takes_over_a_paper_account(tmp_path: Path) -> None:
    """A paper bot switched to live in place (its journal kept) would hand the venue's account
    the simulated positions, cash and working orders: refused before anything is journaled
    or sent, naming spec.mode. Backtests in the journal are never carried, so they do not."""
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    paper = _paper_bot("2017-02-01")
    try:
        BotSession(paper, journal).run_to_end()
    finally:
        journal.close()
    live = _with_mode(_paper_bot("2017-02-01"), Mode.LIVE)
    journal = Journal(path, durable=True)
    try:
        with pytest.raises(SpecError) as refused:
            BotSession(live, journal).open()
        [error] = refused.value.errors
        assert error.field == "spec.mode" and "paper runs of continued" in error.message
        assert [run.mode for run in journal.runs()] == ["paper"]  # no live run was started
    finally:
        journal.close()
    backtests = tmp_path / "backtests.sqlite"
    journal = Journal(backtests, durable=True)
    try:
        BotSession(_with_mode(_paper_bot("2017-02-01"), Mode.BACKTEST), journal).run_to_end()
    finally:
        journal.close()
    journal = Journal(backtests, durable=True)
    try:
        assert journal.run_modes("continued") == frozenset({"backtest"})
        session = BotSession(_with_mode(_paper_bot("2017-02-01"), Mode.LIVE), journal)
        session.open()  # not refused: a backtest is never carried
        session.close("stopped")
    finally:
        journal.close()


def _with_mode(bot: Bot, mode: Mode) -> Bot:
    spec = bot.manifest.spec.model_copy(update={"mode": mode})
    return replace(bot, manifest=bot.manifest.model_copy(update={"spec": spec}))


def _with_capital(bot: Bot, currency: str, initial: float) -> Bot:
    spec = bot.manifest.spec
    capital = spec.capital.model_copy(update={"currency": currency, "initial": initial})
    spec = spec.model_copy(update={"capital": capital})
    return replace(bot, manifest=bot.manifest.model_copy(update={"spec": spec}))


def test_a_restart_on_other_capital_terms_is_refused_naming_the_field(tmp_path: Path) -> None:
    """The journal keeps the account in the currency and on the capital its runs were given:
    a spec.capital changed since would rebuild it on other terms without a word (a capital
    of 5,000 under positions bought on 100,000; USD figures read as EUR). Refused before
    anything is journaled; the same terms continue."""
    path = tmp_path / "paper.sqlite"
    journal = Journal(path, durable=True)
    try:
        BotSession(_paper_bot("2017-03-01"), journal).run_to_end()
    finally:
        journal.close()
    refusals = {
        ("USD", 5_000.0): (
            "spec.capital.initial",
            "5,000.00 USD, but the journal keeps continued's account on a capital of "
            "100,000.00 USD",
        ),
        ("EUR", 100_000.0): (
            "spec.capital.currency",
            "EUR, but the journal keeps continued's account in USD (its earlier runs)",
        ),
    }
    for (currency, initial), (field, message) in refusals.items():
        journal = Journal(path, durable=True)
        try:
            with pytest.raises(SpecError) as refused:
                BotSession(
                    _with_capital(_paper_bot("2017-04-01"), currency, initial), journal
                ).open()
            [error] = refused.value.errors
            assert error.field == field and error.message.startswith(message), error
            assert "give the bot a new journal" in error.message
            assert len(journal.runs()) == 1  # nothing journaled
        finally:
            journal.close()
    journal = Journal(path, durable=True)
    try:
        BotSession(_paper_bot("2017-04-01"), journal).run_to_end()  # the same terms continue
        assert len(journal.runs()) == 2
    finally:
        journal.close()


def test_a_journal_that_carries_nothing_takes_new_capital_terms(tmp_path: Path) -> None:
    """A run that left nothing (refused at its start: its capital above what the account
    holds, say) carries no account: the capital a person then corrects is taken."""
    path = tmp_path / "paper.sqlite"
    journal = Journal(path, durable=True)
    try:
        journal.start_run(
            run_id="refused",
            bot="continued",
            mode="paper",
            currency="USD",
            initial_capital=1_000_000.0,
            timeframe_s=3600,
            config_hash="x",
            manifest={},
        )
        journal.finish_run("failed", {"error": "refused at start"})
        session = BotSession(_paper_bot("2017-02-01"), journal)
        session.open()  # 100,000: not refused
        session.close("stopped")
    finally:
        journal.close()
