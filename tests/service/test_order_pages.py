"""``ListOrders`` with closed orders, on a long run: a bot that has sent tens of thousands of
orders answers ``tradefleet orders --all`` page by page, on a real gRPC channel.

Before pages, the whole run's orders went out in one answer: past gRPC's 4 MB a message (about
20,000 orders) the client refused it (RESOURCE_EXHAUSTED), so a long-running bot's order
history could not be listed at all, and reading them all held the engine's thread."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml

from tests.service.fakes import running_server
from tradefleet_runtime import cli
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Order, OrderStatus, OrderType, Side
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.client import RuntimeClient
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)
SYMBOL = "BTCUSDT"
#: Enough closed orders that one answer holding them all is past gRPC's 4 MB.
MANY = 30_000


def _bars() -> tuple[Bar, ...]:
    return tuple(Bar(SYMBOL, HOUR, T0 + i * HOUR, 100.0, 100.5, 99.5, 100.0, 1.0) for i in range(3))


def _journal_history(journal: Journal, count: int) -> list[str]:
    """``count`` closed orders in the journal's current run (a long run's history), each with a
    long tag as strategies write them; their ids, oldest first."""
    ids = []
    for n in range(count):
        cid = f"history-{n:06d}"
        order = Order(
            cid,
            SYMBOL,
            Side.BUY if n % 2 else Side.SELL,
            1.0,
            OrderType.LIMIT,
            price=90.0 + n % 7,
            created_ts=T0 - HOUR * (count - n),
            tag="a strategy's reason for this order, as long as people write them " * 2,
        )
        journal.record_order(order, OrderStatus.CANCELLED, order.created_ts, "expired")
        ids.append(cid)
    journal.flush()
    return ids


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RuntimeClient, str, list[str]]]:
    folder = tmp_path_factory.mktemp("pages")
    manifest = folder / "bot.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "tradefleet.io/v1alpha1",
                "kind": "TradingBot",
                "metadata": {"name": "paged-bot"},
                "spec": {
                    "mode": "paper",
                    "strategy": {"name": "ema-cross", "params": {"fast": 2, "slow": 3}},
                    "market": {"symbols": [SYMBOL], "timeframe": "1h"},
                    "broker": {"name": "paper"},
                    "capital": {"currency": "USDT", "initial": 10000},
                },
            }
        )
    )
    registry = PluginRegistry.discover()
    bot = assemble(load_manifest(manifest), registry, folder)
    journal = Journal(folder / "journal.sqlite", durable=True)
    controller = BotController(bot, journal, registry, speed=0.0, bars=_bars())
    controller.start()
    try:
        deadline = time.monotonic() + 20
        while controller.phase is not Phase.STOPPED:
            assert time.monotonic() < deadline, controller.failure or controller.phase
            assert controller.phase is not Phase.FAILED, controller.failure
            time.sleep(0.02)
        ids = _journal_history(journal, MANY)
        with running_server(controller) as endpoint:  # type: ignore[arg-type]
            address = f"127.0.0.1:{endpoint.port}"
            with RuntimeClient(address, timeout=20) as client:
                yield client, address, ids
    finally:
        controller.stop()
        controller.wait(10)
        journal.close()


def test_every_order_of_a_long_run_is_listed_once_in_order(
    served: tuple[RuntimeClient, str, list[str]],
) -> None:
    client, _, ids = served
    listed = [o.client_order_id for o in client.list_orders(include_closed=True)]
    assert listed == ids


def test_one_answer_stays_small_and_says_where_the_next_page_starts(
    served: tuple[RuntimeClient, str, list[str]],
) -> None:
    client, _, ids = served
    stub: Any = pb_grpc.RuntimeServiceStub(client._channel)
    first = stub.ListOrders(pb.ListOrdersRequest(include_closed=True), timeout=20)
    assert 0 < len(first.orders) <= 1000 and first.next_page_token
    assert first.ByteSize() < 1 << 20
    second = stub.ListOrders(
        pb.ListOrdersRequest(include_closed=True, page_size=10, page_token=first.next_page_token),
        timeout=20,
    )
    assert [o.client_order_id for o in second.orders] == ids[len(first.orders) :][:10]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": 1001}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"page_token": "x" * 65}, "page_token"),
        # A token of a run the bot has left (it restarted between two pages).
        ({"page_token": "1000@20200101T000000-abcdef"}, "page_token"),
    ],
)
def test_a_bad_page_is_refused_naming_the_field(
    served: tuple[RuntimeClient, str, list[str]], request_fields: dict[str, Any], field: str
) -> None:
    client, _, _ = served
    stub: Any = pb_grpc.RuntimeServiceStub(client._channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListOrders(pb.ListOrdersRequest(include_closed=True, **request_fields), timeout=20)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")


def test_the_cli_lists_every_order(
    served: tuple[RuntimeClient, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, address, ids = served
    monkeypatch.delenv("TRADEFLEET_TOKEN", raising=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["orders", address, "--all", "--json"]) == 0
    listed = json.loads(out.getvalue())
    assert [o["client_order_id"] for o in listed] == ids
