"""Reconcile spans: one OpenTelemetry span per reconcile of a TradingBot, when tracing is on.

Off by default (the standard ``OTEL_*`` variables turn it on, as in the runtime); then no span
is made and the SDK is not imported.
"""

from __future__ import annotations

from typing import Any

from tradefleet_runtime.tracing import configure_tracer

_tracer: Any | None = None
_configured = False


def use_tracer(tracer: Any | None) -> None:
    """Set the tracer explicitly (tests pass one with an in-memory exporter)."""
    global _tracer, _configured
    _tracer, _configured = tracer, True


def tracer() -> Any | None:
    global _tracer, _configured
    if not _configured:
        _tracer = configure_tracer("tradefleet-operator", {}, "tradefleet.operator")
        _configured = True
    return _tracer


def start_reconcile_span(name: str, namespace: str, generation: Any) -> Any | None:
    current = tracer()
    if current is None:
        return None
    return current.start_span(
        "reconcile",
        attributes={
            "k8s.namespace.name": namespace,
            "tradefleet.bot": name,
            "tradefleet.generation": int(generation or 0),
        },
    )


def end_reconcile_span(span: Any | None, outcome: str) -> None:
    if span is not None:
        span.set_attribute("tradefleet.outcome", outcome)
        span.end()
