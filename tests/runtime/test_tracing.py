"""Traces: bar → signal → risk → order → fill, only for bars that produce orders; off by default."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.runtime.helpers import Scripted, bar, make_engine, paper_engine
from tests.runtime.test_trailing_native import Mover
from tradefleet_plugins.risk.sizers import FixedSize
from tradefleet_plugins.risk.sizers_params import FixedSizeParams
from tradefleet_runtime.capabilities import AccountAction, ActionKind
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.engine.risk_hooks import RiskHooks
from tradefleet_runtime.errors import StrategyError
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar
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


def _spans_of(engine: Engine, bars: list[Bar], *, fails: bool = False) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine.tracer = EngineTracer(provider.get_tracer("test"), "test-bot")
    if fails:
        with pytest.raises(StrategyError):
            engine.run(bars)
    else:
        engine.run(bars)
    return list(exporter.get_finished_spans())


def test_a_rejected_order_ends_its_trace_marked_as_an_error() -> None:
    # W34: a rejected order's trace ended at its ``order`` span, as an order still working.
    strategy = Scripted({2: lambda ctx, b: ctx.buy("TEST", 1_000)})  # far beyond 10,000 USD
    spans = _spans_of(make_engine(strategy), [bar(i, 100, 101, 99, 100) for i in range(5)])
    [order] = [s for s in spans if s.name == "order"]
    [ended] = [s for s in spans if s.name == "order.rejected"]
    assert ended.parent is not None and order.context is not None
    assert ended.parent.span_id == order.context.span_id
    assert ended.status.status_code is StatusCode.ERROR
    assert "margin" in str(ended.attributes["tradefleet.reason"])


def test_a_bar_whose_on_bar_raised_leaves_an_error_span() -> None:
    def boom(ctx: StrategyContext, b: Bar) -> None:
        raise RuntimeError("a bug")

    spans = _spans_of(
        make_engine(Scripted({3: boom})), [bar(i, 100, 101, 99, 100) for i in range(5)], fails=True
    )
    [failed] = [s for s in spans if s.status.status_code is StatusCode.ERROR]
    assert failed.name == "bar" and failed.attributes["tradefleet.bar_ts"] == bar(3, 1, 1, 1, 1).ts
    assert [e.name for e in failed.events] == ["exception"]


def test_a_risk_plugins_flatten_is_a_decision_trace() -> None:
    # W34: the order a lock's flatten sent was a trace root of its own, not a decision's.
    strategy = Scripted({0: lambda ctx, b: ctx.buy("TEST", 1)})
    flatten = AccountAction(ActionKind.FLATTEN, "locked", "TEST")
    mover = Mover({3: flatten})
    hooks = RiskHooks(bar_observers=(("mover", mover),), actors=(("mover", mover),))
    engine = paper_engine(Journal(":memory:"), "run-1", strategy, hooks=hooks)
    spans = _spans_of(engine, [bar(i, 100, 101, 99, 100) for i in range(6)])
    [acted] = [s for s in spans if s.name == "risk_action"]
    assert acted.attributes["tradefleet.plugin"] == "mover"
    [close] = [s for s in spans if s.name == "order" and s.attributes["tradefleet.side"] == "sell"]
    assert close.parent is not None and acted.context is not None
    assert close.parent.span_id == acted.context.span_id
