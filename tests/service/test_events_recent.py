"""``tradefleet events ADDRESS --recent N``: a stream that starts with the bot's latest events.

The runbook (docs/operations.md) sends a person answering an alert to the bot's events: the
``degraded`` event of a start-up, the ``close_owed`` of a refused close. Those happened before
anyone connected, and a stream showed only events published after it subscribed, so the command
printed nothing (found in a walkthrough of the live-trading docs).
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from pathlib import Path

import grpc
import pytest

from tests.service.fakes import FakeControlPlane, running_server
from tradefleet_runtime import cli
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.service.api import EventKind
from tradefleet_runtime.service.events import EventHub

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _drain(subscription: object) -> list[str]:
    messages = []
    while True:
        event = subscription.get(timeout=0.05)  # type: ignore[attr-defined]
        if event is None:
            return messages
        messages.append(event.message)


def test_a_later_subscriber_asking_for_recent_events_gets_them_oldest_first() -> None:
    hub = EventHub(kept=3)
    for n in range(5):
        hub.publish(n, EventKind.STATE, f"e{n}")
    late = hub.subscribe(recent=2)
    everything = hub.subscribe(recent=1000)
    plain = hub.subscribe()
    hub.publish(5, EventKind.STATE, "e5")
    assert _drain(late) == ["e3", "e4", "e5"]
    assert _drain(everything) == ["e2", "e3", "e4", "e5"]  # what the hub kept, then live
    assert _drain(plain) == ["e5"]


def test_recent_events_meet_the_live_ones_without_a_gap_or_a_repeat() -> None:
    hub = EventHub()
    published = threading.Event()

    def publish() -> None:
        for n in range(20_000):
            hub.publish(n, EventKind.ORDER, str(n))
            if n == 100:
                published.set()

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        published.wait(5)
        subscription = hub.subscribe(max_queue=100_000, recent=50)  # while it publishes
    finally:
        publisher.join()
    seen = [int(message) for message in _drain(subscription)]
    assert seen and seen == list(range(seen[0], seen[0] + len(seen)))


def test_grpc_streams_start_with_the_recent_events_and_refuse_too_many() -> None:
    plane = FakeControlPlane()
    for n in range(3):
        plane.publish(EventKind.STATE, f"degraded {n}")
    with running_server(plane) as endpoint:
        channel = grpc.insecure_channel(f"127.0.0.1:{endpoint.port}")
        stub = pb_grpc.RuntimeServiceStub(channel)
        stream = stub.StreamEvents(pb.StreamEventsRequest(recent=2), timeout=5)
        first = [next(stream).message for _ in range(2)]
        stream.cancel()
        assert first == ["degraded 1", "degraded 2"]
        with pytest.raises(grpc.RpcError) as refused:
            next(iter(stub.StreamEvents(pb.StreamEventsRequest(recent=1001), timeout=5)))
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "recent" in (refused.value.details() or "")
        channel.close()


def test_the_cli_shows_an_event_from_before_it_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plane = FakeControlPlane()
    plane.publish(EventKind.STATE, "degraded: BTCUSDT: the bot holds 0, the venue 0.5")
    monkeypatch.delenv("TRADEFLEET_TOKEN", raising=False)
    with running_server(plane) as endpoint:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(
                [
                    "events",
                    f"127.0.0.1:{endpoint.port}",
                    "--recent",
                    "10",
                    "--count",
                    "1",
                    "--duration",
                    "5",
                    "--json",
                ]
            )
    assert code == 0
    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["message"].startswith("degraded: BTCUSDT")


def test_the_runbook_asks_for_the_recent_events_it_sends_people_to() -> None:
    text = " ".join(OPERATIONS.read_text(encoding="utf-8").split())
    for promise in ("`reconciled`/`degraded` event", "`flatten_failed`, `close_owed`"):
        at = text.index(promise)
        near = text[max(0, at - 200) : at + 200]
        assert "tradefleet events ADDRESS --recent" in near, promise


def test_recent_events_of_a_kind_are_not_crowded_out_by_the_others() -> None:
    hub = EventHub()
    hub.publish(1, EventKind.STATE, "degraded: BTCUSDT")
    for n in range(50):
        hub.publish(2 + n, EventKind.ORDER, f"order {n}")
    states = hub.subscribe(recent=10, kinds={EventKind.STATE})
    assert _drain(states) == ["degraded: BTCUSDT"]
