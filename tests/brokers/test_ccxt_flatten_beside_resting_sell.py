"""An emergency flatten beside the strategy's resting sell, through the real ccxt broker against
the fake venues: the flatten's close waits for the venue to confirm the cancel of every other
order that would reduce the same position. Walkthrough W21.

Binance spot, an account holding the person's own coins beside what the bot bought: the bot is
long, its strategy rests a limit sell of the whole position, a person stops it with flatten.
The venue takes the cancel late (a ``latency`` fault on DELETE /api/v3/order: the cancel is
executed only once the delay is over), so the sell works at the venue meanwhile. Checked at
the venue itself (every order it takes is seen as the matching engine takes it): no market sell
while the limit sell is open; once its cancel is done, one sell of exactly what the bot holds;
the person's coins untouched. Then the limit sell fills while its cancel is on its way: nothing
else is sold. The same on Binance USDⓈ-M and Bybit: the close after the cancel, flat, never
reversed. On spot again: a cancel whose answer is lost, held past the broker's timeout or
refused with a 503 keeps the close waiting; a sell part-filled before its cancel lands leaves
one close of the rest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.harness import BOT, QUANTITY, START_PRICE, VenueHarness, harness_for
from tests.runtime.helpers import Scripted, start_test_run
from tests.venues.binance.state import Candle
from tradefleet_runtime.contracts import StrategyContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import Bar, OrderStatus, OrderType

PERSONS = Decimal("0.5")  # the person's own BTC on the account the bot trades
ASK = 55_000.0  # the strategy's resting limit sell
CANCEL_PATH = {
    "binance-spot": "/api/v3/order",
    "binance-usdm": "/fapi/v1/order",
    "bybit": "/v5/order/cancel",
}
CANCEL_METHOD = {"binance-spot": "DELETE", "binance-usdm": "DELETE", "bybit": "POST"}
DELAY_MS = 900  # under the broker's 1500 ms timeout: the cancel is answered, late


def _sell_the_position(ctx: StrategyContext, bar: Bar) -> None:
    held = ctx.position(bar.symbol).quantity
    assert held > 0.0
    ctx.sell(bar.symbol, held, order_type=OrderType.LIMIT, price=ASK)


def _until(engine: Engine, done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}; {engine.open_orders()}"
        engine.pump()
        engine.send_queued()
        time.sleep(0.02)


def _pump_for(engine: Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        engine.pump()
        engine.send_queued()
        time.sleep(0.02)


def _events(journal: Journal, kind: str) -> list[tuple[str, dict[str, Any]]]:
    rows = journal.query("SELECT message, data FROM events WHERE kind = ? ORDER BY id", kind)
    return [(str(message), json.loads(data) if data else {}) for message, data in rows]


def _long_with_a_resting_sell(harness: VenueHarness) -> tuple[Engine, Journal, str]:
    """A live engine on the harness's broker: a market buy of ``QUANTITY`` at the first bar,
    then a limit sell at ``ASK`` of all it holds at the second, open at the venue."""
    journal = Journal(":memory:")
    start_test_run(journal, "live", bot=BOT, mode="live", timeframe_s=60)
    symbol = harness.symbol
    config = EngineConfig(BOT, "live", (symbol,), 60, 100_000.0)
    strategy = Scripted({0: lambda ctx, _bar: ctx.buy(symbol, QUANTITY), 1: _sell_the_position})
    engine = Engine(config, strategy, harness.broker, journal, venue=harness.broker)
    now = int(time.time()) // 60 * 60 - 120
    px = START_PRICE
    engine.run([Bar(symbol, 60, now, px, px, px, px, 1.0)])
    _until(engine, lambda: engine.position(symbol).quantity > 0.0, "the buy's fill")
    engine.run([Bar(symbol, 60, now + 60, px, px, px, px, 1.0)])
    [sell] = [o.client_order_id for o in engine.open_orders()]

    def rests() -> bool:
        report = harness.broker.query_order(sell)
        return report is not None and report.status is OrderStatus.OPEN

    _until(engine, rests, "the limit sell open at the venue")
    return engine, journal, sell


# -- what the venue takes --------------------------------------------------------------------


def _matching(harness: VenueHarness) -> Any:
    """The fake venue's matching engine of the harness's market (it has ``new_order``)."""
    if harness.name == "bybit":
        return harness.fake.state
    return harness.fake.state.spot if harness.market == "spot" else harness.fake.state.usdm


def _is_open(harness: VenueHarness, cid: str) -> bool:
    if harness.name == "bybit":
        orders = [o for o in harness.fake.state.orders.values() if o.link_id == cid]
    else:
        orders = [o for o in _matching(harness).orders.values() if o.client_order_id == cid]
    return any(o.is_open for o in orders)


def _venue_position(harness: VenueHarness) -> Decimal:
    """The account's signed position at the venue (spot: the bot's coins, the person's not
    counted)."""
    account = harness.fake.state.accounts[harness.fake.api_key]
    if harness.spot:
        free, locked = account.spot_free.get("BTC", 0), account.spot_locked.get("BTC", 0)
        return Decimal(free + locked) - PERSONS
    if harness.name == "bybit":
        return Decimal(sum((p.size for p in account.positions.values()), Decimal(0)))
    position = account.positions.get(harness.symbol)
    return Decimal(0) if position is None else Decimal(position.amount)


@dataclass
class Taken:
    """An order the venue's matching engine took: side, type, quantity, reduce-only, whether
    the strategy's limit sell was open at that instant, and the venue's position after it."""

    side: str
    type: str
    quantity: Decimal
    reduce_only: bool
    sell_open: bool
    position_after: Decimal


def _watch(harness: VenueHarness, monkeypatch: pytest.MonkeyPatch, sell: str) -> list[Taken]:
    """Every order the fake venue's matching engine takes from now on, as it takes it (under
    the venue's lock: nothing else moves meanwhile)."""
    engine = _matching(harness)
    taken: list[Taken] = []
    new_order = engine.new_order

    def watched(account: Any, params: dict[str, str], *args: Any, **kwargs: Any) -> Any:
        sell_open = _is_open(harness, sell)
        try:
            return new_order(account, params, *args, **kwargs)
        finally:
            taken.append(
                Taken(
                    params.get("side", "").upper(),
                    (params.get("type") or params.get("orderType", "")).upper(),
                    Decimal(params.get("quantity") or params.get("qty") or "0"),
                    params.get("reduceOnly", "false").lower() == "true",
                    sell_open,
                    _venue_position(harness),
                )
            )

    monkeypatch.setattr(engine, "new_order", watched)
    return taken


def _sells(taken: list[Taken]) -> list[Taken]:
    return [t for t in taken if t.side == "SELL"]


@contextmanager
def _venue(name: str, tmp_path: Path) -> Iterator[VenueHarness]:
    """The fake venue; on spot, an account holding USDT and ``PERSONS`` BTC of the person's
    own (a spot market knows no reduce-only: a sell beyond the bot's coins sells them)."""
    params: dict[str, Any] = {"rate_limit_ms": 10} if name == "binance-spot" else {}
    with harness_for(name, tmp_path, **params) as harness:
        assert isinstance(harness, VenueHarness)
        if harness.spot:
            with harness.fake.state.lock:
                harness.fake.state.accounts[harness.fake.api_key].spot_free["BTC"] = PERSONS
        yield harness


def _venue_status(harness: VenueHarness, cid: str) -> OrderStatus | None:
    report = harness.broker.query_order(cid)
    return None if report is None else report.status


def _flat(harness: VenueHarness, engine: Engine) -> Callable[[], bool]:
    return lambda: engine.position(harness.symbol).quantity == 0.0 and not engine.open_orders()


def _btc(harness: VenueHarness) -> Decimal:
    """The spot account's whole BTC balance (free and held by orders): the person's and the
    bot's."""
    with harness.fake.state.lock:
        account = harness.fake.state.accounts[harness.fake.api_key]
        return Decimal(account.spot_free.get("BTC", 0) + account.spot_locked.get("BTC", 0))


def _at(harness: VenueHarness) -> Decimal:
    with harness.fake.state.lock:
        return _venue_position(harness)


VENUES = ("binance-spot", "binance-usdm", "bybit")


# -- 1 and 2: Binance spot, Binance USDⓈ-M, Bybit --------------------------------------------


@pytest.mark.parametrize("venue", VENUES)
def test_the_close_goes_once_the_resting_sells_cancel_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, venue: str
) -> None:
    with _venue(venue, tmp_path) as harness:
        engine, journal, sell = _long_with_a_resting_sell(harness)
        held = engine.position(harness.symbol).quantity
        assert _at(harness) == Decimal(str(held))
        with harness.fake.state.lock:
            assert _is_open(harness, sell)  # the watch finds the sell at the venue
        taken = _watch(harness, monkeypatch, sell)
        harness.fake.faults.inject(
            "latency", path=CANCEL_PATH[venue], method=CANCEL_METHOD[venue], delay_ms=DELAY_MS
        )
        assert engine.halt("alice", "incident", flatten=True)
        _pump_for(engine, DELAY_MS / 1000 / 2)  # the cancel is on its way, not done
        assert _venue_status(harness, sell) is OrderStatus.OPEN
        assert _sells(taken) == [], "a sell went while the resting sell was open"
        assert journal.flatten_owed(BOT) == ("alice", "incident")
        [(message, flattened)] = _events(journal, "flattened")
        assert flattened["waiting"] == {harness.symbol: [sell]}, message
        _until(engine, _flat(harness, engine), "flat")
        _pump_for(engine, 0.5)
        assert _venue_status(harness, sell) is OrderStatus.CANCELLED
        [close] = _sells(taken)
        assert close.type == "MARKET" and not close.sell_open
        assert close.quantity == Decimal(str(held))
        assert all(t.position_after >= 0 for t in taken)  # never reversed
        assert _at(harness) == 0  # flat; on spot the person's coins untouched
        assert engine.position(harness.symbol).quantity == 0.0
        assert journal.flatten_owed(BOT) is None
        assert not _events(journal, "flatten_failed")


@pytest.mark.parametrize("venue", VENUES)
def test_a_resting_sell_filled_before_its_cancel_landed_leaves_nothing_to_sell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, venue: str
) -> None:
    with _venue(venue, tmp_path) as harness:
        engine, journal, sell = _long_with_a_resting_sell(harness)
        taken = _watch(harness, monkeypatch, sell)
        harness.fake.faults.inject(
            "latency", path=CANCEL_PATH[venue], method=CANCEL_METHOD[venue], delay_ms=DELAY_MS
        )
        assert engine.halt("alice", "incident", flatten=True)
        # The engine sends what it queued; the cancel reaches the venue, held at its door.
        _pump_for(engine, 0.25)
        harness.trade_through(ASK + 500)  # the resting sell fills before its cancel lands
        assert _at(harness) == 0, "flat no more: a close went beside the resting sell"
        _until(engine, _flat(harness, engine), "flat")
        _pump_for(engine, 1.0)  # whatever the answer to the late cancel brings
        assert _venue_status(harness, sell) is OrderStatus.FILLED
        assert _sells(taken) == [], "a sell went beside the resting sell"
        assert _at(harness) == 0  # flat, never reversed; on spot the person's coins untouched
        assert engine.position(harness.symbol).quantity == 0.0
        assert journal.flatten_owed(BOT) is None


# -- spot: the cancel's answer lost or refused, the sell part-filled --------------------------


CANCEL_FAULTS: dict[str, dict[str, Any]] = {
    # executed, its answer never comes: the broker's next try hears "unknown order"
    "accept_then_timeout": {"hold_s": 3},
    # held unexecuted past the broker's timeout: asked again at the next poll
    "timeout": {"hold_s": 3},
    # the venue's edge answers 503 twice: nothing executed
    "server_error": {"status": 503, "times": 2},
}


@pytest.mark.parametrize("fault", sorted(CANCEL_FAULTS))
def test_spot_a_cancel_unanswered_or_refused_keeps_the_close_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    with _venue("binance-spot", tmp_path) as harness:
        engine, journal, sell = _long_with_a_resting_sell(harness)
        held = Decimal(str(engine.position(harness.symbol).quantity))
        taken = _watch(harness, monkeypatch, sell)
        params = dict(CANCEL_FAULTS[fault])
        times = params.pop("times", 1)
        harness.fake.faults.inject(
            fault, path=CANCEL_PATH["binance-spot"], method="DELETE", times=times, **params
        )
        assert engine.halt("alice", "incident", flatten=True)
        _until(engine, _flat(harness, engine), "flat", timeout=20.0)
        _pump_for(engine, 0.5)
        assert _venue_status(harness, sell) is OrderStatus.CANCELLED
        [close] = _sells(taken)
        assert close.type == "MARKET" and not close.sell_open
        assert close.quantity == held
        assert _btc(harness) == PERSONS
        assert journal.flatten_owed(BOT) is None


def test_spot_a_sell_part_filled_before_its_cancel_landed_leaves_one_close_of_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _venue("binance-spot", tmp_path) as harness:
        engine, journal, sell = _long_with_a_resting_sell(harness)
        held = Decimal(str(engine.position(harness.symbol).quantity))
        taken = _watch(harness, monkeypatch, sell)
        harness.fake.faults.inject(
            "latency", path=CANCEL_PATH["binance-spot"], method="DELETE", delay_ms=DELAY_MS
        )
        assert engine.halt("alice", "incident", flatten=True)
        _pump_for(engine, 0.25)
        part = Decimal("0.004")
        top, last = Decimal(str(ASK + 500)), Decimal(str(START_PRICE))
        with harness.fake.state.lock:
            spot = harness.fake.state.spot
            [order] = [o for o in spot.orders.values() if o.client_order_id == sell]
            order.fill_cap = part
            # A spike through the sell, back at once: 0.004 of it fills; its cancel lands after.
            spot.apply_candle(harness.symbol, Candle(spot.now, last, top, last, last))
        _until(engine, _flat(harness, engine), "flat")
        _pump_for(engine, 0.5)
        [close] = _sells(taken)
        assert close.type == "MARKET" and not close.sell_open
        assert close.quantity == held - part  # the rest, once
        assert _btc(harness) == PERSONS
        assert journal.flatten_owed(BOT) is None


# -- spot: the guards the flatten keeps beside its close -------------------------------------
