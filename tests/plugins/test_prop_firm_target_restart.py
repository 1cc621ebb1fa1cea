"""prop-firm keeps a passed challenge across a restart (``stop_at_target``: "Take no new entries
once the challenge is passed"; FTMO: once passed, passed).

A pass is FTMO's: the balance of closed positions at the target with none open, on the minimum
trading days (days a trade was opened). Four trades, one opened each day Monday to Thursday, end
flat at 110,500; a new position then gives 700 back (equity 109,800): every entry is still
refused ``target_reached``, by the plugin that lived through it and by one rebuilt from the
journal as the engine rebuilds it after a restart (``bind_trades`` with the closed trades,
``restore_equity`` with the journaled equity, ``restore_state`` with the state it journaled).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.runtime.helpers import Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Instrument, OrderIntent, Position, RiskAction, Side, Trade
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.session import BotSession

NOON = int(datetime(2024, 6, 10, 10, 0, tzinfo=UTC).timestamp())  # Monday noon in Prague
DAY, HOUR = 86_400, 3_600


def trade(day: int, pnl: float, hours: int = 1) -> Trade:
    """A EURUSD long opened at noon ``day`` days after Monday, held ``hours``."""
    entry = NOON + day * DAY
    return Trade("EURUSD", 1, 100_000.0, entry, entry + hours * HOUR, 1.08, 1.08, pnl, 0.0)


# One winning trade opened on each of four days (Mon-Thu): four trading days, 110,500 closed.
TRADES = [trade(0, 4_000.0), trade(1, 3_000.0), trade(2, 2_000.0), trade(3, 1_500.0)]
# After the last close a new EURUSD long, opened at 15:00 Thursday, gives 700 back.
REOPENED = NOON + 3 * DAY + 3 * HOUR
HELD = {"EURUSD": Position("EURUSD", 100_000.0, 1.0800, opened_ts=REOPENED)}
STOPS: dict[str, tuple[tuple[float, float], ...]] = {"EURUSD": ((100_000.0, 1.0750),)}
# The journaled equity, one snapshot an hour on Thursday from the last trade's close.
STAMPS = [NOON + 3 * DAY + h * HOUR for h in range(2, 6)]
PATH = [110_500.0, 110_500.0, 110_100.0, 109_800.0]
ENTRY = OrderIntent("XAUUSD", Side.BUY, 1.0, stop_loss=2290.0)


def ctx(ts: int, equity: float, positions: dict[str, Position] | None = None) -> RiskContext:
    """The engine's snapshot: cash pays for the positions (equity = cash + Σ quantity × mark)."""
    held = HELD if positions is None else positions
    mark = 1.08 + (equity - 110_500.0) / 100_000.0 if held else 1.08
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity - sum(p.quantity * mark for p in held.values()),
        start_of_day_equity=equity,
        peak_equity=max(PATH),
        positions=held,
        marks={"EURUSD": mark, "XAUUSD": 2300.0},
        instrument=Instrument("EURUSD"),
        stops=STOPS if held else {},
        initial_equity=100_000.0,
    )


def lived_through(trades: list[Trade]) -> PropFirm:
    """The plugin asked after each bar as the trades closed: flat at the first snapshot, the
    new position held from the second."""
    closed: list[Trade] = []
    plugin = PropFirm(PropFirmParams())
    plugin.bind_trades(closed)
    for i, (ts, equity) in enumerate(zip(STAMPS, PATH, strict=True)):
        closed[:] = [t for t in trades if t.exit_ts <= ts]
        plugin.account_actions(ctx(ts, equity, {} if i == 0 else None))
    return plugin


def test_a_restarted_prop_firm_still_refuses_entries_after_the_target_was_reached() -> None:
    now = ctx(STAMPS[-1] + HOUR // 2, PATH[-1])
    assert lived_through(TRADES).check(ENTRY, now).code == "target_reached"

    restarted = PropFirm(PropFirmParams())
    restarted.bind_trades(TRADES)  # the engine binds the journal's trades
    restarted.restore_equity(STAMPS, PATH)  # and replays the journaled equity
    decision = restarted.check(ENTRY, now)
    assert (decision.action, decision.code) == (RiskAction.VETO, "target_reached"), (
        f"after a restart the passed challenge trades again: {decision.action.value} "
        f"{decision.reason!r}; the closed trades left the account flat at 110,500 (target "
        "110,000) on the fourth trading day"
    )


def test_a_pass_between_two_calls_is_found_on_the_trades() -> None:
    """The last trade closed flat at 110,500 and the new position opened before the plugin
    was next asked: it never saw the account flat, the trades show it was."""
    plugin = PropFirm(PropFirmParams())
    plugin.bind_trades(TRADES)
    assert plugin.check(ENTRY, ctx(STAMPS[-1], PATH[-1])).code == "target_reached"
    # The new position opened before the last close (a reversal, say): never flat.
    early = {"EURUSD": Position("EURUSD", 100_000.0, 1.08, opened_ts=TRADES[-1].exit_ts)}
    held = PropFirm(PropFirmParams())
    held.bind_trades(TRADES)
    assert held.check(ENTRY, ctx(STAMPS[-1], PATH[-1], early)).action is RiskAction.APPROVE


def test_the_target_closed_before_the_minimum_trading_days_is_no_pass_after_a_restart() -> None:
    """Flat at 110,500 on Tuesday (two trading days of the four), then 109,800 closed by
    Thursday's trades: not passed, for the run that lived (its trades came as they closed) and
    for the restarted one, which counts the trading days there were when the balance was at
    the target, not those of the whole journal."""
    trades = [trade(0, 5_000.0), trade(1, 5_500.0), trade(2, -700.0), trade(3, 0.0)]
    stamps = [NOON + d * DAY + 2 * HOUR for d in range(1, 4)]
    balances = [110_500.0, 109_800.0, 109_800.0]
    now = ctx(stamps[-1] + HOUR, balances[-1], {})
    closed: list[Trade] = []
    lived = PropFirm(PropFirmParams())
    lived.bind_trades(closed)
    for ts, balance in zip(stamps, balances, strict=True):
        closed[:] = [t for t in trades if t.exit_ts <= ts]
        lived.account_actions(ctx(ts, balance, {}))
    assert lived.trading_days() == 4
    assert lived.check(ENTRY, now).action is RiskAction.APPROVE

    restarted = PropFirm(PropFirmParams())
    restarted.bind_trades(trades)
    restarted.restore_equity(stamps, balances)
    assert restarted.check(ENTRY, now).action is RiskAction.APPROVE


def test_a_pass_the_trades_no_longer_show_comes_back_from_the_state() -> None:
    """The state the plugin journaled says passed; restarted with it (and trades that do not
    show it) it still refuses entries."""
    state = lived_through(TRADES).saved_state()
    assert state["passed"] is True
    restarted = PropFirm(PropFirmParams())
    restarted.bind_trades([])
    restarted.restore_equity(STAMPS[-1:], PATH[-1:])
    restarted.restore_state(state)
    assert restarted.check(ENTRY, ctx(STAMPS[-1] + HOUR, PATH[-1])).code == "target_reached"


def test_a_restarted_paper_bot_keeps_its_pass(tmp_path: Path) -> None:
    """Through the session, as ``serve`` and ``run`` start a bot: 1,000 bought at 100 rise to
    111 and are closed (balance 111,000, past the 10% target; no minimum days); 1,000 bought
    again fall to 109. The restarted bot's prop-firm still refuses entries."""
    registry = PluginRegistry.discover()
    params = {"timezone": "UTC", "min_trading_days": 0, "fee_bps": 0.0, "slippage_bps": 0.0}
    params["stop_at_target"] = False  # the second buy must go through to test the restart
    document = manifest(
        [{"name": "prop-firm", "params": params}], mode="paper", capital=100_000.0, leverage=100.0
    )
    document["spec"]["broker"]["params"] = {"fee_bps": 0.0, "slippage_bps": 0.0, "leverage": 100}
    prices = [100.0, 100.0, 105.0, 111.0, 111.0, 111.0, 109.0, 109.0]
    opener = Scripted(
        {
            0: lambda c, b: c.buy("TEST", 1_000, stop_loss=96.0),
            3: lambda c, b: c.close("TEST"),
            # A stop within the next day's floor (111,000 - 5,000): one at 96 is vetoed.
            5: lambda c, b: c.buy("TEST", 1_000, stop_loss=107.0),
        }
    )
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    first = BotSession(
        bot_with(registry, document, opener, tmp_path), journal, bars=flat_bars(prices)
    )
    first.run_to_end()
    assert first.engine is not None
    entry = OrderIntent("TEST", Side.BUY, 1.0, stop_loss=108.0)
    now = first.engine._risk_context("TEST")
    assert now.positions["TEST"].quantity == 1_000
    assert now.equity == pytest.approx(109_000.0)  # below the target again, a position open
    lived = first.bot.risk[0][1]
    assert lived._passed  # type: ignore[attr-defined]
    journal.close()

    document["spec"]["risk"][0]["params"]["stop_at_target"] = True
    journal = Journal(path, durable=True)
    second = BotSession(bot_with(registry, document, Scripted(), tmp_path), journal, bars=[])
    second.open()
    assert second.engine is not None
    restarted = second.bot.risk[0][1]
    decision = restarted.check(entry, second.engine._risk_context("TEST"))
    assert (decision.action, decision.code) == (RiskAction.VETO, "target_reached")
    journal.close()


def test_equity_at_the_target_with_a_position_open_never_passed_a_paper_bot(
    tmp_path: Path,
) -> None:
    """1,000 bought at 100 rise to 111 (equity 111,000) and fall back to 109 without being
    closed: the closed balance never reached the target, no pass."""
    registry = PluginRegistry.discover()
    params = {"timezone": "UTC", "min_trading_days": 0, "fee_bps": 0.0, "slippage_bps": 0.0}
    document = manifest(
        [{"name": "prop-firm", "params": params}], mode="paper", capital=100_000.0, leverage=100.0
    )
    document["spec"]["broker"]["params"] = {"fee_bps": 0.0, "slippage_bps": 0.0, "leverage": 100}
    opener = Scripted({0: lambda c, b: c.buy("TEST", 1_000, stop_loss=96.0)})
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    prices = [100.0, 100.0, 105.0, 111.0, 109.0]
    session = BotSession(
        bot_with(registry, document, opener, tmp_path), journal, bars=flat_bars(prices)
    )
    session.run_to_end()
    assert session.engine is not None
    entry = OrderIntent("TEST", Side.BUY, 1.0, stop_loss=108.0)
    decision = session.bot.risk[0][1].check(entry, session.engine._risk_context("TEST"))
    assert decision.action is RiskAction.APPROVE
    journal.close()
