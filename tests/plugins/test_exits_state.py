"""``exits``' kept state (``restores-state``): what it writes, and what it takes back only for
the position it was kept for. The restart through a real bot is
``tests/runtime/test_plugin_state_restart.py``."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest

from tradefleet_plugins.risk.exits import Exits
from tradefleet_plugins.risk.exits_params import ExitsParams
from tradefleet_runtime.capabilities import ActionKind, StateRestorer
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Bar, Instrument, Position

SYMBOL = "BTCUSDT"
OPENED = 1_500_003_600  # the entry's fill time
HOUR = 3600


def _context(
    mark: float, opened_ts: int = OPENED, quantity: float = 1.0, stop: float = 45_000.0
) -> RiskContext:
    position = Position(SYMBOL, quantity, 50_000.0, opened_ts=opened_ts)
    return RiskContext(
        ts=opened_ts + 10 * HOUR,
        equity=100_000.0,
        cash=50_000.0,
        start_of_day_equity=100_000.0,
        peak_equity=100_000.0,
        positions={SYMBOL: position},
        marks={SYMBOL: mark},
        instrument=Instrument(SYMBOL),
        stops={SYMBOL: ((abs(quantity), stop),)},
    )


def _bar(ts: int, high: float, low: float, close: float) -> Bar:
    return Bar(SYMBOL, HOUR, ts, close, high, low, close, 1.0)


def _kept(best: float = 60_000.0, **entry: Any) -> dict[str, Any]:
    trade = {"opened_ts": OPENED, "direction": 1, "best": best, "armed": False, "asked_stop": None}
    return {"version": 1, "trades": {SYMBOL: {**trade, **entry}}}


def _exits(**params: Any) -> Exits:
    return Exits(ExitsParams(early_exit_fraction=0, **{"trailing_pct": 0.05, **params}))


def _flattens(exits: Exits, ctx: RiskContext) -> list[str]:
    return [a.code for a in exits.account_actions(ctx) if a.kind is ActionKind.FLATTEN]


def test_it_is_a_state_restorer_whose_state_is_json() -> None:
    exits = _exits(trailing_native=True, break_even_r=1)
    assert isinstance(exits, StateRestorer)
    exits.account_actions(_context(52_000.0))
    exits.on_bar(_bar(OPENED + 2 * HOUR, 60_000.0, 52_000.0, 59_000.0))
    exits.account_actions(_context(59_000.0, stop=57_000.0))
    state = exits.saved_state()
    assert json.loads(json.dumps(state, allow_nan=False)) == {
        "version": 1,
        "trades": {
            SYMBOL: {
                "opened_ts": OPENED,
                "direction": 1,
                "best": 60_000.0,
                "armed": True,
                "asked_stop": 49_400.0,  # at the entry; 57,000 is where the stop is already
            }
        },
    }


def test_the_kept_best_price_holds_the_trail_after_a_restart() -> None:
    """60,000 kept; the restart's first mark is 58,000: the trail stays at 57,000, where a
    fresh plugin would trail from 58,000 (55,100)."""
    fresh = _exits()
    assert _flattens(fresh, _context(58_000.0)) == []
    assert _flattens(fresh, _context(56_500.0)) == []  # 55,100: nothing

    restored = _exits()
    restored.restore_state(_kept())
    assert _flattens(restored, _context(58_000.0)) == []
    assert restored.saved_state()["trades"][SYMBOL]["best"] == 60_000.0
    assert _flattens(restored, _context(56_500.0)) == ["trailing"]


def test_a_position_reopened_while_down_does_not_inherit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Closed and reopened while the bot was down: another opening time. Its trail starts
    from its own entry and mark, not from the old trade's 60,000."""
    exits = _exits()
    exits.restore_state(_kept())
    reopened = OPENED + 5 * HOUR
    with caplog.at_level(logging.WARNING):
        assert _flattens(exits, _context(56_500.0, opened_ts=reopened)) == []
    assert exits.saved_state()["trades"][SYMBOL]["best"] == 56_500.0
    assert exits.saved_state()["trades"][SYMBOL]["opened_ts"] == reopened
    assert any("not taken" in r.getMessage() for r in caplog.records)


def test_a_position_flipped_while_down_does_not_inherit() -> None:
    exits = _exits()
    exits.restore_state(_kept())  # a long's 60,000
    assert _flattens(exits, _context(51_000.0, quantity=-1.0, stop=55_000.0)) == []
    assert exits.saved_state()["trades"][SYMBOL]["direction"] == -1
    assert exits.saved_state()["trades"][SYMBOL]["best"] == 50_000.0  # min(entry, mark)


def test_a_kept_trade_is_dropped_when_the_first_positions_do_not_hold_it() -> None:
    """Kept only until the positions are first seen: a later position of the same opening
    time (impossible, but) finds nothing kept."""
    exits = _exits()
    exits.restore_state(_kept())
    empty = _context(58_000.0)._replace(positions={}, stops={})
    assert exits.account_actions(empty) == []
    assert exits.saved_state()["trades"] == {}
    assert _flattens(exits, _context(56_500.0)) == []  # trails from 56,500


def test_bars_before_the_entry_shown_again_are_not_the_trade_s() -> None:
    """A restart shows warm-up bars again before the first bar: those from before the entry
    never were the trade's (the entry bar's included, as a running bot counts it); a bar
    after it is, before the positions are seen."""
    exits = _exits()
    exits.restore_state(_kept(best=55_000.0))
    exits.on_bar(_bar(OPENED - HOUR, 70_000.0, 49_000.0, 50_000.0))
    exits.on_bar(_bar(OPENED, 66_000.0, 49_000.0, 50_000.0))
    assert exits.saved_state()["trades"][SYMBOL]["best"] == 55_000.0
    exits.on_bar(_bar(OPENED + 6 * HOUR, 60_000.0, 57_000.0, 58_000.0))  # the first live bar
    assert exits.saved_state()["trades"][SYMBOL]["best"] == 60_000.0
    assert _flattens(exits, _context(56_900.0)) == ["trailing"]


def test_the_break_even_arm_is_kept() -> None:
    """Armed before the restart, at a best price the kept state no longer needs to show."""
    exits = _exits(trailing_pct=0, break_even_r=1)
    exits.restore_state(_kept(best=52_000.0, armed=True))
    assert _flattens(exits, _context(50_500.0)) == []
    assert _flattens(exits, _context(49_990.0)) == ["break_even"]
    fresh = _exits(trailing_pct=0, break_even_r=1)
    fresh.restore_state(_kept(best=52_000.0))
    assert _flattens(fresh, _context(50_500.0)) == []
    assert _flattens(fresh, _context(49_990.0)) == []  # 52,000 is not 1R (5,000) up


def test_an_arm_does_nothing_once_break_even_is_off() -> None:
    exits = _exits(trailing_pct=0)
    exits.restore_state(_kept(best=52_000.0, armed=True))
    assert _flattens(exits, _context(49_990.0)) == []


def test_the_native_trail_s_last_ask_is_kept() -> None:
    """A stop asked for at 57,000 and refused is not asked again after the restart until the
    best price moves."""
    exits = _exits(trailing_native=True)
    exits.restore_state(_kept(asked_stop=57_000.0))
    actions = exits.account_actions(_context(58_000.0, stop=45_000.0))
    assert [a.kind for a in actions] == []
    assert exits.saved_state()["trades"][SYMBOL]["asked_stop"] == 57_000.0
    fresh = _exits(trailing_native=True)
    fresh.restore_state(_kept())
    [move] = fresh.account_actions(_context(58_000.0, stop=45_000.0))
    assert move.kind is ActionKind.MOVE_STOP and move.price == pytest.approx(57_000.0)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"best": math.nan}, "best"),
        ({"best": "60000"}, "best"),
        ({"best": -1.0}, "best"),
        ({"best": True}, "best"),
        ({"opened_ts": 1.5}, "opened_ts"),
        ({"opened_ts": None}, "opened_ts"),
        ({"direction": 0}, "direction"),
        ({"direction": True}, "direction"),
        ({"armed": "yes"}, "armed"),
        ({"asked_stop": math.inf}, "asked_stop"),
    ],
)
def test_a_bad_kept_trade_is_left_out_with_a_warning_naming_it(
    entry: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    exits = _exits()
    with caplog.at_level(logging.WARNING):
        exits.restore_state(_kept(**entry))
    [said] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{SYMBOL}.{field}" in said
    assert exits.saved_state()["trades"] == {}
    assert _flattens(exits, _context(58_000.0)) == []  # a fresh trail, from 58,000
    assert exits.saved_state()["trades"][SYMBOL]["best"] == 58_000.0


@pytest.mark.parametrize(
    "state", [{}, {"version": 2, "trades": {}}, {"version": 1, "trades": []}, {"version": 1}]
)
def test_a_state_of_another_shape_is_ignored_with_a_warning(
    state: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    exits = _exits()
    with caplog.at_level(logging.WARNING):
        exits.restore_state(state)
    assert any("version" in r.getMessage() for r in caplog.records)
    assert exits.saved_state() == {"version": 1, "trades": {}}
