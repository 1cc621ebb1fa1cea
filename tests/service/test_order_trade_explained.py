"""Why a trade happened, from the gRPC API alone: a served paper bot whose strategy tags its
entries and gives them a stop-loss and a take-profit, asked over a real channel.

The bot buys on its first bar (tag ``breakout``, take-profit hit two bars later) and sells on a
later one (tag ``fade``, stopped out). ``ListOrders`` must say what the journal says about each
order — tag, stop-loss, take-profit, the price it was decided at, fees and average fill price,
the venue's id after the fill, why it ended — and ``ListTrades`` why each trade opened and
closed, with the client order ids of its opening and closing orders.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from tests.service.fakes import running_server
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime import cli
from tradefleet_runtime.api.v1 import runtime_pb2 as pb
from tradefleet_runtime.api.v1 import runtime_pb2_grpc as pb_grpc
from tradefleet_runtime.capabilities import Capability
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, Fill, Order, OrderStatus, OrderUpdate, Position, Side
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.sdk import NoParams, PluginKind, PluginSpec, Strategy, hookimpl
from tradefleet_runtime.service.api import OrderView, Phase, TradeView
from tradefleet_runtime.service.client import RuntimeClient
from tradefleet_runtime.service.controller import BotController, with_order_ids
from tradefleet_runtime.service.grpc_server import (
    order_from_proto,
    order_to_proto,
    trade_from_proto,
    trade_to_proto,
)
from tradefleet_runtime.session import assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)
SYMBOL = "BTCUSDT"


def _bar(i: int, low: float = 99.5, high: float = 100.5) -> Bar:
    return Bar(SYMBOL, HOUR, T0 + i * HOUR, 100.0, high, low, 100.0, 1.0)


# Bar 0: the strategy buys (filled at bar 1's open, 100). Bar 2 trades up to 104: the long's
# take-profit (103) fills, its stop-loss (95) is cancelled. Bar 3: the strategy sells (filled
# at bar 4's open). Bar 5 trades up to 106: the short's stop-loss (105) fills.
BARS = (_bar(0), _bar(1), _bar(2, high=104.0), _bar(3), _bar(4), _bar(5, high=106.0), _bar(6))


class TaggedBrackets(Strategy):
    """A long with a bracket on bar 0, a short with a bracket on bar 3; both tagged."""

    def on_bar(self, bar: Bar) -> None:
        step = (bar.ts - T0) // HOUR
        if step == 0:
            self.ctx.buy(SYMBOL, 1, stop_loss=95.0, take_profit=103.0, tag="breakout")
        elif step == 3:
            self.ctx.sell(SYMBOL, 1, stop_loss=105.0, take_profit=90.0, tag="fade")


class VenueIdPaper(PaperBroker):
    """The paper broker, but with the venue's own order ids (a real venue's are never the
    bot's client ids), so the API is seen to carry the venue's id and not the bot's."""

    def submit(self, order: Order) -> OrderUpdate:
        update = super().submit(order)
        if update.venue_order_id:
            update = update._replace(venue_order_id="venue-" + order.client_order_id)
        return update


HOOKS = SimpleNamespace(
    tradefleet_strategies=hookimpl(
        lambda: [
            PluginSpec(
                kind=PluginKind.STRATEGY,
                name="tagged-brackets",
                version="1.0.0",
                factory=TaggedBrackets,
                params=NoParams,
            )
        ]
    ),
    tradefleet_brokers=hookimpl(
        lambda: [
            PluginSpec(
                kind=PluginKind.BROKER,
                name="venue-id-paper",
                version="1.0.0",
                factory=VenueIdPaper,
                params=PaperBrokerParams,
                modes=frozenset({"paper"}),
                capabilities=frozenset(
                    {
                        Capability.RESTORES_ACCOUNT,
                        Capability.VENUE_EXECUTION,
                        Capability.KNOWS_LEVERAGE,
                    }
                ),
            )
        ]
    ),
)


def _registry() -> PluginRegistry:
    registry = PluginRegistry.discover()
    registry.plugins.update(PluginRegistry.from_modules(HOOKS).plugins)
    return registry


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RuntimeClient, str]]:
    """A client of the served bot, and its address, once its bars are all handled (phase
    Stopped: the data ended, and a stopped bot still answers ListOrders and ListTrades)."""
    folder = tmp_path_factory.mktemp("explained")
    registry = _registry()
    manifest = folder / "bot.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "tradefleet.io/v1alpha1",
                "kind": "TradingBot",
                "metadata": {"name": "explained-bot"},
                "spec": {
                    "mode": "paper",
                    "strategy": {"name": "tagged-brackets"},
                    "market": {"symbols": [SYMBOL], "timeframe": "1h"},
                    "broker": {"name": "venue-id-paper", "params": {"fee_bps": 10}},
                    "capital": {"currency": "USDT", "initial": 10000},
                },
            }
        )
    )
    bot = assemble(load_manifest(manifest), registry, folder)
    journal = Journal(folder / "journal.sqlite", durable=True)
    controller = BotController(bot, journal, registry, speed=0.0, bars=BARS)
    controller.start()
    try:
        deadline = time.monotonic() + 20
        while controller.phase is not Phase.STOPPED:
            assert time.monotonic() < deadline, controller.failure or controller.phase
            assert controller.phase is not Phase.FAILED, controller.failure
            time.sleep(0.02)
        with running_server(controller) as endpoint:  # type: ignore[arg-type]
            address = f"127.0.0.1:{endpoint.port}"
            with RuntimeClient(address, timeout=5) as runtime_client:
                yield runtime_client, address
    finally:
        controller.stop()
        controller.wait(10)
        journal.close()


@pytest.fixture
def client(served: tuple[RuntimeClient, str]) -> RuntimeClient:
    return served[0]


def _raw_orders(client: RuntimeClient) -> Sequence[pb.Order]:
    """The wire messages themselves: proto3 ``optional`` presence is part of the contract."""
    stub: Any = pb_grpc.RuntimeServiceStub(client._channel)
    return list(stub.ListOrders(pb.ListOrdersRequest(include_closed=True), timeout=5).orders)


def _by_tag(client: RuntimeClient) -> dict[str, Any]:
    return {o.tag: o for o in client.list_orders(include_closed=True)}


def test_an_entry_says_its_tag_stops_fees_and_the_venue_id_after_it_filled(
    client: RuntimeClient,
) -> None:
    long_entry = _by_tag(client)["breakout"]
    assert long_entry.status == "filled" and long_entry.filled == 1.0
    assert (long_entry.stop_loss, long_entry.take_profit) == (95.0, 103.0)
    # A market order has no price of its own: it was decided at the bar's close.
    assert long_entry.price is None and long_entry.reference_price == 100.0
    # Filled at bar 1's open, 100, with the paper broker's fee of 10 bps.
    assert long_entry.average_fill_price == pytest.approx(100.0)
    assert long_entry.fees == pytest.approx(0.1)
    # The fill's status row carries no venue id; the acknowledgement's still counts.
    assert long_entry.venue_order_id == "venue-" + long_entry.client_order_id


def test_bracket_children_say_which_is_which_and_why_the_other_ended(
    client: RuntimeClient,
) -> None:
    orders = client.list_orders(include_closed=True)
    entry = _by_tag(client)["breakout"]
    children = {o.tag: o for o in orders if o.parent_id == entry.client_order_id}
    assert set(children) == {"stop_loss", "take_profit"}
    take_profit, stop_loss = children["take_profit"], children["stop_loss"]
    assert take_profit.status == "filled" and take_profit.price == 103.0
    assert take_profit.average_fill_price == pytest.approx(103.0)
    assert stop_loss.status == "cancelled" and stop_loss.filled == 0.0
    assert stop_loss.status_reason  # the engine's or the venue's words for the cancel
    assert stop_loss.fees == 0.0 and stop_loss.average_fill_price is None


def test_absent_prices_are_absent_on_the_wire(client: RuntimeClient) -> None:
    orders = _raw_orders(client)
    entry = next(o for o in orders if o.tag == "breakout")
    assert entry.HasField("stop_loss") and entry.HasField("take_profit")
    assert entry.HasField("venue_order_id") and entry.HasField("average_fill_price")
    assert not entry.HasField("price")
    # The long's stop-loss child, cancelled unfilled when its take-profit filled.
    child = next(o for o in orders if o.tag == "stop_loss" and o.parent_id == entry.client_order_id)
    # A bracket child is a stop order at the entry's stop: it carries no bracket of its own.
    assert not child.HasField("stop_loss") and not child.HasField("take_profit")
    assert not child.HasField("average_fill_price")


def test_trades_say_why_they_opened_and_closed_and_by_which_orders(
    client: RuntimeClient,
) -> None:
    by_tag = _by_tag(client)
    orders = client.list_orders(include_closed=True)
    long_trade, short_trade = client.list_trades().trades
    assert (long_trade.direction, long_trade.entry_reason, long_trade.exit_reason) == (
        1,
        "breakout",
        "take_profit",
    )
    assert long_trade.entry_order_id == by_tag["breakout"].client_order_id
    long_tp = next(
        o
        for o in orders
        if o.tag == "take_profit" and o.parent_id == by_tag["breakout"].client_order_id
    )
    assert long_trade.exit_order_id == long_tp.client_order_id
    assert (short_trade.direction, short_trade.entry_reason, short_trade.exit_reason) == (
        -1,
        "fade",
        "stop_loss",
    )
    assert short_trade.entry_order_id == by_tag["fade"].client_order_id
    short_sl = next(
        o for o in orders if o.tag == "stop_loss" and o.parent_id == by_tag["fade"].client_order_id
    )
    assert short_trade.exit_order_id == short_sl.client_order_id
    assert short_sl.status == "filled" and short_sl.price == 105.0


def test_the_cli_tables_show_the_reasons(
    served: tuple[RuntimeClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, address = served
    monkeypatch.delenv("TRADEFLEET_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # rich's width when not on a terminal
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["orders", address, "--all"]) == 0
        assert cli.main(["trades", address]) == 0
    text = out.getvalue()
    entry = _by_tag(client)["breakout"].client_order_id
    # The order details row of the entry, and the trade reasons row of the long trade.
    assert _row(text, entry, "venue-") == [
        entry,
        "breakout",
        "100.0000",  # average fill
        "0.10",  # fees
        "100.0000",  # decided at
        "95.0000",
        "103.0000",
        "venue-" + entry,
    ]
    assert _row(text, "0", "breakout") == ["0", "breakout", entry, "take_profit", entry + "-tp"]
    assert "cancelled: one-cancels-other sibling filled" in text  # the orders table's status


def _row(text: str, first: str, holding: str) -> list[str]:
    """The cells of the one table row starting with ``first`` and holding ``holding``."""
    (row,) = [
        line.split("│")[1:-1]
        for line in text.splitlines()
        if line.startswith(f"│ {first} ") and holding in line
    ]
    return [cell.strip() for cell in row]


# --- the parts, one by one ---------------------------------------------------------------------


def _journal_run(journal: Journal, run_id: str, bot: str) -> None:
    journal.start_run(
        run_id=run_id,
        bot=bot,
        mode="paper",
        currency="USDT",
        initial_capital=1000.0,
        timeframe_s=HOUR,
        config_hash="h",
        manifest={},
    )


def _fill(order_id: str, side: Side, ts: int, reason: str) -> Fill:
    return Fill(order_id, SYMBOL, side, 1.0, 100.0, 0.1, ts, "f-" + order_id, reason)


def test_the_journal_keeps_an_orders_venue_id_once_it_filled(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        _journal_run(journal, "r1", "bot")
        order = Order("o1", SYMBOL, Side.BUY, 2.0, created_ts=T0, tag="breakout")
        journal.record_order(order, OrderStatus.PENDING, T0, mark=100.0)
        journal.update_order("o1", OrderStatus.OPEN, T0, venue_order_id="V-1")
        journal.record_fill(
            _fill("o1", Side.BUY, T0 + HOUR, "breakout")._replace(price=99.0),
            Position(SYMBOL, 1.0, 99.0),
            OrderStatus.PARTIALLY_FILLED,
        )
        journal.record_fill(
            _fill("o1", Side.BUY, T0 + HOUR, "breakout")._replace(fill_id="f-2", price=101.0),
            Position(SYMBOL, 2.0, 100.0),
            OrderStatus.FILLED,
        )
        (row,) = journal.order_rows()
    finally:
        journal.close()
    # filled, fees, average price, the latest status's reason, and the ack's venue id.
    assert (row[5], row[15], row[16], row[17], row[18]) == (2.0, 0.2, 100.0, "", "V-1")
    assert (row[7], row[11], row[14]) == ("filled", "breakout", 100.0)


def test_fills_at_reads_every_run_of_the_bot_and_no_other_bot(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite")
    try:
        for run_id, bot, order_id in (("r1", "bot", "a"), ("r2", "other", "b"), ("r3", "bot", "c")):
            _journal_run(journal, run_id, bot)
            journal.record_fill(
                _fill(order_id, Side.BUY, T0, "x"), Position(SYMBOL, 1.0, 100.0), OrderStatus.FILLED
            )
        journal.record_fill(
            _fill("d", Side.SELL, T0 + HOUR, "y"), Position(SYMBOL), OrderStatus.FILLED
        )
        found = journal.fills_at("bot", [T0])
        assert journal.fills_at("bot", []) == []
    finally:
        journal.close()
    assert sorted(row[4] for row in found) == ["a", "c"]
    assert (found[0][0], found[0][1], found[0][2], found[0][3]) == (SYMBOL, T0, "buy", "x")


def _trade(direction: int, entry_reason: str = "market", exit_reason: str = "stop_loss") -> Any:
    return TradeView(
        0, SYMBOL, direction, 1.0, T0, T0 + HOUR, 100.0, 99.0, -1.0, 0.0, entry_reason, exit_reason
    )


def test_a_trade_takes_the_orders_of_its_own_side_and_reasons() -> None:
    fills = [
        (SYMBOL, T0, "buy", "market", "long-entry"),
        (SYMBOL, T0, "sell", "market", "other-short"),  # the other side at the same bar
        (SYMBOL, T0 + HOUR, "sell", "stop_loss", "long-sl"),
        (SYMBOL, T0 + HOUR, "sell", "market", "new-short"),  # same side, another reason
        ("ETHUSDT", T0 + HOUR, "sell", "stop_loss", "eth-sl"),  # another symbol
    ]
    (long_trade, short_trade) = with_order_ids([_trade(1), _trade(-1, "market", "x")], fills)
    assert (long_trade.entry_order_id, long_trade.exit_order_id) == ("long-entry", "long-sl")
    assert (short_trade.entry_order_id, short_trade.exit_order_id) == ("other-short", None)


def test_two_orders_alike_leave_the_trade_without_an_id_rather_than_a_guess() -> None:
    fills = [
        (SYMBOL, T0, "buy", "market", "first"),
        (SYMBOL, T0, "buy", "market", "second"),
        # Two fills of one order are one order.
        (SYMBOL, T0 + HOUR, "sell", "stop_loss", "sl"),
        (SYMBOL, T0 + HOUR, "sell", "stop_loss", "sl"),
    ]
    (trade,) = with_order_ids([_trade(1)], fills)
    assert (trade.entry_order_id, trade.exit_order_id) == (None, "sl")


def test_the_new_fields_cross_the_wire_and_an_older_servers_messages_read_as_unknown() -> None:
    order = OrderView(
        "o1",
        SYMBOL,
        "buy",
        "market",
        1.0,
        1.0,
        None,
        "filled",
        False,
        None,
        T0,
        tag="breakout",
        stop_loss=95.0,
        take_profit=103.0,
        reference_price=100.0,
        fees=0.1,
        average_fill_price=100.5,
        venue_order_id="V-1",
        status_reason="",
    )
    trade = replace(_trade(1), entry_order_id="o1", exit_order_id="o1-sl")
    order_message, trade_message = order_to_proto(order), trade_to_proto(trade)
    assert order_from_proto(pb.Order.FromString(order_message.SerializeToString())) == order
    assert trade_from_proto(pb.Trade.FromString(trade_message.SerializeToString())) == trade
    # An older server sends none of them: absent, not 0.0 or "".
    older = order_from_proto(pb.Order(client_order_id="o1", filled=1.0))
    assert (older.stop_loss, older.take_profit, older.reference_price) == (None, None, None)
    assert (older.average_fill_price, older.venue_order_id, older.tag) == (None, None, "")
    older_trade = trade_from_proto(pb.Trade(seq=1))
    assert (older_trade.entry_order_id, older_trade.exit_order_id) == (None, None)


def test_the_fields_of_older_releases_keep_their_numbers() -> None:
    """Only added, never renumbered: the operator and older clients decode by number."""
    order = {f.name: f.number for f in pb.Order.DESCRIPTOR.fields}
    trade = {f.name: f.number for f in pb.Trade.DESCRIPTOR.fields}
    assert order == {
        "client_order_id": 1,
        "symbol": 2,
        "side": 3,
        "order_type": 4,
        "quantity": 5,
        "filled": 6,
        "price": 7,
        "status": 8,
        "reduce_only": 9,
        "parent_id": 10,
        "created_ts": 11,
        "tag": 12,
        "stop_loss": 13,
        "take_profit": 14,
        "reference_price": 15,
        "fees": 16,
        "average_fill_price": 17,
        "venue_order_id": 18,
        "status_reason": 19,
    }
    assert trade == {
        "seq": 1,
        "symbol": 2,
        "direction": 3,
        "quantity": 4,
        "entry_ts": 5,
        "exit_ts": 6,
        "entry_price": 7,
        "exit_price": 8,
        "net_pnl": 9,
        "fees": 10,
        "entry_reason": 11,
        "exit_reason": 12,
        "entry_order_id": 13,
        "exit_order_id": 14,
        "funding": 15,
    }
