"""pre-trade's count of the day's entries is kept across a restart (``restores-state``), and a
kept state that is not what ``saved_state`` writes is left out, naming the field."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tradefleet_plugins.risk.pre_trade import STATE_VERSION, PreTrade, kept_entries
from tradefleet_plugins.risk.pre_trade_params import PreTradeParams


def test_the_saved_state_reads_back() -> None:
    lived = PreTrade(PreTradeParams(max_trades_per_day=3))
    lived._day, lived._entries_today = date(2024, 6, 10), 2
    restarted = PreTrade(PreTradeParams(max_trades_per_day=3))
    restarted.restore_state(lived.saved_state())
    assert (restarted._day, restarted._entries_today) == (date(2024, 6, 10), 2)
    assert kept_entries(PreTrade(PreTradeParams()).saved_state()) == (None, 0)


@pytest.mark.parametrize(
    ("state", "named"),
    [
        ({"version": 99, "day": "2024-06-10", "entries_today": 1}, "version"),
        ({"version": STATE_VERSION, "day": "2024-06-10", "entries_today": -1}, "entries_today"),
        ({"version": STATE_VERSION, "day": "2024-06-10", "entries_today": True}, "entries_today"),
        ({"version": STATE_VERSION, "day": "June", "entries_today": 1}, "day"),
    ],
)
def test_a_damaged_state_is_left_out_naming_the_field(
    state: dict[str, Any], named: str, caplog: pytest.LogCaptureFixture
) -> None:
    said = kept_entries(state)
    assert isinstance(said, str) and said.startswith(named)
    plugin = PreTrade(PreTradeParams(max_trades_per_day=1))
    plugin.restore_state(state)
    assert plugin._entries_today == 0 and named in caplog.text
