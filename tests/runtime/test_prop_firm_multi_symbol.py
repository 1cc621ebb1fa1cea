"""prop-firm with several symbols: a bar close comes as one bar per symbol, each followed by the
risk plugins' account actions, and the others are still marked at the close before while the
first one's bar is handled.

- A cut is asked once per close (a cut's orders fill at the next bar): asked again at every
  symbol's bar, three symbols cut three times what the floor needed.
- The day's start is the equity at its first close with every symbol marked at it (what the
  engine journals), not at the first symbol's bar: a start too low lowered the day's floor.

These run on the day's starting equity (``daily_loss_of: day_start``, ``day_start_from:
equity``), whose start follows the marks of the close; FTMO's basis (the presets'), the balance,
moves with fills alone: tests/plugins/test_prop_firm_ftmo_daily.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import HOUR, T0, Scripted, flat_bars
from tests.runtime.risk_helpers import bot_with, manifest, open_session
from tradefleet_plugins.risk.prop_firm import PropFirm, still_to_cut
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Instrument,
    OrderIntent,
    Position,
    Side,
)
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import ActionKind

SYMBOLS = ("AAA", "BBB", "CCC")
MIDNIGHT = T0 + 24 * HOUR  # the close of the day's last hourly bar (UTC days)
# Without fill costs: the arithmetic here is the cut's (test_prop_firm_costs.py has costs).
NO_COSTS = {"fee_bps": 0.0, "slippage_bps": 0.0}
DAY_START_EQUITY = {"daily_loss_of": "day_start", "day_start_from": "equity"}
UTC_DAY = PropFirmParams(timezone="UTC", **NO_COSTS, **DAY_START_EQUITY)


@pytest.fixture(scope="module")
def registry() -> PluginRegistry:
    return PluginRegistry.discover()


def three_symbol_bars(prices: dict[str, list[float]]) -> list[Bar]:
    """Each close as one bar per symbol, AAA first (the engine's order within a timestamp)."""
    bars = [b for symbol in SYMBOLS for b in flat_bars(prices[symbol], symbol=symbol)]
    return sorted(bars, key=lambda b: b.ts)  # stable: AAA, BBB, CCC within a close


def at(t: int, symbol: str) -> int:
    """The Scripted index of ``symbol``'s bar at hour ``t``."""
    return 3 * t + SYMBOLS.index(symbol)


def run(registry: PluginRegistry, tmp_path: Path, strategy: Scripted, bars: list[Bar]):  # type: ignore[no-untyped-def]
    document = manifest(
        [{"name": "prop-firm", "params": {"timezone": "UTC", **NO_COSTS, **DAY_START_EQUITY}}],
        symbols=SYMBOLS,
        capital=100_000.0,
        leverage=100.0,
    )
    session = open_session(bot_with(registry, document, strategy, tmp_path))
    engine = session.engine
    assert engine is not None
    engine.run(bars)
    return engine, engine.finish()


def test_a_new_days_cut_is_asked_once_per_close(registry: PluginRegistry, tmp_path: Path) -> None:
    """1,000 of each symbol, stopped at 98.5, risk 4,500 of the first day's 5,000. All three
    rise to 101: the next day starts at 103,000 (floor 97,850), and the 7,500 the stops may
    take must come down to the 5,150 of room: a cut of 31.33% of each. Asked at each of the
    three bars of that close (the first cut not filled yet), it closed 94% of every position."""

    def enter_all(context, bar):  # type: ignore[no-untyped-def]
        for symbol in SYMBOLS:
            context.buy(symbol, 1000, stop_loss=98.5)

    prices = [100.0] * 3 + [101.0] * 27
    strategy = Scripted({at(0, "CCC"): enter_all})
    engine, _ = run(registry, tmp_path, strategy, three_symbol_bars(dict.fromkeys(SYMBOLS, prices)))
    share = 1 - 5_150 / 7_500
    cuts = engine.journal.query(
        "SELECT ts, message FROM events WHERE kind = 'risk_action' ORDER BY id"
    )
    assert [ts for ts, _ in cuts] == [MIDNIGHT]
    assert f"reduce {share:.2%}" in cuts[0][1]
    for symbol in SYMBOLS:
        cut = sum(
            f.quantity for f in strategy.fills if f.symbol == symbol and "prop-firm" in f.reason
        )
        assert cut == pytest.approx(1000 * share, rel=1e-5)
        held = engine.portfolio.open_positions[symbol].quantity
        assert held == pytest.approx(1000 * (1 - share), rel=1e-5)


def test_the_days_start_is_the_midnight_equity_with_every_symbol_marked(
    registry: PluginRegistry, tmp_path: Path
) -> None:
    """CCC (2,000 held, stopped at 99) closes the day 0.50 up, on the last of the midnight
    close's three bars: the day starts at 101,000, its floor 95,950. Taken at AAA's bar (CCC
    still at 100) it started at 100,000 and let through an entry whose stop took the day to
    95,500. Entries that end exactly within the right floor still pass."""
    strategy = Scripted(
        {
            at(0, "CCC"): lambda c, b: c.buy("CCC", 2000, stop_loss=99.0),
            at(25, "AAA"): lambda c, b: c.submit(
                OrderIntent("AAA", Side.BUY, 2500, stop_loss=99.0)
            ),
            at(26, "BBB"): lambda c, b: c.submit(
                OrderIntent("BBB", Side.BUY, 2000, stop_loss=99.0)
            ),
        }
    )
    flat = [100.0] * 30
    prices = {"AAA": flat, "BBB": flat, "CCC": [100.0] * 23 + [100.5] * 7}
    engine, result = run(registry, tmp_path, strategy, three_symbol_bars(prices))
    midnight = dict(zip(result.equity_ts, result.equity, strict=True))[MIDNIGHT]
    assert midnight == pytest.approx(101_000)
    decisions = engine.journal.query(
        "SELECT symbol, action, reason FROM risk_decisions WHERE plugin = 'prop-firm' ORDER BY id"
    )
    assert [(symbol, action) for symbol, action, _ in decisions] == [
        ("CCC", "approve"),
        ("AAA", "veto"),  # 101,000 - 3,000 - 2,500 = 95,500 < 95,950
        ("BBB", "approve"),  # 101,000 - 3,000 - 2,000 = 96,000
    ]
    assert f"daily loss floor {midnight * 0.95:,.2f}" in decisions[1][2]


# -- the rules, call by call (as a live bot's bars and venue events come) ---------------------


def ctx(
    ts: int,
    equity: float,
    positions: dict[str, Position],
    marks: dict[str, float],
    stops: dict[str, tuple[tuple[float, float], ...]] | None = None,
) -> RiskContext:
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity,
        start_of_day_equity=equity,
        peak_equity=equity,
        positions=positions,
        marks=marks,
        instrument=Instrument("X"),
        stops=stops or {},
        initial_equity=100_000.0,
    )


def fill(symbol: str, side: Side, quantity: float, price: float, ts: int, fee: float = 0.0) -> Fill:
    return Fill("o1", symbol, side, quantity, price, fee, ts, "f1", "stop_loss")


def test_still_to_cut() -> None:
    assert still_to_cut(0.3, 0.0) == 0.3
    assert still_to_cut(0.3, 0.3) == 0.0
    assert still_to_cut(0.2, 0.3) == 0.0  # a cut asked is never taken back
    assert still_to_cut(0.5, 0.3) == pytest.approx(0.2)


def test_within_one_close_only_what_was_not_asked_is_asked_and_a_later_close_asks_afresh() -> None:
    """X and Y, 1,500 each stopped 2.5 below 101 (7,500 at risk), the day started at 102,000:
    a third of the stops' reach (1 - 5,100 / 7,500) must go. The next bar of that close asks
    nothing more; Y's, whose close (101.5) widens the risk, asks only the difference. The next
    close, where the cut's orders fill, asks nothing; at the one after, the positions are what
    the fills left (unchanged here: the cut was refused) and the whole share is asked again."""
    plugin = PropFirm(UTC_DAY)
    held = {"X": Position("X", 1500, 100.0), "Y": Position("Y", 1500, 100.0)}
    stops: dict[str, tuple[tuple[float, float], ...]] = {
        "X": ((1500.0, 98.5),),
        "Y": ((1500.0, 98.5),),
    }
    marks = {"X": 101.0, "Y": 101.0}
    first = plugin.account_actions(ctx(MIDNIGHT, 102_000, held, marks, stops))  # day starts
    assert [a.kind for a in first] == [ActionKind.REDUCE]
    assert first[0].fraction == pytest.approx(1 - 5_100 / 7_500, rel=1e-5)
    assert plugin.account_actions(ctx(MIDNIGHT, 102_000, held, marks, stops)) == []
    # Y's bar of the same close: +750 to the equity and to the day's start, +750 of reach.
    wider = {"X": 101.0, "Y": 101.5}
    more = plugin.account_actions(ctx(MIDNIGHT, 102_750, held, wider, stops))
    needed = 1 - 102_750 * 0.05 / 8_250
    assert len(more) == 1
    assert more[0].fraction == pytest.approx(needed - first[0].fraction, rel=1e-4)
    assert "already asked at this bar close" in more[0].reason
    # The next close: the cut's orders fill at its bars, symbol by symbol; nothing is asked.
    assert plugin.account_actions(ctx(MIDNIGHT + HOUR, 102_750, held, wider, stops)) == []
    later = plugin.account_actions(ctx(MIDNIGHT + 2 * HOUR, 102_750, held, wider, stops))
    assert len(later) == 1 and later[0].fraction == pytest.approx(needed, rel=1e-5)


def test_the_days_start_follows_the_closes_marks_not_fills_after_it() -> None:
    """At the day's first close X's bar came first (Y still at its previous close, 100). A
    stop fill after the close (a live venue reports it between bars) is the new day's: its
    1,005 loss stays out of the start. Y's bar then brings Y's close (+200 on 200 held), and a
    fill made before the close (a bar's own) counts: it is the old day's."""
    plugin = PropFirm(UTC_DAY)
    marks = {"X": 100.0, "Y": 100.0}
    held = {"X": Position("X", 100, 100.0), "Y": Position("Y", 200, 100.0)}
    plugin.account_actions(ctx(MIDNIGHT - HOUR, 100_000, held, marks))
    plugin.account_actions(ctx(MIDNIGHT, 100_000, held, marks))
    assert plugin._day_start == 100_000
    plugin.on_fill(fill("X", Side.SELL, 100, 90.0, MIDNIGHT + 30, fee=5.0))
    y_only = {"Y": Position("Y", 200, 100.0)}
    plugin.account_actions(ctx(MIDNIGHT, 98_995, y_only, marks))
    assert plugin._day_start == pytest.approx(100_000)
    # Y's bar of the same close: 101 (+200), with 100 more bought at 100.5 during the bar.
    plugin.on_fill(fill("Y", Side.BUY, 100, 100.5, MIDNIGHT - HOUR, fee=1.0))
    y_more = {"Y": Position("Y", 300, 100.1667)}
    plugin.account_actions(ctx(MIDNIGHT, 98_995 + 200 + 50 - 1, y_more, {"X": 100.0, "Y": 101.0}))
    assert plugin._day_start == pytest.approx(100_000 + 200 + 50 - 1)
    # A later close settles it.
    plugin.account_actions(ctx(MIDNIGHT + HOUR, 90_000, y_more, {"X": 100.0, "Y": 95.0}))
    assert plugin._day_start == pytest.approx(100_249)


def test_a_restored_day_start_is_not_moved_by_a_bar_of_its_close_seen_again() -> None:
    """The journaled midnight equity has every symbol marked at the close; a bar of that close
    handled again after a restart (the others not in yet) must not move it."""
    plugin = PropFirm(UTC_DAY)
    plugin.restore_equity([MIDNIGHT - HOUR, MIDNIGHT], [99_000.0, 101_000.0])
    assert plugin._day_start == 101_000
    held = {"X": Position("X", 100, 100.0)}
    plugin.account_actions(ctx(MIDNIGHT, 100_000, held, {"X": 100.0}))
    plugin.account_actions(ctx(MIDNIGHT, 100_500, held, {"X": 105.0}))
    assert plugin._day_start == 101_000


def test_limits_below_one_percent_are_said_with_their_digits() -> None:
    """A 0.4% total limit read "0%" in the lock's reason (``:.0%``)."""
    from tradefleet_plugins.risk.prop_firm import _share

    assert [_share(v) for v in (0.05, 0.004, 0.8, 0.125, 1.0)] == [
        "5%",
        "0.4%",
        "80%",
        "12.5%",
        "100%",
    ]
