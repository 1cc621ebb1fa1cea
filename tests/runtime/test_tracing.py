"""Traces: bar → signal → risk → order → fill, only for bars that produce orders; off by default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.runtime.helpers import Scripted, bar, make_engine
from tradefleet_plugins.risk.sizers import FixedSize
from tradefleet_plugins.risk.sizers_params import FixedSizeParams
from tradefleet_runtime.tracing import EngineTracer, tracing_requested


def _traced_run() -> list[object]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    strategy = Scripted(
        {
            2: lambda ctx, b: ctx.buy("TEST", stop_loss=90, take_profit=120),
            5: lambda ctx, b: ctx.close("TEST"),
        }
    )
    engine = make_engine(strategy, risk=[("fixed-size", FixedSize(FixedSizeParams(quantity=2)))])
    engine.tracer = EngineTracer(provider.get_tracer("test"), "test-bot")
    engine.run([bar(i, 100, 101, 99, 100) for i in range(10)])
    return list(exporter.get_finished_spans())


def test_spans_follow_a_decision_from_bar_to_fill() -> None:
    spans = _traced_run()
    by_name: dict[str, list[object]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)  # type: ignore[attr-defined]
    # Two bars produced orders (entry, exit): two traces; the other eight bars made no span.
    assert len(by_name["bar"]) == 2
    roots = {s.context.span_id: s for s in by_name["bar"]}  # type: ignore[attr-defined]
    for name in ("signal", "risk.fixed-size", "order"):
        for span in by_name[name]:
            assert span.parent.span_id in roots, name  # type: ignore[attr-defined]
    orders = {s.context.span_id: s for s in by_name["order"]}  # type: ignore[attr-defined]
    fills = by_name["fill"]
    assert len(fills) == 2
    for fill in fills:
        order = orders[fill.parent.span_id]  # type: ignore[attr-defined]
        assert fill.context.trace_id == order.context.trace_id  # type: ignore[attr-defined]
        assert (
            fill.attributes["tradefleet.client_order_id"]
            == order.attributes[  # type: ignore[attr-defined]
                "tradefleet.client_order_id"
            ]
        )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
            False,
        ),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_follows_the_standard_variables(environ: dict[str, str], expected: bool) -> None:
    assert tracing_requested(environ) is expected


def test_off_by_default_the_sdk_is_not_even_imported() -> None:
    code = (
        "import sys\n"
        "from tradefleet_runtime.tracing import configure_from_env\n"
        "assert configure_from_env('x', 'y') is None\n"
        "import tradefleet_runtime.session, tradefleet_runtime.engine.engine\n"
        "print('opentelemetry.sdk' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False"
