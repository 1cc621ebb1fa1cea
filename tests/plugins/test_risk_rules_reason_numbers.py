"""The numbers in circuit-breaker's, probation's and quality-guard's reasons show the comparison
they state truly.

A risk manager reads a decision's reason to learn why an order was stopped or cut. A limit is
printed as its params give it (hibernate_at 0.126 is "12.6%", never "13%"), and a measure to
the digits that show how it stands to its limit (149 of 250 trades won is "59.6%" against a
floor of 60%, never "60%"); a cooldown's time left is in seconds under a minute, never "0 min"
while the reset is refused.
"""

from __future__ import annotations

import re

from tradefleet_plugins.risk.circuit_breaker import (
    WARN,
    CircuitBreaker,
    decide,
    measures,
    tier_for,
)
from tradefleet_plugins.risk.circuit_breaker_params import CircuitBreakerParams
from tradefleet_plugins.risk.probation import Probation
from tradefleet_plugins.risk.probation_params import ProbationParams
from tradefleet_plugins.risk.quality_guard import STOPPED, assess
from tradefleet_plugins.risk.quality_guard_params import QualityGuardParams
from tradefleet_runtime.contracts import RiskContext
from tradefleet_runtime.model import Instrument, OrderIntent, Side, Trade

T0 = 1_500_000_000 - (1_500_000_000 % 86400)


def _ctx(equity: float) -> RiskContext:
    return RiskContext(0, equity, equity, equity, equity, {}, {}, Instrument("X"))


def _percents(text: str) -> list[float]:
    return [float(x) / 100 for x in re.findall(r"(\d+(?:\.\d+)?)%", text)]


def _probation_at(loss: float, **levels: float) -> tuple[Probation, float]:
    """Probation whose one closed trade lost ``loss`` of the 10,000 before it; the equity now."""
    plugin = Probation(ProbationParams(window_trades=3, **levels))
    plugin.bind_trades([Trade("X", 1, 1, 0, 1, 100, 99, -10_000.0 * loss, 0.0)])
    return plugin, 10_000.0 * (1.0 - loss)


def test_probation_hibernation_reason_states_the_limit_it_crossed() -> None:
    plugin, equity = _probation_at(0.1265, half_at=0.05, quarter_at=0.10, hibernate_at=0.126)
    decision = plugin.check(OrderIntent("X", Side.BUY, 10.0), _ctx(equity))
    assert decision.code == "hibernating"
    loss, limit = _percents(decision.reason)[:2]
    # The reason says the loss went "beyond" the limit: the limit printed must be below it.
    assert limit < loss, decision.reason
    assert limit == 0.126, decision.reason


def test_probation_size_reason_keeps_the_loss_below_the_next_level() -> None:
    """9.996% halves sizes (quarter_at 10%): the reason must not say "10.00%"."""
    plugin, equity = _probation_at(0.09996)
    decision = plugin.check(OrderIntent("X", Side.BUY, 10.0), _ctx(equity))
    assert decision.quantity == 5.0
    loss, level = _percents(decision.reason)[:2]
    assert level == 0.05 and level <= loss < 0.10, decision.reason


def test_quality_guard_win_rate_reason_shows_a_rate_below_its_floor() -> None:
    params = QualityGuardParams(window=250, win_rate_floor=0.6)
    state, why = assess([], [True] * 149 + [False] * 101, params)  # 59.6% won
    assert state == 1
    rate, floor = _percents(why)[:2]
    assert rate < floor, why


def test_quality_guard_cpk_reason_shows_a_cpk_below_its_floor() -> None:
    """Mean 5 bp, sigma 5 bp, limit 19.94 bp: Cpk 0.996, below 1 (printed "1.00" before)."""
    params = QualityGuardParams(window=10, min_samples=5, slippage_limit_bps=19.94)
    state, why = assess([0.0, 10.0, 5.0, 0.0, 10.0], [], params)
    assert state == STOPPED
    match = re.search(r"Cpk (\S+) .* < (\S+)$", why)
    assert match is not None, why
    assert float(match.group(1)) < float(match.group(2)), why


def test_breaker_reasons_print_limits_as_given() -> None:
    p = CircuitBreakerParams(warn_drawdown=0.0125, reduce_drawdown=0.10, lock_drawdown=0.15,
                             warn_size_cut=0.125)  # fmt: skip
    tier, reason = tier_for(measures(9_874.0, 10_000.0, 10_000.0, 10_000.0, 10_000.0), p)
    assert tier == WARN and reason == "daily drawdown 1.26% >= 1.25%", reason
    cut = decide(OrderIntent("X", Side.BUY, 100.0), WARN, reason, p)
    assert cut.reason.endswith("size cut by 12.5%"), cut.reason  # "12%" before


def test_breaker_reason_keeps_a_drawdown_at_its_limit_on_its_side() -> None:
    """A limit with more digits than two decimals: a drawdown of 12.34125% reached 12.3412%,
    and is not printed "12.34%", below it; nor is the limit "12.34%"."""
    p = CircuitBreakerParams(warn_drawdown=0.123412, reduce_drawdown=0.2, lock_drawdown=0.3,
                             max_drawdown=0.4, weekly_loss=0.5)  # fmt: skip
    equity = 10_000.0 * (1.0 - 0.1234125)
    tier, reason = tier_for(measures(equity, 10_000.0, 10_000.0, 10_000.0, 10_000.0), p)
    assert tier == WARN
    day, limit = re.findall(r"(\d+(?:\.\d+)?)%", reason)
    assert limit == "12.3412" and float(day) >= float(limit), reason


def test_breaker_cooldown_refusal_never_says_zero_minutes_left() -> None:
    breaker = CircuitBreaker(CircuitBreakerParams(cooldown_minutes=1.5))
    breaker.restore_lock("circuit breaker tier 3: daily drawdown 15.00% >= 15%", T0)
    breaker._now = T0 + 60  # the next 1m bar: 30 s of the cooldown left
    refusal = breaker.reset_lock()
    assert refusal is not None and "cooldown" in refusal
    assert "(0 min left)" not in refusal, refusal
    assert "(30 s left)" in refusal, refusal


def test_breaker_cooldown_refusal_counts_minutes_and_seconds() -> None:
    breaker = CircuitBreaker(CircuitBreakerParams(cooldown_minutes=60))
    breaker.restore_lock("circuit breaker tier 3: daily drawdown 15.00% >= 15%", T0)
    breaker._now = T0 + 3_600 - 90
    refusal = breaker.reset_lock()
    assert refusal is not None and "(1 min 30 s left)" in refusal, refusal  # "2 min" before
