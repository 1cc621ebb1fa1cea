"""prop-firm's equity start of the first day after a restart over fills made while the bot was
down (``PropFirm._seen_before``): the equity last seen the day before, when higher, only when
every such fill falls on the new day — a stop before midnight is the old day's loss, and the
new day starts after it; one after midnight is the new day's, which starts before it.
"""

from __future__ import annotations

import pytest

from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.model import Fill, Side
from tradefleet_runtime.sdk.testing import risk_context

HOUR = 3600
DAY = 86_400
D = 1_700_000_000 // DAY * DAY + 3 * DAY  # a UTC midnight
SYMBOL = "BTCUSDT"
BEFORE = 50_000.0 - 12.5  # the account holding 0.5 BTC bought at 50,000
AFTER = BEFORE - 0.5 * 4_500.0 - 11.375  # once stopped out at 45,500


def _start_after(stop_ts: int) -> float:
    plugin = PropFirm(PropFirmParams(timezone="UTC", day_start_from="equity"))
    plugin.restore_equity([D + 21 * HOUR], [BEFORE])  # the last close the first run journaled
    stop = Fill("stop-1", SYMBOL, Side.SELL, 0.5, 45_500.0, 11.375, stop_ts, "t1")
    ctx = risk_context(
        SYMBOL,
        equity=AFTER,
        cash=AFTER,
        ts=D + 25 * HOUR,  # back two closes after midnight; marks already at the stop's price
        marks={SYMBOL: 45_500.0},
        fills_while_down=(stop,),
    )
    plugin.account_actions(ctx)
    return float(plugin.saved_state()["start_equity"])


def test_a_stop_after_midnight_while_down_is_the_new_days_loss() -> None:
    assert _start_after(D + 24 * HOUR + 1800) == pytest.approx(BEFORE)


def test_a_stop_before_midnight_while_down_is_the_old_days_loss() -> None:
    assert _start_after(D + 23 * HOUR + 1800) == pytest.approx(AFTER, abs=20.0)
