"""prop-firm against FTMO's own statement of its rules.

- Maximum Daily Loss (FTMO Academy): equity may not fall below "the account balance at midnight
  CE(S)T ... - 5% of the Initial Simulated Capital". The midnight balance holds every fill made
  before midnight and none after, however late the plugin sees the day's first bar (H4/D1 bars,
  a broker's server clock, a gap, a bot down over midnight); and it holds no swap an open
  position accrued but the closing deal has not booked (an MT5 ``Accrual``).
- Maximum Loss, 1-Step (ftmo.com): "recalculated every midnight CE(S)T as the difference between
  the highest account balance achieved at the end of any preceding trading day or, if higher,
  the Initial Simulated Capital, and the Maximum Loss Amount (10% of the Initial Simulated
  Capital). The limit can only increase." 2-Step: fixed at 90% of the initial capital.
- Profit Target and Minimum Trading Days (ftmo.com, Trading Objectives; FTMO Academy): "a
  profit in the sum of closed positions ... all of your positions must be closed ... a final
  balance of $110,000"; "If a trade spans multiple days, only the day when the trade is
  initiated is counted as a trading day."
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tradefleet_plugins.risk.prop_firm import PropFirm, balance_of, flat_after, kept_state
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.portfolio import Portfolio
from tradefleet_runtime.model import (
    Fill,
    Instrument,
    OrderIntent,
    Position,
    RiskAction,
    Side,
    Trade,
)
from tradefleet_runtime.sdk import ActionKind

INITIAL = 100_000.0
HOUR, DAY = 3_600, 86_400
# Midnight in Prague between 2024-06-11 and 2024-06-12 (CEST: 22:00 UTC), FTMO's boundary.
MIDNIGHT = int(datetime(2024, 6, 11, 22, 0, tzinfo=UTC).timestamp())
NO_COSTS = {"fee_bps": 0.0, "slippage_bps": 0.0}
Stops = dict[str, tuple[tuple[float, float], ...]]


def snapshot(ts: int, portfolio: Portfolio, stops: Stops | None = None) -> RiskContext:
    """The RiskContext the engine builds from its portfolio (``risk_snapshot``)."""
    return RiskContext(
        ts=ts,
        equity=portfolio.equity(),
        cash=portfolio.cash,
        start_of_day_equity=portfolio.equity(),
        peak_equity=INITIAL,
        positions={
            s: Position(s, p.quantity, p.average_price, 0.0, p.opened_ts)
            for s, p in portfolio.open_positions.items()
        },
        marks=dict(portfolio.marks),
        instrument=Instrument("XAUUSD"),
        stops=stops or {},
        leverage=100.0,
        initial_equity=INITIAL,
    )


def long_eurusd() -> Portfolio:
    """200,000 EURUSD bought at 1.1000 (20 USD a pip) on a 100,000 account, five hours before
    midnight, marked 50 pips down (equity 99,000, balance 100,000)."""
    portfolio = Portfolio(cash=INITIAL)
    portfolio.apply(
        Fill("o1", "EURUSD", Side.BUY, 200_000.0, 1.1000, 0.0, MIDNIGHT - 5 * HOUR, "f1")
    )
    portfolio.marks.update({"EURUSD": 1.0950, "XAUUSD": 2300.0})
    return portfolio


STOP: Stops = {"EURUSD": ((200_000.0, 1.0900),)}
# An XAUUSD entry whose stop loses 3,500 (35 x 100 oz): from 98,000 it ends at 94,500, below
# FTMO's 95,000 when the day started at 100,000, above the 93,000 of a start at 98,000.
GOLD = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2265.0)


def stopped(ts: int) -> Fill:
    return Fill("sl", "EURUSD", Side.SELL, 200_000.0, 1.0900, 0.0, ts, "f2", "stop_loss")


# -- the day's start: FTMO's midnight balance ------------------------------------------------


def test_a_stop_filled_after_midnight_before_the_first_close_seen_is_the_new_days() -> None:
    """H4 bars closing at 22:00 and 02:00 Prague. The long's stop fills at 1.0900 at 01:00
    Prague (-2,000), after midnight: FTMO's day starts from 100,000, floor 95,000. At the
    02:00 close, flat at 98,000, the gold entry would end the day at 94,500."""
    portfolio = long_eurusd()
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    plugin.account_actions(snapshot(MIDNIGHT - 2 * HOUR, portfolio, STOP))
    fill = stopped(MIDNIGHT + HOUR)
    portfolio.apply(fill)
    plugin.on_fill(fill)
    portfolio.marks["EURUSD"] = 1.0880
    first_close = snapshot(MIDNIGHT + 2 * HOUR, portfolio)
    assert first_close.equity == 98_000.0
    plugin.account_actions(first_close)
    assert plugin._day_start == pytest.approx(INITIAL)
    decision = plugin.check(GOLD, first_close)
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")
    assert "daily loss floor 95,000.00" in decision.reason


def test_a_fill_after_midnight_shown_at_the_old_days_close_is_the_new_days() -> None:
    """A live venue's stop fills at 00:30 and is applied while the engine is still at the
    23:00 close: the plugin is asked then (the account's actions on a venue event), at a close
    of the old day. The fill is kept for the new day's start, not dropped with the old day's."""
    portfolio = long_eurusd()
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    plugin.account_actions(snapshot(MIDNIGHT - HOUR, portfolio, STOP))
    fill = stopped(MIDNIGHT + HOUR // 2)
    portfolio.apply(fill)
    plugin.on_fill(fill)
    plugin.account_actions(snapshot(MIDNIGHT - HOUR, portfolio))  # the venue event's call
    assert plugin._day_start == pytest.approx(INITIAL)  # still the old day's start
    portfolio.marks["EURUSD"] = 1.0880
    first_close = snapshot(MIDNIGHT + HOUR, portfolio)
    plugin.account_actions(first_close)
    assert plugin._day_start == pytest.approx(INITIAL)
    assert plugin.check(GOLD, first_close).code == "daily_loss"


def restarted_after(
    exit_ts: int, *, with_state: bool = True, shown: bool = False
) -> tuple[PropFirm, RiskContext]:
    """A bot that handled the 23:00 close, went down, and was restarted at 02:00: the long's
    stop filled at ``exit_ts`` while it was down (reconciled: booked and in the trades, never
    shown to the plugin as a fill) or, ``shown``, after the restart and before the first bar
    (shown, but before the plugin knew the positions it closed)."""
    portfolio = long_eurusd()
    lived = PropFirm(PropFirmParams(**NO_COSTS))
    lived.account_actions(snapshot(MIDNIGHT - HOUR, portfolio, STOP))
    restarted = PropFirm(PropFirmParams(**NO_COSTS))
    restarted.bind_trades(portfolio.trades)
    restarted.restore_equity([MIDNIGHT - 2 * HOUR, MIDNIGHT - HOUR], [99_000.0, 99_000.0])
    if with_state:
        restarted.restore_state(lived.saved_state())
    fill = stopped(exit_ts)
    portfolio.apply(fill)
    if shown:
        restarted.on_fill(fill)
    portfolio.marks["EURUSD"] = 1.0880
    return restarted, snapshot(MIDNIGHT + 2 * HOUR, portfolio)


@pytest.mark.parametrize(("with_state", "shown"), [(True, False), (False, False), (True, True)])
def test_a_stop_filled_while_the_bot_was_down_over_midnight_is_the_new_days(
    with_state: bool, shown: bool
) -> None:
    restarted, now = restarted_after(MIDNIGHT + HOUR, with_state=with_state, shown=shown)
    assert now.equity == 98_000.0 and not now.positions
    assert restarted.check(GOLD, now).code == "daily_loss"
    assert restarted._day_start == pytest.approx(INITIAL)


def test_a_stop_filled_while_the_bot_was_down_before_midnight_is_in_the_start() -> None:
    """The same stop at 23:30: FTMO's midnight balance is 98,000, floor 93,000."""
    restarted, now = restarted_after(MIDNIGHT - HOUR // 2)
    assert restarted.check(GOLD, now).action is RiskAction.APPROVE
    assert restarted._day_start == pytest.approx(98_000.0)


def test_an_accrued_swap_is_not_in_the_midnight_balance() -> None:
    """The long is 100 pips down at midnight (floating -2,000) and has accrued -600 of swap
    (an MT5 ``Accrual``: in equity, not in the terminal's balance until the closing deal books
    it). Equity 97,400; FTMO's midnight balance 100,000, floor 95,000. An hour later an XAUUSD
    entry whose stop loses 2,300, with the EURUSD stop 20 pips off (400), would end at 94,700.
    Counted as booked, the swap started the day at 99,400 (floor 94,400)."""
    portfolio = long_eurusd()
    portfolio.set_accrual("EURUSD", -400.0)
    stop: Stops = {"EURUSD": ((200_000.0, 1.0880),)}
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    plugin.account_actions(snapshot(MIDNIGHT - HOUR, portfolio, stop))
    portfolio.marks["EURUSD"] = 1.0900
    portfolio.set_accrual("EURUSD", -600.0)  # the rollover's swap
    plugin.account_actions(snapshot(MIDNIGHT, portfolio, stop))
    now = snapshot(MIDNIGHT + HOUR, portfolio, stop)
    assert now.equity == 97_400.0
    assert plugin._day_start == pytest.approx(INITIAL)

    gold = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2277.0)  # 23 x 100 oz = 2,300
    worst = now.equity - 200_000.0 * (1.0900 - 1.0880) - 2_300.0
    assert round(worst, 6) == 94_700.0  # below FTMO's 95,000
    decision = plugin.check(gold, now)
    assert (decision.action, decision.code) == (RiskAction.VETO, "daily_loss")


def test_the_balance_is_cash_and_the_positions_at_their_price() -> None:
    """The engine's cash pays for a position: cash plus each position at its own price is
    what the closed positions left, whatever the marks and the accruals."""
    portfolio = long_eurusd()
    portfolio.set_accrual("EURUSD", -600.0)
    positions = {
        s: Position(s, p.quantity, p.average_price) for s, p in portfolio.positions.items()
    }
    assert balance_of(portfolio.cash, positions) == pytest.approx(INITIAL)
    assert portfolio.equity() == pytest.approx(INITIAL - 1_000.0 - 600.0)


# -- the maximum loss: 1-Step trails the highest end-of-day balance ---------------------------


def flat(ts: int, equity: float, positions: dict[str, Position] | None = None) -> RiskContext:
    """The engine's snapshot of a EURUSD position (if any) marked at 1.10, or of a flat
    account."""
    held = positions or {}
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity - sum(p.quantity * 1.10 for p in held.values()),
        start_of_day_equity=equity,
        peak_equity=equity,
        positions=held,
        marks={"EURUSD": 1.10, "XAUUSD": 2300.0},
        instrument=Instrument("XAUUSD"),
        initial_equity=INITIAL,
    )


# Day 1 ends flat at 108,000; losing days (each within 3%) bring the midnight balance to
# 100,500. FTMO 1-Step's limit is 108,000 - 10,000 = 98,000, above the day's 97,500.
BALANCES = [108_000.0, 105_100.0, 102_300.0, 100_500.0]
# 28 x 100 oz = 2,800: from 100,500 the stop ends at 97,700.
GOLD_2800 = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2272.0)


def after_the_losing_days(params: PropFirmParams) -> tuple[PropFirm, RiskContext]:
    plugin = PropFirm(params)
    for day, balance in enumerate(BALANCES):
        plugin.account_actions(flat(MIDNIGHT + day * DAY, balance))
    return plugin, flat(MIDNIGHT + 3 * DAY + HOUR, 100_500.0)


def test_the_1step_maximum_loss_trails_the_highest_end_of_day_balance() -> None:
    plugin, now = after_the_losing_days(PropFirmParams(preset="ftmo-1step", **NO_COSTS))
    decision = plugin.check(GOLD_2800, now)
    assert (decision.action, decision.code) == (RiskAction.VETO, "total_loss")
    assert "total loss floor 98,000.00" in decision.reason


@pytest.mark.parametrize(
    ("preset", "trails", "action"),
    [
        ("ftmo-2step", None, RiskAction.APPROVE),  # fixed at 90,000
        ("ftmo-1step", False, RiskAction.APPROVE),
        ("ftmo-2step", True, RiskAction.VETO),
    ],
)
def test_the_2step_maximum_loss_is_fixed_and_the_param_overrides_either_preset(
    preset: str, trails: bool | None, action: RiskAction
) -> None:
    params = PropFirmParams(preset=preset, max_loss_trails=trails, **NO_COSTS)
    plugin, now = after_the_losing_days(params)
    assert plugin.check(GOLD_2800, now).action is action


def test_the_trailing_high_is_the_balance_not_the_equity() -> None:
    """At the second midnight a long floats +8,000 (equity 108,000, balance 100,000); it
    closes flat the next day. "Intraday changes resulting from open positions do not affect
    the Maximum Loss Limit": it stays 90,000, and the day's 97,000 floor binds."""
    long = {"EURUSD": Position("EURUSD", 100_000.0, 1.02)}
    plugin = PropFirm(PropFirmParams(preset="ftmo-1step", **NO_COSTS))
    plugin.account_actions(flat(MIDNIGHT, INITIAL))
    plugin.account_actions(flat(MIDNIGHT + DAY, 108_000.0, long))
    plugin.account_actions(flat(MIDNIGHT + 2 * DAY, INITIAL))
    gold = OrderIntent("XAUUSD", Side.BUY, 100.0, stop_loss=2275.0)  # 2,500: ends at 97,500
    assert plugin.check(gold, flat(MIDNIGHT + 2 * DAY + HOUR, INITIAL)).action is (
        RiskAction.APPROVE
    )


def test_the_trailing_maximum_loss_flattens_and_locks_from_the_high() -> None:
    """After the losing days (high 108,000) equity 100,000 is 8,000 below the high: 80% of the
    10,000 maximum loss (``flatten_at``), though 0 below the initial capital."""
    plugin, _ = after_the_losing_days(PropFirmParams(preset="ftmo-1step", **NO_COSTS))
    long = {"EURUSD": Position("EURUSD", 100_000.0, 1.105)}
    actions = plugin.account_actions(flat(MIDNIGHT + 3 * DAY + HOUR, 100_000.0, long))
    assert [a.kind for a in actions] == [ActionKind.CANCEL_ENTRIES, ActionKind.FLATTEN]
    assert "since the highest end-of-day balance 108,000.00" in actions[0].reason
    assert plugin.lock_reason()


def test_the_trailing_high_survives_a_restart_through_the_state() -> None:
    """The second midnight's balance is 108,000 with a position 2,000 down (equity 106,000):
    the journaled equity alone would put the high at 106,000 (floor 96,000, under the day's
    97,500), the state the plugin journaled keeps 108,000."""
    down = {"EURUSD": Position("EURUSD", 100_000.0, 1.12)}
    equities = [INITIAL, 106_000.0, 105_100.0, 102_300.0, 100_500.0]
    held = [{}, down, {}, {}, {}]
    stamps = [MIDNIGHT + day * DAY for day in range(5)]
    params = PropFirmParams(preset="ftmo-1step", **NO_COSTS)
    lived = PropFirm(params)
    for ts, equity, positions in zip(stamps, equities, held, strict=True):
        lived.account_actions(flat(ts, equity, positions))
    now = flat(stamps[-1] + HOUR, 100_500.0)
    assert lived.check(GOLD_2800, now).code == "total_loss"
    state = lived.saved_state()
    assert state["high_balance"] == pytest.approx(108_000.0)

    forgetful = PropFirm(params)
    forgetful.restore_equity(stamps, equities)
    assert forgetful.check(GOLD_2800, now).action is RiskAction.APPROVE  # the premise
    restarted = PropFirm(params)
    restarted.restore_equity(stamps, equities)
    restarted.restore_state(state)
    assert restarted.check(GOLD_2800, now).code == "total_loss"


def test_a_damaged_high_balance_is_named_and_an_older_state_has_none() -> None:
    state = PropFirm(PropFirmParams()).saved_state()
    assert kept_state({**state, "high_balance": "x"}) == "high_balance 'x' is not a finite number"
    older = {k: v for k, v in state.items() if k != "high_balance"}
    kept = kept_state(older)
    assert not isinstance(kept, str) and kept.high is None


# -- the pass: closed balance, nothing open, days a trade was opened --------------------------

NOON = int(datetime(2024, 6, 10, 10, 0, tzinfo=UTC).timestamp())  # Monday noon in Prague
ENTRY = OrderIntent("XAUUSD", Side.BUY, 1.0, stop_loss=2290.0)


def account(
    ts: int, equity: float, positions: dict[str, Position], marks: dict[str, float]
) -> RiskContext:
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity - sum(p.quantity * marks[s] for s, p in positions.items()),
        start_of_day_equity=equity,
        peak_equity=equity,
        positions=positions,
        marks={**marks, "XAUUSD": 2300.0},
        instrument=Instrument("XAUUSD"),
        initial_equity=INITIAL,
    )


def test_equity_over_the_target_with_a_position_open_is_no_pass() -> None:
    """Balance 108,000 after four days each with a new trade; a EURUSD long 100,000 at 1.0800
    floats +2,500 at a close (equity 110,500), then gives 700 back (109,800): the closed
    positions sum 8,000 and one is open, no pass; entries go on."""
    trades = [
        Trade("EURUSD", 1, 2_000.0, NOON + d * DAY, NOON + d * DAY + HOUR, 1.08, 1.10, 2_000.0, 0.0)
        for d in range(4)
    ]
    held = {"EURUSD": Position("EURUSD", 100_000.0, 1.0800)}
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    plugin.bind_trades(trades)
    at = NOON + 4 * DAY
    plugin.account_actions(account(at, 110_500.0, held, {"EURUSD": 1.1050}))
    decision = plugin.check(ENTRY, account(at + HOUR, 109_800.0, held, {"EURUSD": 1.0980}))
    assert decision.action is RiskAction.APPROVE, decision.reason


def test_the_closed_balance_at_the_target_with_nothing_open_passes() -> None:
    trades = [
        Trade("EURUSD", 1, 2_000.0, NOON + d * DAY, NOON + d * DAY + HOUR, 1.08, 1.10, 2_500.0, 0.0)
        for d in range(4)
    ]
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    plugin.bind_trades(trades)
    now = account(NOON + 3 * DAY + 2 * HOUR, 110_000.0, {}, {})
    assert plugin.check(ENTRY, now).code == "target_reached"


def test_a_day_a_trade_only_closed_on_is_no_trading_day() -> None:
    """Two trades, each opened one day and closed the next (Mon->Tue, Wed->Thu): 2 trading
    days of the 4 needed. Flat at 110,500 on Thursday the target is met but not the days:
    the bot goes on trading."""
    trades = [
        Trade(
            "EURUSD", 1, 5_250.0, NOON + d * DAY, NOON + (d + 1) * DAY, 1.08, 1.1325, 5_250.0, 0.0
        )
        for d in (0, 2)
    ]
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    plugin.bind_trades(trades)
    assert plugin.trading_days() == 2
    at = NOON + 3 * DAY + 2 * HOUR
    plugin.account_actions(account(at, 110_500.0, {}, {}))
    decision = plugin.check(ENTRY, account(at + HOUR, 110_500.0, {}, {}))
    assert decision.action is RiskAction.APPROVE, decision.reason


def test_adding_to_a_position_makes_a_trading_day_and_reducing_it_does_not() -> None:
    """Bought Monday, added to Tuesday, half sold Wednesday, the rest Thursday: Monday and
    Tuesday are trading days (a position opened each), Wednesday and Thursday are not."""
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    for day, side, quantity in (
        (0, Side.BUY, 1.0),
        (1, Side.BUY, 1.0),
        (2, Side.SELL, 1.0),
        (3, Side.SELL, 1.0),
    ):
        plugin.on_fill(Fill("o", "X", side, quantity, 100.0, 0.0, NOON + day * DAY, f"f{day}"))
    assert plugin.trading_days() == 2


def test_a_short_reversed_long_in_one_fill_opens_a_trading_day() -> None:
    plugin = PropFirm(PropFirmParams(**NO_COSTS))
    plugin.on_fill(Fill("o", "X", Side.SELL, 1.0, 100.0, 0.0, NOON, "f1"))
    plugin.on_fill(Fill("o", "X", Side.BUY, 2.0, 100.0, 0.0, NOON + DAY, "f2"))
    assert plugin.trading_days() == 2


def test_flat_after_a_trade_only_when_nothing_else_was_open() -> None:
    def t(entry: int, exit_: int) -> Trade:
        return Trade("X", 1, 1.0, entry, exit_, 1.0, 1.0, 0.0, 0.0)

    # 0 ends while 1 is open; 1 ends flat; 2 ends as 3 begins (a reversal); 3 ends while a
    # position opened at 45 is still open.
    trades = [t(0, 10), t(5, 20), t(25, 30), t(30, 50)]
    assert flat_after(trades, 0, 45) == [1]
    assert flat_after(trades, 0, float("inf")) == [1, 3]
    assert flat_after(trades, 2, float("inf")) == [3]
