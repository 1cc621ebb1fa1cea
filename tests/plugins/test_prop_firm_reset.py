"""prop-firm: a person's reset of the total-loss lock is refused while the loss would lock again
at once, and holds when it is accepted.

The runbook (docs/operations.md, TradefleetRiskLockHeld) has the risk manager clear a lock with
``tradefleet reset-risk``; a plugin that will not be cleared yet refuses and says why. A reset
accepted at a loss still past ``flatten_at`` of the total limit journals "lock reset", clears
the gauge and the alert, and the next ``check`` or ``account_actions`` takes the same lock again
and owes another flatten: the reset is refused there, naming the equity and the floor.
"""

from __future__ import annotations

from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Instrument, OrderIntent, Position, Side

T = 1_700_006_400  # a UTC midnight
HELD = {"X": Position("X", 100.0, 100.0)}  # what moves the equity while the lock holds


def _ctx(equity: float, ts: int, positions: dict[str, Position] | None = None) -> RiskContext:
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity,
        start_of_day_equity=equity,
        peak_equity=100_000.0,
        positions=positions or {},
        marks={"X": 100.0},
        instrument=Instrument("X"),
        stops={},
        initial_equity=100_000.0,
    )


def _locked(equity: float = 91_500.0) -> PropFirm:
    """A 2-step account locked at ``equity`` (8,500 lost: 85% of the 10% limit)."""
    firm = PropFirm(PropFirmParams(timezone="UTC"))
    firm.account_actions(_ctx(100_000.0, T, HELD))
    firm.account_actions(_ctx(equity, T + 3_600, HELD))
    assert firm.lock_reason() is not None
    return firm


ENTRY = OrderIntent("X", Side.BUY, 1.0, stop_loss=99.0)


def test_a_reset_is_refused_while_the_loss_would_lock_again_at_once() -> None:
    firm = _locked()
    refusal = firm.reset_lock()
    assert refusal is not None
    # The numbers: the equity, the line the lock is taken at (80% of 10,000 below 100,000) and
    # the floor.
    for figure in ("91,500.00", "92,000.00", "90,000.00", "8,500.00"):
        assert figure in refusal, refusal
    assert firm.lock_reason() is not None  # the lock stays
    assert firm.check(ENTRY, _ctx(91_500.0, T + 7_200)).code == "total_loss"


def test_a_refused_reset_keeps_the_owed_flatten() -> None:
    firm = PropFirm(PropFirmParams(timezone="UTC"))
    firm.account_actions(_ctx(100_000.0, T, HELD))
    firm.check(ENTRY, _ctx(91_500.0, T + 3_600, HELD))  # the lock taken by check: flatten owed
    assert firm.reset_lock() is not None
    owed = firm.account_actions(_ctx(91_500.0, T + 3_600, HELD))
    assert [action.code for action in owed] == ["total_loss", "total_loss"]


def test_a_reset_at_the_lock_line_is_refused() -> None:
    # 8,000 lost is exactly 80% of the limit: the rule locks there, so the reset is refused.
    assert _locked(92_000.0).reset_lock() is not None


def test_a_reset_it_accepts_is_not_undone_at_the_next_bar() -> None:
    firm = _locked()
    firm.account_actions(_ctx(92_500.0, T + 7_200, HELD))  # the position recovered 1,000
    assert firm.reset_lock() is None
    assert firm.lock_reason() is None
    decision = firm.check(ENTRY, _ctx(92_500.0, T + 10_800))
    again = firm.account_actions(_ctx(92_500.0, T + 10_800))
    assert decision.code != "total_loss" and not again and firm.lock_reason() is None


def test_a_reset_before_any_bar_is_refused_as_unmeasured() -> None:
    firm = PropFirm(PropFirmParams(timezone="UTC"))
    firm.restore_lock("total loss 8,500.00 reached 80% of the 10% limit", T)
    refusal = firm.reset_lock()
    assert refusal is not None and "no bar close" in refusal
    firm.account_actions(_ctx(95_000.0, T + 3_600))  # the next bar: the loss is measured
    assert firm.reset_lock() is None and firm.lock_reason() is None


def test_a_reset_with_no_lock_is_accepted() -> None:
    assert PropFirm(PropFirmParams(timezone="UTC")).reset_lock() is None
