"""prop-firm's equity start of a day that begins over a fill made while
the bot was down (``RiskContext.fills_while_down``), on a bot of two symbols.

A day's first close comes as one bar per symbol; the first one's snapshot holds the other
symbols still marked at the close before. prop-firm's start follows the marks as the other
bars of that close come in (``_follow_close``), by the quantities it holds — the positions
less the fills it knows were made after the boundary. A fill made while down is left out of
the start priced at the first snapshot's marks (``equity_made``), but nothing follows it: the
start stays priced at the stale mark of its symbol.

BTCUSDT: 1.0 held from 50,000, marked 48,000 at the 23:00 close; at the midnight close ETHUSDT's
bar comes first, then BTCUSDT's at 50,000. At 00:30 of D+1, while the bot is down, the venue's
stop sells the 1.0 at 45,500: D+1 lost 4,500 (50,000 at its first close), 90% of the 5,000
allowance (5% of 100,000), past the 80% block. Started at the stale 48,000, D+1 has lost 2,500
(50%), and an entry is approved.
"""

from __future__ import annotations

from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.model import Fill, OrderIntent, RiskAction, Side
from tradefleet_runtime.sdk.testing import risk_context

HOUR = 3600
DAY = 86_400
D = 1_700_000_000 // DAY * DAY
INITIAL = 100_000.0
STOPPED = Fill("stop-1", "BTCUSDT", Side.SELL, 1.0, 45_500.0, 0.0, D + 24 * HOUR + 1800, "t1")
AFTER = INITIAL - 4_500.0  # the account at the restart: flat, the stop's loss booked


def _plugin() -> PropFirm:
    plugin = PropFirm(PropFirmParams(timezone="UTC", day_start_from="equity"))
    # The first life's journaled closes, D 21:00 to 23:00 (BTCUSDT 50,000 -> 48,000).
    plugin.restore_equity([D + 22 * HOUR, D + 23 * HOUR], [INITIAL, INITIAL - 2_000.0])
    return plugin


def _snapshot(symbol: str, btc_mark: float):  # type: ignore[no-untyped-def]
    ctx = risk_context(
        symbol,
        equity=AFTER,
        ts=D + 24 * HOUR,  # the midnight close
        marks={"BTCUSDT": btc_mark, "ETHUSDT": 2_000.0},
        fills_while_down=(STOPPED,),
    )
    return ctx._replace(initial_equity=INITIAL)


def _entry_after(first_bars: list[tuple[str, float]]) -> RiskAction:
    plugin = _plugin()
    for symbol, btc_mark in first_bars:
        plugin.account_actions(_snapshot(symbol, btc_mark))
    intent = OrderIntent("ETHUSDT", Side.BUY, 1.0, stop_loss=1_900.0)
    return plugin.check(intent, _snapshot("ETHUSDT", 50_000.0)).action


def test_one_symbols_close_blocks_the_entry() -> None:
    """The reference: the close seen once, every symbol marked at it."""
    assert _entry_after([("BTCUSDT", 50_000.0)]) is RiskAction.VETO


def test_the_close_seen_symbol_by_symbol_blocks_it_too() -> None:
    action = _entry_after([("ETHUSDT", 48_000.0), ("BTCUSDT", 50_000.0)])
    assert action is RiskAction.VETO, (
        f"entry {action.value}: D+1's start left the stop's fill out priced at BTCUSDT's "
        "23:00 mark (48,000), seen with ETHUSDT's bar first, and never followed BTCUSDT's own "
        "bar at the midnight close (50,000): 2,000 of the 4,500 lost while down are missing"
    )
