"""A reconcile span per reconcile of a TradingBot, when tracing is on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.operator.e2e.conftest import Cluster, Operator, bot_manifest
from tradefleet_operator import tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer(provider.get_tracer("test"))
    try:
        yield exporter
    finally:
        tracing.use_tracer(None)


def test_each_reconcile_is_a_span_with_its_outcome(
    spans: InMemorySpanExporter, cluster: Cluster
) -> None:
    operator = Operator().start()
    try:
        cluster.apply_bot(bot_manifest("traced"))
        cluster.wait(lambda: cluster.get("apps/v1", "deployments", "traced"), message="deployment")
        cluster.patch_bot("traced", {"spec": {"strategy": {"params": {"fast": 4}}}})

        def two_reconciles() -> list[object] | None:
            found = [s for s in spans.get_finished_spans() if s.name == "reconcile"]
            return found if len(found) >= 2 else None

        reconciles = cluster.wait(two_reconciles, message="two reconcile spans")
    finally:
        operator.stop()
    first, second = reconciles[:2]
    assert first.attributes["tradefleet.bot"] == "traced"  # type: ignore[attr-defined]
    assert first.attributes["tradefleet.outcome"] == "ok"  # type: ignore[attr-defined]
    assert first.attributes["tradefleet.generation"] == 1  # type: ignore[attr-defined]
    assert second.attributes["tradefleet.generation"] == 2  # type: ignore[attr-defined]


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracing, "_configured", False)
    assert tracing.tracer() is None
    assert tracing.start_reconcile_span("x", "y", 1) is None
