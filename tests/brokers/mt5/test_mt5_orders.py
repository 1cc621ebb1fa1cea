"""The MT5 broker placing orders on an emulated terminal: mapping, rounding, filling modes,
stops, resting orders, SL/TP as position attributes, netting and hedging accounts."""

from __future__ import annotations

import pytest

from tests.brokers.mt5.harness import Mt5Harness, fills, updates
from tests.venues.mt5 import constants as C
from tradefleet_runtime.capabilities import check_object
from tradefleet_runtime.sdk import (
    Capability,
    OrderStatus,
    OrderType,
    ReasonCode,
    Side,
    VenueExecution,
)

# Every test runs twice: on the emulator, and through the bridge in front of it.
pytestmark = pytest.mark.usefixtures("transport")


def test_submit_returns_pending_and_the_answer_follows_as_events(netting: Mt5Harness) -> None:
    order = netting.order()
    first = netting.broker.submit(order)
    assert first.status is OrderStatus.PENDING
    events = netting.settle()
    ack, fill = events
    assert ack.status is OrderStatus.OPEN and ack.venue_order_id  # type: ignore[union-attr]
    # The bot's 10,000 euros went out as 0.1 lot and came back as 10,000 euros.
    assert fill.quantity == 10_000.0 and fill.price == 1.1001  # type: ignore[union-attr]
    assert netting.wakes, "the broker wakes the runtime when it has events"
    (sent,) = netting.history_orders(order.client_order_id)
    assert sent.magic == netting.broker._magic and sent.state == C.ORDER_STATE_FILLED
    assert sent.volume_initial == 0.1


def test_the_plugin_declares_and_has_venue_execution(netting: Mt5Harness) -> None:
    assert isinstance(netting.broker, VenueExecution)
    from tradefleet_plugins.registry import tradefleet_brokers

    (spec,) = [s for s in tradefleet_brokers() if s.name == "mt5"]
    assert Capability.VENUE_EXECUTION in spec.capabilities
    assert check_object("broker", netting.broker, spec.capabilities) == []


def test_the_accounts_leverage_is_read_at_start_for_risk_plugins() -> None:
    """``knows-leverage``: the terminal's AccountInfo.leverage (what its margin is measured
    with), read when the broker connects; an account reporting 0 is unknown (None)."""
    for reported, told in ((30, 30.0), (0, None)):
        harness = Mt5Harness.netting()
        harness.venue.update_account(leverage=reported)
        try:
            harness.connect()
            assert harness.broker.account_leverage() == told
        finally:
            harness.close()
    from tradefleet_plugins.registry import tradefleet_brokers

    (spec,) = [s for s in tradefleet_brokers() if s.name == "mt5"]
    assert Capability.KNOWS_LEVERAGE in spec.capabilities


def test_symbols_are_mapped_both_ways(netting: Mt5Harness) -> None:
    order = netting.order(symbol="XAUUSD", quantity=5.0)
    events = netting.submit(order)
    (fill,) = fills(events)
    assert fill.symbol == "XAUUSD"
    (sent,) = netting.history_orders(order.client_order_id)
    assert sent.symbol == "GOLD.pro"
    assert [p.symbol for p in netting.broker.position_reports()] == ["XAUUSD"]
    assert netting.broker.instrument("XAUUSD").tick_size == 0.01


def test_a_symbol_outside_market_watch_is_selected_before_use(netting: Mt5Harness) -> None:
    assert not netting.terminal.symbol_info("GBPUSD").select
    events = netting.submit(netting.order(symbol="GBPUSD"))
    assert fills(events)
    assert netting.terminal.symbol_info("GBPUSD").select


def test_volume_rounds_down_to_the_step(netting: Mt5Harness) -> None:
    order = netting.order(quantity=12_700.0)  # 0.127 lot
    events = netting.submit(order)
    assert fills(events)[0].quantity == 12_000.0
    (sent,) = netting.history_orders(order.client_order_id)
    assert sent.volume_initial == 0.12
    tail = updates(events)[-1]
    assert tail.status is OrderStatus.CANCELLED and tail.code is ReasonCode.INVALID_QUANTITY


def test_below_the_minimum_is_refused_before_anything_is_sent(netting: Mt5Harness) -> None:
    update = netting.broker.submit(netting.order(quantity=400.0))  # 0.004 lot
    assert update.status is OrderStatus.REJECTED
    assert update.code is ReasonCode.INVALID_QUANTITY
    assert "quantity 400 rounds to nothing" in update.reason
    assert "volume step 0.01 lots (1000 units)" in update.reason
    assert netting.terminal.calls.get("order_send", 0) == 0


def test_limit_price_goes_on_the_tick(netting: Mt5Harness) -> None:
    order = netting.order(order_type=OrderType.LIMIT, price=1.0899996)
    (ack,) = netting.submit(order)
    assert ack.status is OrderStatus.OPEN  # type: ignore[union-attr]
    (resting,) = netting.terminal.orders_get()
    assert resting.price_open == 1.08999 and resting.comment == order.client_order_id


def test_filling_mode_follows_the_symbol(netting: Mt5Harness) -> None:
    order = netting.order(symbol="USDJPY")  # IOC only
    assert fills(netting.submit(order))
    (sent,) = netting.history_orders(order.client_order_id)
    assert sent.type_filling == C.ORDER_FILLING_IOC
    assert netting.terminal.calls["order_send"] == 1


def test_refused_filling_mode_falls_back_to_the_next_allowed(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [10030])
    order = netting.order()  # EURUSD: FOK, then IOC
    assert fills(netting.submit(order))
    (sent,) = netting.history_orders(order.client_order_id)
    assert sent.type_filling == C.ORDER_FILLING_IOC


def test_no_filling_mode_left_is_a_typed_rejection(netting: Mt5Harness) -> None:
    netting.terminal.faults.script("order_send", [10030, 10030])
    (update,) = netting.submit(netting.order())
    assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert update.code is ReasonCode.VENUE_REJECTED  # type: ignore[union-attr]
    assert netting.history_orders() == []


def test_stops_inside_the_stops_level_are_refused(netting: Mt5Harness) -> None:
    # GOLD.pro: stops level 50 points = 0.50; bid 2650.00
    order = netting.order(symbol="XAUUSD", quantity=5.0, stop_loss=2649.8)
    (update,) = netting.submit(order)
    assert update.status is OrderStatus.REJECTED  # type: ignore[union-attr]
    assert update.code is ReasonCode.INVALID_PRICE  # type: ignore[union-attr]
    assert "trade_stops_level" in update.reason  # type: ignore[union-attr]
    assert netting.history_orders() == []


def test_resting_order_fills_later_and_is_reported_once(netting: Mt5Harness) -> None:
    order = netting.order(order_type=OrderType.LIMIT, price=1.0990)
    netting.submit(order)
    assert netting.settle() == []
    netting.terminal.set_price("EURUSD", 1.0985, 1.0986)
    (fill,) = netting.settle()
    assert fill.client_order_id == order.client_order_id and fill.price == 1.0986  # type: ignore[union-attr]
    assert netting.settle() == []
    assert netting.broker.open_orders() == []


def test_cancel_removes_a_resting_order(netting: Mt5Harness) -> None:
    order = netting.order(order_type=OrderType.LIMIT, price=1.0990)
    netting.submit(order)
    assert netting.broker.cancel(order.client_order_id) is None  # answered by an event
    (update,) = netting.settle()
    assert update.status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert update.code is ReasonCode.CANCELLED_BY_USER  # type: ignore[union-attr]
    assert netting.terminal.orders_get() == ()


def test_amend_moves_a_resting_order(netting: Mt5Harness) -> None:
    order = netting.order(order_type=OrderType.LIMIT, price=1.0990)
    netting.submit(order)
    assert netting.broker.amend(order.client_order_id, None, 1.0980) is None
    (update,) = netting.settle()
    assert update.status is OrderStatus.OPEN  # type: ignore[union-attr]
    assert netting.terminal.orders_get()[0].price_open == 1.0980


def test_cancel_all_cancels_the_symbols_resting_orders(netting: Mt5Harness) -> None:
    a = netting.order(order_type=OrderType.LIMIT, price=1.0990)
    b = netting.order(order_type=OrderType.LIMIT, price=1.0980)
    c = netting.order(symbol="USDJPY", order_type=OrderType.LIMIT, price=149.0)
    for order in (a, b, c):
        netting.submit(order)
    netting.broker.cancel_all("EURUSD")
    cancelled = {u.client_order_id for u in updates(netting.settle())}
    assert cancelled == {a.client_order_id, b.client_order_id}
    assert [o.symbol for o in netting.terminal.orders_get()] == ["USDJPY"]


def test_sl_tp_are_position_attributes_and_report_as_the_children(netting: Mt5Harness) -> None:
    order = netting.order(symbol="XAUUSD", quantity=5.0, stop_loss=2640.0, take_profit=2670.0)
    netting.submit(order)
    (position,) = netting.terminal.positions_get()
    assert (position.sl, position.tp) == (2640.0, 2670.0)
    netting.terminal.set_price("GOLD.pro", 2639.0)
    fill, sibling = netting.settle()
    assert fill.client_order_id == f"{order.client_order_id}-sl"  # type: ignore[union-attr]
    assert fill.reason == "stop_loss"  # type: ignore[union-attr]
    assert sibling.client_order_id == f"{order.client_order_id}-tp"  # type: ignore[union-attr]
    assert sibling.code is ReasonCode.CANCELLED_BY_VENUE  # type: ignore[union-attr]


def test_amend_and_cancel_of_a_child_change_the_position(netting: Mt5Harness) -> None:
    order = netting.order(symbol="XAUUSD", quantity=5.0, stop_loss=2640.0, take_profit=2670.0)
    netting.submit(order)
    netting.broker.amend(f"{order.client_order_id}-sl", None, 2645.004)
    netting.broker.cancel(f"{order.client_order_id}-tp")
    amended, cancelled = netting.settle()
    assert amended.status is OrderStatus.OPEN  # type: ignore[union-attr]
    assert cancelled.status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    (position,) = netting.terminal.positions_get()
    assert (position.sl, position.tp) == (2645.0, 0.0)


def test_netting_reduce_only_is_capped_at_the_position(netting: Mt5Harness) -> None:
    netting.submit(netting.order(quantity=10_000.0))
    events = netting.submit(netting.order(Side.SELL, quantity=30_000.0, reduce_only=True))
    assert fills(events)[0].quantity == 10_000.0
    assert updates(events)[-1].code is ReasonCode.REDUCE_ONLY
    assert netting.terminal.positions_get() == ()


def test_reduce_only_without_a_position_is_refused(netting: Mt5Harness) -> None:
    (update,) = netting.submit(netting.order(Side.SELL, reduce_only=True))
    assert update.code is ReasonCode.REDUCE_ONLY  # type: ignore[union-attr]


def test_hedging_closes_positions_by_ticket(hedging: Mt5Harness) -> None:
    hedging.submit(hedging.order(quantity=10_000.0))
    hedging.submit(hedging.order(quantity=20_000.0))
    events = hedging.submit(hedging.order(Side.SELL, quantity=25_000.0))
    assert [f.quantity for f in fills(events)] == [10_000.0, 15_000.0]
    (left,) = hedging.terminal.positions_get()
    assert (left.type, left.volume) == (C.POSITION_TYPE_BUY, 0.05)  # no hedge was opened
    assert [p.quantity for p in hedging.broker.position_reports()] == [5_000.0]


def test_hedging_reversal_closes_then_opens(hedging: Mt5Harness) -> None:
    hedging.submit(hedging.order(quantity=10_000.0))
    events = hedging.submit(hedging.order(Side.SELL, quantity=30_000.0))
    assert [f.quantity for f in fills(events)] == [10_000.0, 20_000.0]
    (left,) = hedging.terminal.positions_get()
    assert (left.type, left.volume) == (C.POSITION_TYPE_SELL, 0.2)
    assert [p.quantity for p in hedging.broker.position_reports()] == [-20_000.0]


def test_hedging_sl_tp_per_position(hedging: Mt5Harness) -> None:
    first = hedging.order(symbol="XAUUSD", quantity=5.0, stop_loss=2640.0)
    second = hedging.order(symbol="XAUUSD", quantity=5.0, stop_loss=2600.0)
    hedging.submit(first)
    hedging.submit(second)
    hedging.terminal.set_price("GOLD.pro", 2630.0)
    (fill,) = hedging.settle()
    assert fill.client_order_id == f"{first.client_order_id}-sl"  # type: ignore[union-attr]
    (left,) = hedging.terminal.positions_get()
    assert left.sl == 2600.0


def test_a_client_order_id_never_goes_out_twice(netting: Mt5Harness) -> None:
    order = netting.order()
    netting.submit(order)
    again = netting.broker.submit(order)
    assert again.code is ReasonCode.DUPLICATE_CLIENT_ID
    assert len(netting.history_orders(order.client_order_id)) == 1


def test_a_resting_order_removed_at_the_terminal_is_reported(netting: Mt5Harness) -> None:
    order = netting.order(order_type=OrderType.LIMIT, price=1.0990)
    netting.submit(order)
    (resting,) = netting.terminal.orders_get()
    done = netting.terminal.order_send({"action": C.TRADE_ACTION_REMOVE, "order": resting.ticket})
    assert done.retcode == C.TRADE_RETCODE_DONE  # removed by a person in the terminal
    (update,) = netting.settle()
    assert update.status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert update.code is ReasonCode.CANCELLED_BY_VENUE  # type: ignore[union-attr]
    assert netting.broker.open_orders() == []


def test_cancel_all_clears_the_positions_sl_tp_children(netting: Mt5Harness) -> None:
    order = netting.order(symbol="XAUUSD", quantity=5.0, stop_loss=2640.0, take_profit=2670.0)
    netting.submit(order)
    netting.broker.cancel_all(None)
    cancelled = {u.client_order_id for u in updates(netting.settle())}
    assert cancelled == {f"{order.client_order_id}-sl", f"{order.client_order_id}-tp"}
    (position,) = netting.terminal.positions_get()
    assert (position.sl, position.tp) == (0.0, 0.0)


def test_amending_a_resting_orders_volume_is_refused_and_changes_nothing(
    netting: Mt5Harness,
) -> None:
    order = netting.order(order_type=OrderType.LIMIT, price=1.0990)
    netting.submit(order)
    netting.broker.amend(order.client_order_id, 20_000.0, None)
    (update,) = netting.settle()
    assert update.code is ReasonCode.VENUE_REJECTED  # type: ignore[union-attr]
    # Refused, not ended: the order still works at the terminal, so it stays OPEN.
    assert update.status is OrderStatus.OPEN  # type: ignore[union-attr]
    assert netting.terminal.orders_get()[0].volume_current == 0.1


def test_closing_a_bracketed_position_cancels_its_children(hedging: Mt5Harness) -> None:
    entry = hedging.order(symbol="XAUUSD", quantity=5.0, stop_loss=2640.0)
    hedging.submit(entry)
    events = hedging.submit(hedging.order(Side.SELL, symbol="XAUUSD", quantity=5.0))
    assert fills(events)
    child = updates(events)[-1]
    assert child.client_order_id == f"{entry.client_order_id}-sl"
    assert child.status is OrderStatus.CANCELLED
    assert hedging.settle() == []


def test_built_through_the_registry_from_params() -> None:
    from tradefleet_runtime.sdk import BrokerContext, PluginKind, PluginRegistry

    registry = PluginRegistry.discover()
    broker = registry.build(
        PluginKind.BROKER,
        "mt5",
        {"terminal": "tests.venues.mt5:MT5Terminal", "symbols": {"XAUUSD": "GOLD.pro"}},
        ["broker"],
    )
    broker.connect(BrokerContext("default/registry", "live", ("EURUSD",), "USD", 1e4))
    try:
        # In units: 0.01 lot of 100,000 euros.
        instrument = broker.instrument("EURUSD")
        assert (instrument.lot_step, instrument.min_quantity) == (1_000.0, 1_000.0)
        assert (instrument.max_quantity, instrument.contract_size) == (50_000_000.0, 100_000.0)
        assert isinstance(broker, VenueExecution) and broker.is_connected()
    finally:
        broker.close()


def test_an_amend_to_a_volume_below_the_step_is_refused_naming_the_step(
    netting: Mt5Harness,
) -> None:
    # Bad input is named as such, before MT5's own "no volume change" limit.
    order = netting.order(order_type=OrderType.LIMIT, price=1.0990)
    netting.submit(order)
    netting.broker.amend(order.client_order_id, 400.0, None)  # 0.004 lot
    (update,) = netting.settle()
    assert update.code is ReasonCode.INVALID_QUANTITY  # type: ignore[union-attr]
    assert "volume step 0.01 lots (1000 units)" in update.reason  # type: ignore[union-attr]
    assert update.status is OrderStatus.OPEN  # type: ignore[union-attr]
    assert netting.terminal.orders_get()[0].volume_current == 0.1


def test_a_working_sl_tp_child_is_found_by_its_client_id(netting: Mt5Harness) -> None:
    order = netting.order(symbol="XAUUSD", quantity=5.0, stop_loss=2640.0, take_profit=2670.0)
    netting.submit(order)
    (position,) = netting.terminal.positions_get()
    sl = netting.broker.query_order(f"{order.client_order_id}-sl")
    tp = netting.broker.query_order(f"{order.client_order_id}-tp")
    assert sl is not None and tp is not None
    assert (sl.status, sl.order_type, sl.side, sl.price) == (
        OrderStatus.OPEN,
        OrderType.STOP,
        Side.SELL,
        2640.0,
    )
    assert (tp.status, tp.order_type, tp.side, tp.price) == (
        OrderStatus.OPEN,
        OrderType.LIMIT,
        Side.SELL,
        2670.0,
    )
    assert sl.quantity == tp.quantity == 5.0 and sl.filled_quantity == 0.0  # ounces
    assert sl.symbol == "XAUUSD" and sl.venue_order_id == str(position.ticket)
    assert sl.reduce_only
    # Cancelled (the position no longer carries the level): no longer a working child.
    netting.broker.cancel(f"{order.client_order_id}-tp")
    netting.settle()
    assert netting.broker.query_order(f"{order.client_order_id}-tp") is None
    # Fired: the SL is then the terminal's close, a filled order.
    netting.terminal.set_price("GOLD.pro", 2639.0)
    netting.settle()
    fired = netting.broker.query_order(f"{order.client_order_id}-sl")
    assert fired is None or fired.status is OrderStatus.FILLED
