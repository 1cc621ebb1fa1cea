"""The operator's Prometheus metrics (served by ``main`` on ``--metrics-port``)."""

from __future__ import annotations

import contextlib
from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

#: How a reconcile pass ended (the ``outcome`` label).
ReconcileOutcome = Literal["ok", "retry", "failed", "invalid"]

RECONCILES = Counter("tradefleet_operator_reconciles", "Reconcile passes by outcome", ["outcome"])
# Every outcome's series exists from the start, at 0: a series first scraped at 1 is no rise to
# Prometheus' increase(), so TradefleetReconcileFailures would miss the first failure after an
# operator start (a SpecRefused is one failed pass, never retried).
for _outcome in get_args(ReconcileOutcome):
    RECONCILES.labels(_outcome).inc(0)
RECONCILE_SECONDS = Histogram(
    "tradefleet_operator_reconcile_seconds",
    "Duration of one reconcile pass",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# A status timer's write the API server refused (kopf sends it as a JSON patch testing
# resourceVersion: a newer object, or a status the CRD's schema refuses); the next tick decides
# again. A rate that never falls means a bot's status is not being written.
STATUS_WRITES_REFUSED = Counter(
    "tradefleet_operator_status_writes_refused",
    "Status timer writes the API server refused (retried from a fresh read at the next tick)",
)
STATUS_WRITES_REFUSED.inc(0)
BOTS_BY_PHASE = Gauge("tradefleet_operator_bots", "TradingBots by phase", ["phase"])
# Each bot's phase as the operator records it (1 for the phase it is in): what lasts when the
# runtime cannot say it (a bot that failed exits, and its own ``tradefleet_phase`` is gone
# before a scrape). ``bot_namespace``, not ``namespace``: Prometheus gives the operator's own
# series the operator's namespace as ``namespace``.
BOT_PHASE = Gauge(
    "tradefleet_operator_bot_phase",
    "Each TradingBot's phase, as the operator records it (1 for its phase)",
    ["bot_namespace", "bot", "phase"],
)
#: The phase each bot (by uid) is counted under, and its namespace and name, so a change moves
#: it between labels.
_PHASES: dict[str, tuple[str, str, str]] = {}


def record_phase(uid: str, phase: str, namespace: str, name: str) -> None:
    """Count ``uid`` (the TradingBot ``namespace``/``name``) under ``phase``: in the
    bots-by-phase gauge and in its own series of the per-bot one."""
    old = _PHASES.get(uid)
    if old == (phase, namespace, name):
        return
    if old is not None:
        _drop(*old)
    BOTS_BY_PHASE.labels(phase).inc()
    BOT_PHASE.labels(namespace, name, phase).set(1)
    _PHASES[uid] = (phase, namespace, name)


def forget_phase(uid: str) -> None:
    old = _PHASES.pop(uid, None)
    if old is not None:
        _drop(*old)


def _drop(phase: str, namespace: str, name: str) -> None:
    BOTS_BY_PHASE.labels(phase).dec()
    with contextlib.suppress(KeyError):  # never set (a registry reset between): nothing to do
        BOT_PHASE.remove(namespace, name, phase)
