"""The operator's Prometheus metrics (served by ``main`` on ``--metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter("tradefleet_operator_reconciles", "Reconcile passes by outcome", ["outcome"])
RECONCILE_SECONDS = Histogram(
    "tradefleet_operator_reconcile_seconds",
    "Duration of one reconcile pass",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BOTS_BY_PHASE = Gauge("tradefleet_operator_bots", "TradingBots by phase", ["phase"])
#: The phase each bot (by uid) is counted under, so a change moves it between labels.
_PHASES: dict[str, str] = {}


def record_phase(uid: str, phase: str) -> None:
    """Count ``uid`` under ``phase`` in the bots-by-phase gauge."""
    old = _PHASES.get(uid)
    if old == phase:
        return
    if old is not None:
        BOTS_BY_PHASE.labels(old).dec()
    BOTS_BY_PHASE.labels(phase).inc()
    _PHASES[uid] = phase


def forget_phase(uid: str) -> None:
    old = _PHASES.pop(uid, None)
    if old is not None:
        BOTS_BY_PHASE.labels(old).dec()
