"""OpenTelemetry traces of a bot's decisions: off by default, and free when off.

A span costs about 30 µs here, 150 times a bar's whole budget, so a trace starts only when a bar
(or an external signal) produces order intents, never for every bar:

    bar ─┬─ signal            the strategy's intents
         ├─ risk.<plugin>     one per risk decision
         └─ order             the order reaching the broker
                ├─ fill       when (and if) it fills, on a later bar
                └─ order.rejected / .cancelled / .expired
                              when it ends unfilled (a rejection marked as an error)

A risk plugin's account actions (a lock's flatten) are a ``risk_action`` root of the same shape,
and a bar whose ``on_bar`` raised a ``bar`` span marked as an error.

Tracing is on when the standard ``OTEL_*`` variables ask for it: ``OTEL_TRACES_EXPORTER``
(``otlp`` or ``console``) or an ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT``; ``OTEL_SDK_DISABLED=true``
or ``OTEL_TRACES_EXPORTER=none`` keep it off. The SDK is imported only then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tradefleet_runtime.model import (
    Fill,
    Order,
    OrderIntent,
    OrderStatus,
    OrderUpdate,
    RiskDecision,
)

MAX_OPEN_CONTEXTS = 10_000  # order span contexts kept for their fills (oldest dropped first)


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return bool(exporter) or bool(endpoint)


def configure_from_env(service_name: str, bot: str) -> EngineTracer | None:
    """An engine tracer exporting as the ``OTEL_*`` variables say, or None when tracing is off."""
    tracer = configure_tracer(service_name, {"tradefleet.bot": bot}, "tradefleet.engine")
    return EngineTracer(tracer, bot) if tracer is not None else None


def configure_tracer(
    service_name: str, resource_attributes: Mapping[str, str], name: str
) -> Any | None:
    """An OpenTelemetry tracer exporting as the ``OTEL_*`` variables say, or None when off."""
    if not tracing_requested():
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": service_name, **resource_attributes})
    provider = TracerProvider(resource=resource)
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    exporter: Any
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout from OTEL_EXPORTER_OTLP_*
    provider.add_span_processor(BatchSpanProcessor(exporter))
    from opentelemetry import trace

    trace.set_tracer_provider(provider)
    return provider.get_tracer(name)


class EngineTracer:
    """The engine's spans. Build one from any OpenTelemetry tracer (tests pass an SDK one)."""

    def __init__(self, tracer: Any, bot: str) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._bot = bot
        self._orders: dict[str, Any] = {}  # client order id -> span context, until filled

    @contextmanager
    def decision(self, name: str, attributes: Mapping[str, Any], started_ns: int) -> Iterator[None]:
        """The root span of one decision (a bar's intents, or an external signal)."""
        span = self._tracer.start_span(
            name, start_time=started_ns, attributes={"tradefleet.bot": self._bot, **attributes}
        )
        context = self._trace.set_span_in_context(span)
        token = _attach(context)
        try:
            yield
        finally:
            _detach(token)
            span.end()

    def signal(self, intents: list[OrderIntent]) -> None:
        with self._tracer.start_as_current_span(
            "signal",
            attributes={
                "tradefleet.intents": len(intents),
                "tradefleet.symbols": sorted({i.symbol for i in intents}),
                "tradefleet.tags": [i.tag for i in intents],
            },
        ):
            pass

    def risk(self, plugin: str, intent: OrderIntent, decision: RiskDecision) -> None:
        with self._tracer.start_as_current_span(
            f"risk.{plugin}",
            attributes={
                "tradefleet.plugin": plugin,
                "tradefleet.action": decision.action.value,
                "tradefleet.symbol": intent.symbol,
                "tradefleet.quantity_in": intent.quantity if intent.quantity is not None else -1.0,
                "tradefleet.quantity_out": decision.quantity
                if decision.quantity is not None
                else -1.0,
            },
        ):
            pass

    @contextmanager
    def order(self, order: Order) -> Iterator[None]:
        with self._tracer.start_as_current_span(
            "order",
            attributes={
                "tradefleet.client_order_id": order.client_order_id,
                "tradefleet.symbol": order.symbol,
                "tradefleet.side": order.side.value,
                "tradefleet.quantity": order.quantity,
                "tradefleet.order_type": order.order_type.value,
            },
        ) as span:
            self._orders[order.client_order_id] = span.get_span_context()
            if len(self._orders) > MAX_OPEN_CONTEXTS:
                del self._orders[next(iter(self._orders))]
            yield

    def fill(self, fill: Fill, parent_id: str | None) -> None:
        """A fill, as a child of its order's span (or of its bracket parent's)."""
        context = self._orders.get(fill.client_order_id)
        if context is None and parent_id is not None:
            context = self._orders.get(parent_id)
        if context is None:
            return
        parent = self._trace.set_span_in_context(self._trace.NonRecordingSpan(context))
        span = self._tracer.start_span(
            "fill",
            context=parent,
            attributes={
                "tradefleet.client_order_id": fill.client_order_id,
                "tradefleet.symbol": fill.symbol,
                "tradefleet.price": fill.price,
                "tradefleet.quantity": fill.quantity,
                "tradefleet.reason": fill.reason,
            },
        )
        span.end()

    def order_ended(self, update: OrderUpdate) -> None:
        """An order's final status: a rejection, cancel or expiry is a child of its order's
        span (a rejection an error: its trace no longer reads as an order still working);
        its context is forgotten (a fill ends its span itself)."""
        context = self._orders.pop(update.client_order_id, None)
        if context is None or update.status is OrderStatus.FILLED:
            return
        parent = self._trace.set_span_in_context(self._trace.NonRecordingSpan(context))
        span = self._tracer.start_span(
            f"order.{update.status.value}",
            context=parent,
            attributes={
                "tradefleet.client_order_id": update.client_order_id,
                "tradefleet.reason": update.reason,
                "tradefleet.code": update.code.value,
            },
        )
        if update.status is OrderStatus.REJECTED:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, update.reason))
        span.end()

    def failed(self, name: str, attributes: Mapping[str, Any], error: BaseException) -> None:
        """A span marking ``error`` (a strategy's ``on_bar`` raised on a bar), as an error."""
        span = self._tracer.start_span(name, attributes={"tradefleet.bot": self._bot, **attributes})
        span.record_exception(error)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, type(error).__name__))
        span.end()

    def forget(self, client_order_id: str) -> None:
        self._orders.pop(client_order_id, None)


def _attach(context: Any) -> Any:
    from opentelemetry import context as otel_context

    return otel_context.attach(context)


def _detach(token: Any) -> None:
    from opentelemetry import context as otel_context

    otel_context.detach(token)


def now_ns() -> int:
    return time.time_ns()
