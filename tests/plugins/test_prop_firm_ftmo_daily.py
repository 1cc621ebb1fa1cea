"""prop-firm's daily limit as FTMO states it (FTMO Academy, "Maximum Daily Loss"): equity,
floating P&L included, may at no moment fall below

    the account balance at midnight CE(S)T  -  max_daily_loss x the initial capital

which both presets (``ftmo-2step``, ``ftmo-1step``) follow. It differs from a share of the day's
starting equity in two ways, each of which lost a challenge the plugin approved:

1. a position carried over midnight at a floating loss lowers the equity but not the balance:
   2,000 floating at midnight put the equity-based floor 1,900 below FTMO's (93,100 on 95,000);
2. on an account in profit the allowance is a share of the initial capital, not of the day:
   at 120,000 FTMO allows 5,000, 5% of the day 6,000.

The old basis stays available, explicitly (``daily_loss_of: day_start``, ``day_start_from:
equity``), as does the higher of balance and equity some firms start the day from.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.runtime.helpers import HOUR, T0, Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tests.runtime.test_risk_prop_firm import moves, orders
from tradefleet_plugins.risk.prop_firm import Limits, PropFirm, booked, floors
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_plugins.risk.rules import trading_day
from tradefleet_runtime.accounting import apply_fill
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Instrument,
    OrderIntent,
    Position,
    RiskAction,
    Side,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import ActionKind
from tradefleet_runtime.session import BotSession

INITIAL = 100_000.0
# Midnight CEST between 2024-06-11 and 2024-06-12 (22:00 UTC): FTMO's day boundary.
MIDNIGHT = int(datetime(2024, 6, 11, 22, 0, tzinfo=UTC).timestamp())

# 200,000 EURUSD bought at 1.1000 (2 lots), its stop at 1.0780: 20 USD a pip.
EURUSD = {"EURUSD": Position("EURUSD", 200_000.0, 1.1000)}
EURUSD_STOP: dict[str, tuple[tuple[float, float], ...]] = {"EURUSD": ((200_000.0, 1.0780),)}
OLD_BASIS = {"daily_loss_of": "day_start", "day_start_from": "equity"}
NO_COSTS = {"fee_bps": 0.0, "slippage_bps": 0.0}


def ctx(
    ts: int,
    equity: float,
    positions: dict[str, Position],
    marks: dict[str, float],
    stops: dict[str, tuple[tuple[float, float], ...]] | None = None,
) -> RiskContext:
    """The snapshot the engine builds: its cash is equity less the positions' value (its
    accounting); the balance is equity less the floating P&L (quantity x (mark - price))."""
    held = sum(p.quantity * marks[s] for s, p in positions.items())
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity - held,
        start_of_day_equity=equity,
        peak_equity=max(equity, INITIAL),
        positions=positions,
        marks=marks,
        instrument=Instrument("XAUUSD"),
        stops=stops or {},
        initial_equity=INITIAL,
    )


def ftmo_floor(balance_at_midnight: float) -> float:
    return balance_at_midnight - 0.05 * INITIAL


def carried_over_midnight(params: PropFirmParams | None = None) -> PropFirm:
    """The plugin after the bar closes of 23:00 and midnight: the EURUSD long is 100 pips down
    at midnight (equity 98,000; balance still 100,000: nothing closed)."""
    plugin = PropFirm(params or PropFirmParams())
    plugin.account_actions(ctx(MIDNIGHT - HOUR, 99_000.0, EURUSD, {"EURUSD": 1.0950}, EURUSD_STOP))
    plugin.account_actions(ctx(MIDNIGHT, 98_000.0, EURUSD, {"EURUSD": 1.0900}, EURUSD_STOP))
    return plugin


GOLD = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2290.0)  # 10 x 100 oz = 1,000
AFTER_MIDNIGHT = ctx(
    MIDNIGHT + HOUR, 98_000.0, EURUSD, {"EURUSD": 1.0900, "XAUUSD": 2300.0}, EURUSD_STOP
)


def test_an_entry_whose_stops_take_equity_below_ftmos_daily_floor_is_vetoed() -> None:
    """FTMO's floor today: 100,000 - 5,000 = 95,000. The EURUSD stop may still lose 2,400
    (120 pips x 20), the XAUUSD entry 1,000 (100 oz x 10): with every stop hit equity ends at
    98,000 - 3,400 = 94,600 before any cost (about 94,100 with the plugin's assumed costs),
    below FTMO's floor. On the day's starting equity the floor is 98,000 x 0.95 = 93,100,
    which approves the entry."""
    every_stop_hit = 98_000.0 - 200_000 * (1.0900 - 1.0780) - 100 * (2300.0 - 2290.0)
    assert every_stop_hit < ftmo_floor(INITIAL)  # the premise: 94,600 < 95,000
    decision = carried_over_midnight().check(GOLD, AFTER_MIDNIGHT)
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")
    assert "daily loss floor 95,000.00" in decision.reason
    old = carried_over_midnight(PropFirmParams(**OLD_BASIS)).check(GOLD, AFTER_MIDNIGHT)
    assert old.action is RiskAction.APPROVE  # the old basis, still there when asked for


def test_the_flatten_comes_before_ftmos_daily_floor_when_a_loss_was_carried_over() -> None:
    """``flatten_at`` 0.8: flatten once the day's loss reaches 80% of its limit. FTMO counts
    the day's loss from the midnight balance (100,000): at equity 95,900 it is 4,100, 82% of the
    5,000 allowed, and the EURUSD stop (still 60 pips off) would take it to 94,700, past the
    limit. From the midnight equity (98,000) it is 2,100 of 4,900 (43%): nothing."""
    now = ctx(MIDNIGHT + HOUR, 95_900.0, EURUSD, {"EURUSD": 1.0795}, EURUSD_STOP)
    actions = carried_over_midnight().account_actions(now)
    assert [a.kind for a in actions] == [ActionKind.CANCEL_ENTRIES, ActionKind.FLATTEN]
    assert "the day's loss 4,100.00 reached 80% of the 5,000.00 daily limit" in actions[0].reason
    assert carried_over_midnight(PropFirmParams(**OLD_BASIS)).account_actions(now) == []


def test_the_daily_allowance_is_five_percent_of_the_initial_capital_not_of_the_day() -> None:
    """A funded account (no profit target) at 120,000, flat, at midnight: FTMO's floor is
    120,000 - 5,000 = 115,000; 5% of the day's start would be 114,000. An XAUUSD entry whose
    stop loses 5,200 (before costs) ends below FTMO's floor."""
    plugin = PropFirm(PropFirmParams(profit_target=0))
    flat: dict[str, Position] = {}
    plugin.account_actions(ctx(MIDNIGHT, 120_000.0, flat, {"XAUUSD": 2300.0}))
    gold = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2248.0)  # 52 x 100 oz = 5,200
    now = ctx(MIDNIGHT + HOUR, 120_000.0, flat, {"XAUUSD": 2300.0})
    assert ftmo_floor(120_000.0) > 120_000.0 - 5_200.0
    decision = plugin.check(gold, now)
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")
    assert "daily loss floor 115,000.00" in decision.reason


def test_open_positions_are_cut_to_ftmos_floor() -> None:
    """The EURUSD long seen first at midnight (a bot started then), 2,000 down, its stop 170
    pips off: every stop hit leaves 98,000 - 3,400 = 94,600, below FTMO's 95,000 (the equity
    basis' 93,100 has room). A cut of 400 / 3,400 of the position brings the worst case to the
    floor."""
    stop = {"EURUSD": ((200_000.0, 1.0730),)}
    midnight = ctx(MIDNIGHT, 98_000.0, EURUSD, {"EURUSD": 1.0900}, stop)
    actions = PropFirm(PropFirmParams(**NO_COSTS)).account_actions(midnight)
    assert [a.kind for a in actions] == [ActionKind.REDUCE]
    assert actions[0].fraction == pytest.approx(400 / 3_400, rel=1e-4)
    assert "daily loss floor" in actions[0].reason
    assert PropFirm(PropFirmParams(**NO_COSTS, **OLD_BASIS)).account_actions(midnight) == []


# -- the params ----------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["ftmo-2step", "ftmo-1step"])
def test_the_presets_measure_the_day_as_ftmo_and_a_manifest_may_say_otherwise(preset: str) -> None:
    ftmo = PropFirmParams(preset=preset)  # type: ignore[arg-type]
    assert (ftmo.daily_loss_base(), ftmo.day_start_basis()) == ("initial", "balance")
    assert Limits.of(ftmo).of_initial is True
    own = PropFirmParams(preset=preset, **OLD_BASIS)  # type: ignore[arg-type]
    assert (own.daily_loss_base(), own.day_start_basis()) == ("day_start", "equity")
    assert Limits.of(own).of_initial is False


def test_the_floor_on_each_basis() -> None:
    ftmo = Limits.of(PropFirmParams())
    old = Limits.of(PropFirmParams(**OLD_BASIS))
    assert floors(120_000.0, INITIAL, ftmo) == (115_000.0, "daily_loss")
    assert floors(120_000.0, INITIAL, old) == pytest.approx((114_000.0, "daily_loss"))
    # The total floor (90,000) binds once the day starts below 95,000 on FTMO's basis.
    assert floors(94_000.0, INITIAL, ftmo) == (90_000.0, "total_loss")


def test_an_unknown_basis_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="day_start_from"):
        PropFirmParams(day_start_from="close")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="daily_loss_of"):
        PropFirmParams(daily_loss_of="peak")  # type: ignore[arg-type]


def test_the_higher_of_balance_and_equity() -> None:
    """``day_start_from: higher``: a position carried at a floating profit starts the day from
    the equity (101,000), one at a floating loss from the balance (100,000)."""
    up = {"EURUSD": 1.1050}  # +1,000 floating
    plugin = PropFirm(PropFirmParams(day_start_from="higher"))
    plugin.account_actions(ctx(MIDNIGHT - HOUR, 100_000.0, EURUSD, {"EURUSD": 1.1000}))
    plugin.account_actions(ctx(MIDNIGHT, 101_000.0, EURUSD, up))
    assert plugin._day_start == pytest.approx(101_000.0)
    loss = PropFirm(PropFirmParams(day_start_from="higher"))
    loss.account_actions(ctx(MIDNIGHT - HOUR, 100_000.0, EURUSD, {"EURUSD": 1.1000}))
    loss.account_actions(ctx(MIDNIGHT, 98_000.0, EURUSD, {"EURUSD": 1.0900}))
    assert loss._day_start == pytest.approx(100_000.0)


# -- the day's start balance, call by call ----------------------------------------------------


def fill(symbol: str, side: Side, quantity: float, price: float, ts: int, fee: float = 0.0) -> Fill:
    return Fill("o1", symbol, side, quantity, price, fee, ts, "f1", "stop_loss")


def test_booked_is_the_realised_pnl_less_fees_before_and_after_the_close() -> None:
    before = {"X": Position("X", 100, 100.0)}
    fills = [
        fill("X", Side.BUY, 100, 102.0, MIDNIGHT - 60, fee=1.0),  # adds: books the fee
        fill("X", Side.SELL, 200, 90.0, MIDNIGHT + 30, fee=5.0),  # closes 200 from 101
    ]
    assert booked(before, fills, MIDNIGHT) == pytest.approx((-1.0, 200 * (90 - 101) - 5))
    assert before["X"].quantity == 100  # netted into copies


def test_a_stop_filled_after_the_boundary_does_not_lower_the_days_start_balance() -> None:
    """X (100 at 100) is carried at 95, Y (200 at 100) at 100: equity 99,500, balance 100,000.
    X's stop fills at 90 just after midnight (loss 1,000 and a 5 fee), reported before the
    midnight bar is handled: the equity the plugin first sees is 98,495, its balance 98,995;
    the day's start is the midnight balance, 100,000 (the stop's loss is the new day's)."""
    plugin = PropFirm(PropFirmParams())  # MIDNIGHT is Prague's
    held = {"X": Position("X", 100, 100.0), "Y": Position("Y", 200, 100.0)}
    plugin.account_actions(ctx(MIDNIGHT - HOUR, 99_500.0, held, {"X": 95.0, "Y": 100.0}))
    plugin.on_fill(fill("X", Side.SELL, 100, 90.0, MIDNIGHT + 30, fee=5.0))
    y_only = {"Y": Position("Y", 200, 100.0)}
    plugin.account_actions(ctx(MIDNIGHT, 98_995.0, y_only, {"X": 90.0, "Y": 100.0}))
    assert plugin._day_start == pytest.approx(100_000.0)
    # Y's close moves the equity, not the balance; a fill before the close (a fee) does.
    plugin.on_fill(fill("Y", Side.BUY, 100, 100.5, MIDNIGHT - HOUR, fee=1.0))
    y_more = {"Y": Position("Y", 300, (200 * 100 + 100 * 100.5) / 300)}
    plugin.account_actions(ctx(MIDNIGHT, 98_995 + 200 + 50 - 1, y_more, {"X": 90.0, "Y": 101.0}))
    assert plugin._day_start == pytest.approx(99_999.0)
    plugin.account_actions(ctx(MIDNIGHT + HOUR, 90_000.0, y_more, {"X": 90.0, "Y": 70.0}))
    assert plugin._day_start == pytest.approx(99_999.0)  # a later close settles it


def test_the_days_start_balance_at_a_several_symbol_close(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """Through the engine: CCC (2,000 at 100, stopped at 99) closes the day 0.50 up on the
    last of the midnight close's three bars: equity 101,000, balance 100,000, FTMO's floor
    95,000. An AAA entry whose stop takes the worst case to 95,000 exactly is let through;
    one more unit is not."""
    symbols = ("AAA", "BBB", "CCC")

    def at(t: int, symbol: str) -> int:
        return 3 * t + symbols.index(symbol)

    strategy = Scripted(
        {
            at(0, "CCC"): lambda c, b: c.buy("CCC", 2000, stop_loss=99.0),
            # 101,000 - 3,000 (CCC to 99) - 3,000 = 95,000: on the floor.
            at(25, "AAA"): lambda c, b: c.submit(
                OrderIntent("AAA", Side.BUY, 3000, stop_loss=99.0)
            ),
            at(26, "BBB"): lambda c, b: c.submit(OrderIntent("BBB", Side.BUY, 1, stop_loss=99.0)),
        }
    )
    flat = [100.0] * 30
    prices = {"AAA": flat, "BBB": flat, "CCC": [100.0] * 23 + [100.5] * 7}
    bars = sorted((b for s in symbols for b in flat_bars(prices[s], symbol=s)), key=lambda b: b.ts)
    risk = [{"name": "prop-firm", "params": {"timezone": "UTC", **NO_COSTS}}]
    document = manifest(risk, symbols=symbols, capital=INITIAL, leverage=100.0)
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(bars)
    decisions = engine.journal.query(
        "SELECT symbol, action, reason FROM risk_decisions WHERE plugin = 'prop-firm' ORDER BY id"
    )
    assert [(symbol, action) for symbol, action, _ in decisions] == [
        ("CCC", "approve"),
        ("AAA", "approve"),
        ("BBB", "veto"),
    ]
    assert "daily loss floor 95,000.00" in decisions[2][2]


# -- property: with the broker's costs within the allowance, no day passes FTMO's floor -------


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


DAY0 = 1_711_753_200  # 2024-03-29 23:00 UTC: midnight in Prague, two days before DST starts


def balances_at(fills: list[Fill], stamps: list[int]) -> list[float]:
    """The balance (initial, plus realised P&L, less fees) at each bar close of ``stamps``: a
    snapshot holds the fills made before its close (those at it fill at the next bar)."""
    positions: dict[str, Position] = {}
    balance, i, out = INITIAL, 0, []
    for ts in stamps:
        while i < len(fills) and fills[i].ts < ts:
            f = fills[i]
            position = positions.setdefault(f.symbol, Position(f.symbol))
            balance += apply_fill(position, f).realized_pnl - f.fee
            i += 1
        out.append(balance)
    return out


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    # The same examples every run: a random one found the defect pinned below, and a suite
    # must not pass or fail by chance.
    derandomize=True,
)
@given(orders=orders, moves=moves)
# A long carried over midnight 3,750 down; the next day's entry fits the equity basis' floor
# (91,295) and not FTMO's (94,850): let through, both stopped, the day ended at 91,711.
@example(
    orders={18: (Side.BUY, 1500.0, 0.03), 25: (Side.BUY, 1500.0, 0.02)},
    moves=[0.0] * 18 + [-0.005] * 5 + [0.0] * 2 + [-0.01] * 6 + [0.0] * 65,
)
def test_no_day_ends_below_ftmos_floor_with_the_brokers_costs_within_the_allowance(
    registry: PluginRegistry,
    tmp_path: Path,
    orders: dict[int, tuple[Side, float, float]],
    moves: list[float],
) -> None:
    """The preset (FTMO's basis) on a paper broker charging the default allowance: stops
    honoured (the bars move without gaps), no bar closes below the day's midnight balance less
    5% of the initial capital, nor below 90% of it."""
    for ts, equity, floor in day_by_day(registry, tmp_path, orders, moves, {}):
        assert equity >= floor - 1e-6, (ts, floor, equity)
        assert equity >= INITIAL * 0.90 - 1e-6


def day_by_day(
    registry: PluginRegistry,
    tmp_path: Path,
    orders: dict[int, tuple[Side, float, float]],
    moves: list[float],
    params: dict[str, object],
) -> list[tuple[int, float, float]]:
    """Backtest the drawn days with prop-firm's ``params``: (bar close, equity, FTMO's daily
    floor) at every bar close."""
    prices = [100.0]
    for move in moves:
        prices.append(prices[-1] * (1 + move))
    bars = [
        Bar("TEST", 3600, DAY0 + i * 3600, b.open, b.high, b.low, b.close, 1.0)
        for i, b in enumerate(flat_bars(prices))
    ]

    def order(side: Side, quantity: float, distance: float):  # type: ignore[no-untyped-def]
        def act(context, bar):  # type: ignore[no-untyped-def]
            stop = bar.close * (1 - distance if side is Side.BUY else 1 + distance)
            context.submit(OrderIntent("TEST", side, quantity, stop_loss=stop))

        return act

    strategy = Scripted({i: order(*o) for i, o in orders.items()})
    risk = [{"name": "prop-firm", "params": params}]
    document = manifest(risk, capital=INITIAL, leverage=100.0)
    document["spec"]["broker"]["params"] = {"fee_bps": 10.0, "slippage_bps": 5.0, "leverage": 100}
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(bars)
    result = engine.finish()
    fills = [
        Fill("o", str(s), Side(side), q, p, fee, ts, "f", "")
        for s, side, q, p, fee, ts in engine.journal.query(
            "SELECT symbol, side, quantity, price, fee, ts FROM fills ORDER BY rowid"
        )
    ]
    stamps = list(result.equity_ts)
    day_start: dict[date, float] = {}
    rows = []
    for ts, equity, balance in zip(stamps, result.equity, balances_at(fills, stamps), strict=True):
        start = day_start.setdefault(trading_day(ts, "Europe/Prague"), balance)
        rows.append((ts, equity, start - 0.05 * INITIAL))
    return rows


# -- restarts ---------------------------------------------------------------------------------


def test_a_restart_keeps_the_days_start_balance_through_the_journal(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """A paper bot holds 1,000 bought at 100, stopped at 96, and the price is 98 at midnight
    (UTC days): equity 98,000, balance 100,000, FTMO's floor 95,000. Restarted and shown one
    more bar at 98, the plugin rebuilt from the journal decides as the one that lived: an entry
    of 750 stopped 4 below the mark takes the worst case to 98,000 - 2,000 - 3,000 = 93,000,
    vetoed on the 95,000 floor. The journaled equity holds no floating P&L: rebuilt from it
    alone, the day started at 98,000, its floor 93,000, and the entry was let through."""
    document = manifest(
        [{"name": "prop-firm", "params": {"timezone": "UTC", **NO_COSTS}}],
        mode="paper",
        capital=INITIAL,
        leverage=100.0,
    )
    document["spec"]["broker"]["params"] = {"fee_bps": 0.0, "slippage_bps": 0.0, "leverage": 100}
    # Bar 23 closes at midnight (T0 + 24h): the second day's first close.
    prices = [100.0] * 20 + [99.0, 98.5, 98.0, 98.0, 98.0, 98.0]
    opener = Scripted({0: lambda c, b: c.buy("TEST", 1000, stop_loss=96.0)})
    entry = OrderIntent("TEST", Side.BUY, 750, stop_loss=94.0)
    path = tmp_path / "journal.sqlite"
    journal = Journal(path, durable=True)
    first = BotSession(
        bot_with(registry, document, opener, tmp_path), journal, bars=flat_bars(prices)
    )
    first.run_to_end()
    assert first.engine is not None
    lived = first.bot.risk[0][1]
    now = first.engine._risk_context("TEST")
    assert now.equity == pytest.approx(98_000.0) and now.ts > T0 + 24 * HOUR
    assert lived.check(entry, now).code == "daily_loss"  # type: ignore[attr-defined]
    journal.close()

    journal = Journal(path, durable=True)
    second = BotSession(
        bot_with(registry, document, Scripted(), tmp_path),
        journal,
        bars=flat_bars([*prices, 98.0]),
    )
    second.run_to_end()
    assert second.engine is not None
    restarted = second.bot.risk[0][1]
    now = second.engine._risk_context("TEST")
    assert now.equity == pytest.approx(98_000.0) and now.ts == T0 + 27 * HOUR
    decision = restarted.check(entry, now)  # type: ignore[attr-defined]
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")
    assert "daily loss floor 95,000.00" in decision.reason
    restored = journal.query("SELECT data FROM events WHERE kind = 'plugin_state_restored'")
    assert len(restored) == 1 and "prop-firm" in restored[0][0]
    journal.close()


def test_restored_state_of_the_journaled_day_gives_its_balance_and_block() -> None:
    """``restore_equity`` sees only equity: the day's start is the midnight equity (98,000)
    until the state the plugin journaled gives the balance (100,000); with it, the lowest
    equity journaled since (95,900: 4,100 of the 5,000) blocks the day."""
    stamps = [MIDNIGHT - HOUR, MIDNIGHT, MIDNIGHT + HOUR]
    lived = carried_over_midnight()
    state = lived.saved_state()
    assert state["day"] == "2024-06-12" and state["start_balance"] == pytest.approx(INITIAL)
    restored = PropFirm(PropFirmParams())
    restored.restore_equity(stamps, [99_000.0, 98_000.0, 95_900.0])
    assert restored._day_start == 98_000.0  # equity alone: a journal of an older release
    restored.restore_state(state)
    assert restored._day_start == pytest.approx(INITIAL)
    now = ctx(MIDNIGHT + 2 * HOUR, 96_500.0, {}, {"XAUUSD": 2300.0})
    assert restored.check(GOLD, now).code == "daily_loss"
    assert "no entries until the next trading day" in restored.check(GOLD, now).reason


def test_a_state_of_an_earlier_day_is_not_taken_and_a_damaged_one_is_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stamps = [MIDNIGHT + HOUR + 86_400]  # the journaled equity ends a day later
    earlier = carried_over_midnight().saved_state()
    restored = PropFirm(PropFirmParams())
    restored.restore_equity(stamps, [97_000.0])
    restored.restore_state(earlier)
    assert restored._day_start == 97_000.0
    for damaged, named in (
        ({**earlier, "start_balance": "x"}, "start_balance"),
        ({**earlier, "day": "Tuesday"}, "day"),
        ({**earlier, "version": 99}, "version"),
    ):
        plugin = PropFirm(PropFirmParams())
        plugin.restore_equity(stamps, [97_000.0])
        plugin.restore_state(damaged)
        assert plugin._day_start == 97_000.0
        assert named in caplog.text


def test_two_shorts_stopped_on_a_turn_end_no_day_below_ftmos_floor(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """The case the property above found (a random example): the same rule, pinned. The
    second short (924 at 97.63, stop 98.44) nets the position at 99.47; its stop books 813
    (the 98.44 stop against that average, less fees) and raises the next midnight's balance
    to 100,372.40, while the 3,508 left still risk their stop at 100.78: every stop hit, with
    costs, left 95,226, inside the day's floor (94,649) and below the next day's (95,372.40).
    The flatten at that day's first close then cost 530.30 with 529.47 of room. Checked
    against the next day's floor too, the second short is vetoed."""
    step, turn = 0.0078125, 0.01171875
    orders = {0: (Side.SELL, 3508.0, step), 52: (Side.SELL, 924.0, step)}
    moves = (
        [0.0] * 49
        + [-step] * 3
        + [0.0] * 9
        + [step, step, turn, -step, -step, step, step, -step, turn]
        + [0.0] * 26
    )
    for ts, equity, floor in day_by_day(registry, tmp_path, orders, moves, {}):
        assert equity >= floor - 1e-6, (ts, floor, equity)
        assert equity >= INITIAL * 0.90 - 1e-6
