"""The runbook and the alert say a risk lock holds until a person clears it — as it does.

docs/operations.md's TradefleetRiskLockHeld said "usually nothing: the lock clears by itself
(next trading day, end of the cooldown)", and the alert's runbook the same. The engine holds
every lock until a person resets it (``TradingState``: only a person's ResetRiskLock releases
one), and each built-in lock says so: circuit-breaker's tier 3 (the cooldown only allows the
reset), prop-firm's total loss. An on-call person who followed the runbook left a bot out of the
market for days; had a lock cleared by itself, a breached account would have traded again.

The test takes each lock with the real plugins and the engine's own gate, lets two trading days
(and the cooldown) pass, checks both locks still hold, then holds the runbook and the alert to
that.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tradefleet_plugins.risk.circuit_breaker import CircuitBreaker
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.prop_firm import PropFirm
from tradefleet_plugins.risk.prop_firm_params import PropFirmParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.engine.trading_state import TradingState
from tradefleet_runtime.model import Instrument, OrderIntent, RiskAction, Side

ROOT = Path(__file__).resolve().parents[2]
NOON = int(datetime(2024, 6, 11, 10, 0, tzinfo=UTC).timestamp())  # noon in Prague
DAY = 86_400


def ctx(ts: int, equity: float) -> RiskContext:
    return RiskContext(
        ts=ts,
        equity=equity,
        cash=equity,
        start_of_day_equity=equity,
        peak_equity=equity,
        positions={},
        marks={"EURUSD": 1.08},
        instrument=Instrument("EURUSD"),
        stops={},
        initial_equity=100_000.0,
    )


ENTRY = OrderIntent("EURUSD", Side.BUY, 1_000.0, stop_loss=1.07)


def _locks_after_the_next_day() -> dict[str, str]:
    """Lock a circuit breaker (15% down on the day) and a prop-firm (8.5% total loss), show
    both the next two trading days at the same equity, and ask the engine's gate."""
    breaker = CircuitBreaker(CircuitBreakerParams(timezone="Europe/Prague"))
    prop = PropFirm(PropFirmParams())
    state = TradingState(lock_holders=(("circuit-breaker", breaker), ("prop-firm", prop)))
    for plugin in (breaker, prop):
        plugin.account_actions(ctx(NOON, 100_000.0))
    breaker.account_actions(ctx(NOON + 3600, 85_000.0))
    prop.account_actions(ctx(NOON + 3600, 91_500.0))
    state.newly_locked(NOON + 3600)
    for days in (1, 2):
        later = NOON + days * DAY
        breaker.account_actions(ctx(later, 85_000.0))
        prop.account_actions(ctx(later, 91_500.0))
        state.newly_locked(later)
    gate = state.gate(ENTRY)
    assert gate is not None and gate[1].action is RiskAction.VETO
    return state.locks()


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n### ", start + len(heading))
    return text[start : end if end >= 0 else len(text)]


def test_the_runbook_and_the_alert_say_only_a_person_clears_a_lock() -> None:
    locks = _locks_after_the_next_day()  # two days on, both still hold
    assert set(locks) == {"circuit-breaker", "prop-firm"}, locks
    runbook = _section(
        (ROOT / "docs" / "operations.md").read_text(encoding="utf-8"), "### TradefleetRiskLockHeld"
    )
    alert = (ROOT / "charts" / "tradefleet" / "files" / "alerts.yaml").read_text(encoding="utf-8")
    start = alert.index("alert: TradefleetRiskLockHeld")
    alert = alert[start : alert.index("- alert:", start)]
    for where, text in (("docs/operations.md", runbook), ("alerts.yaml", alert)):
        flat = " ".join(text.split())
        assert "usually clears" not in flat and "usually nothing" not in flat, where
        assert "never clears by itself" in flat and "reset-risk" in flat, where
