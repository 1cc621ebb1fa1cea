"""A bracketed limit entry part-fills, the bot is killed (SIGKILL: no stop policy), and while
it is down the rest of the entry fills and the venue's stop fires; then the bot restarts
(docs/live-crypto.md "Brackets").

Against the fake Binance USDⓈ-M and Bybit linear through the real ccxt and a real
``BotSession`` restart (``tests/brokers/ccxt_restart_life``). A limit buy of 1.0 at 49,000
(market 50,000) with its stop-loss at 47,000 and take-profit at 53,000 rests; 0.4 fills and
the broker places its children for 0.4. A part of the entry the bracket did not cover when
its child filled is closed at market at the restart (``bracket_spent``, once: a later restart
never again), as the running bot closes a part that fills after its bracket ended; a stop the
venue ended after a part of it executed is said (``stop_cancelled``) at the restart as while
running, and its take-profit is cancelled in both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.brokers.ccxt_restart_life import (
    Killed,
    bot_broker,
    hand_to_a_bot,
    hourly_bars,
    life,
    until,
)
from tests.brokers.harness import SYMBOL, VenueHarness, harness_for
from tests.runtime.helpers import Scripted
from tests.venues.binance.state import Candle as BinanceCandle
from tests.venues.bybit.state import Candle as BybitCandle
from tradefleet_runtime.brackets import BRACKET_SPENT_TAG
from tradefleet_runtime.engine.engine import Engine
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.reconcile import spent_close_id
from tradefleet_runtime.sdk import OrderStatus, OrderType, Side
from tradefleet_runtime.session import BotSession

LIMIT, STOP, TARGET = 49_000.0, 47_000.0, 53_000.0
CRASH = 46_500.0  # where the market falls while the bot is down: through the stop
EXCHANGE = {"binance-usdm": "binanceusdm", "bybit": "bybit"}
VENUES = sorted(EXCHANGE)


# -- the venue (fake Binance USDⓈ-M or Bybit) ------------------------------------------------


def _fill_entry(harness: VenueHarness, cid: str, quantity: float | None) -> None:
    """The venue fills ``quantity`` more of the resting buy ``cid`` (None: all of its rest) at
    its limit."""
    state = harness.fake.state
    top, low = Decimal("50000"), Decimal(str(LIMIT))
    with state.lock:
        if harness.name == "bybit":
            [order] = [o for o in state.orders.values() if o.link_id == cid and o.is_open]
            if quantity is not None:
                state._fill(order, Decimal(str(quantity)), order.price, True)
            else:
                state.apply_candle(SYMBOL, BybitCandle(state.now, top, top, low, top))
            return
        usdm = state.usdm
        [order] = [o for o in usdm.orders.values() if o.client_order_id == cid and o.is_open]
        if quantity is not None:
            order.fill_cap = order.executed_qty + Decimal(str(quantity))
        usdm.apply_candle(SYMBOL, BinanceCandle(usdm.now, top, top, low, top))


def _crash(harness: VenueHarness, stop_fills: float | None = None) -> None:
    """The market falls to ``CRASH``: the venue's stop triggers. ``stop_fills``: its market
    order executes only that much and the venue ends the rest (Binance ``EXPIRED``, Bybit
    ``PartiallyFilledCanceled``: a thin book), a partial close at the venue."""
    state = harness.fake.state
    price = Decimal(str(CRASH))
    bybit = harness.name == "bybit"
    engine: Any = state if bybit else state.usdm
    with state.lock:
        if stop_fills is not None:
            engine._continue_partial_markets = lambda _symbol, _price: []
            if bybit:
                for order in state.orders.values():
                    if order.status == "Untriggered" and "-sl" in order.link_id:
                        order.fill_cap = Decimal(str(stop_fills))
            else:
                placed = engine.new_order

                def capped(
                    account: Any, params: Any, fraction: Any = None, dry: bool = False
                ) -> Any:
                    if "-sl" in params.get("newClientOrderId", ""):
                        fraction = Decimal(str(stop_fills))
                    return placed(account, params, fraction, dry)

                engine.new_order = capped
        if bybit:
            state.apply_candle(SYMBOL, BybitCandle(state.now, price, price, price, price))
        else:
            engine.apply_candle(SYMBOL, BinanceCandle(engine.now, price, price, price, price))
        if stop_fills is not None:
            if bybit:
                for order in list(state.partial_markets[SYMBOL].values()):
                    state.partial_markets[SYMBOL].pop(order.order_id)
                    state._close(order, "PartiallyFilledCanceled")
            else:
                for order in list(engine.open_markets[SYMBOL].values()):
                    engine._unrest(order)
                    order.status = "EXPIRED"


def _venue_position(harness: VenueHarness) -> float:
    state = harness.fake.state
    with state.lock:
        if harness.name == "bybit":
            account = state.accounts[harness.fake.api_key]
            return float(state.position(account, SYMBOL, 0).size)
        held = state.accounts[harness.fake.api_key].positions.get(SYMBOL)
        return float(held.amount) if held is not None else 0.0


def _venue_orders_of(harness: VenueHarness, cid: str) -> int:
    """How many orders of client id ``cid`` the venue ever took."""
    state = harness.fake.state
    with state.lock:
        if harness.name == "bybit":
            return sum(1 for o in state.orders.values() if o.link_id == cid)
        return sum(1 for o in state.usdm.orders.values() if o.client_order_id == cid)


# -- the bot ---------------------------------------------------------------------------------


def _buy(ctx: Any, _bar: Any) -> None:
    ctx.buy(
        SYMBOL, 1.0, order_type=OrderType.LIMIT, price=LIMIT, stop_loss=STOP, take_profit=TARGET
    )


def _first_life(
    tmp_path: Path,
    harness: VenueHarness,
    *,
    seen_before_kill: float,
    while_running: Callable[[BotSession, Engine, Journal, str], None] | None = None,
) -> str:
    """Life 1: the bracketed entry rests, 0.4 fills (and, with ``seen_before_kill`` 1.0, the
    rest too) and the bot sees its children at that size; ``while_running`` (when given) acts
    on the running bot; killed. The entry's id."""
    entries: list[str] = []

    def part_fill_then_die(session: BotSession, engine: Engine, journal: Journal) -> None:
        [entry] = [o.client_order_id for o in engine.open_orders() if o.stop_loss]
        entries.append(entry)
        broker = bot_broker(session)

        def children() -> list[tuple[str, float] | None]:
            reports = [broker.query_order(f"{entry}-{role}") for role in ("sl", "tp")]
            return [None if r is None else (r.status.value, r.quantity) for r in reports]

        _fill_entry(harness, entry, 0.4)
        if seen_before_kill > 0.4:
            until(engine, lambda: engine.position(SYMBOL).quantity > 0.3, "the first part")
            _fill_entry(harness, entry, None)
        size = ("open", seen_before_kill)
        until(engine, lambda: children() == [size, size], "the children at the venue")
        if while_running is not None:
            while_running(session, engine, journal, entry)
        raise Killed

    life(
        tmp_path,
        harness,
        hourly_bars(3)[:1],
        part_fill_then_die,
        strategy=Scripted({0: _buy}),
        exchange=EXCHANGE[harness.name],
        market_type="linear",
        initial=50_000,
    )
    [entry] = entries
    return entry


def _restart(tmp_path: Path, harness: VenueHarness, step: Callable[..., None]) -> None:
    life(
        tmp_path,
        harness,
        hourly_bars(3)[:2],
        step,
        strategy=Scripted(),
        exchange=EXCHANGE[harness.name],
        market_type="linear",
        initial=50_000,
    )


def _look(harness: VenueHarness, seen: dict[str, Any]) -> Callable[..., None]:
    """A restarted life's step: what the bot holds and says once its reconciliation had up
    to 5 s to act, into ``seen``."""

    def look(session: BotSession, engine: Engine, journal: Journal) -> None:
        broker = bot_broker(session)
        deadline = time.monotonic() + 5.0
        while True:
            engine.pump()
            engine.send_queued()
            held = engine.position(SYMBOL).quantity
            stops = _working_stops(engine, broker.query_order)
            if abs(held) < 1e-9 or stops or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        seen["held"] = held
        seen["venue_held"] = _venue_position(harness)
        seen["stops"] = stops
        seen["degraded"] = engine.degraded_reason
        seen.update(_journaled(journal))

    return look


def _journaled(journal: Journal) -> dict[str, Any]:
    events = journal.query("SELECT kind, message FROM events ORDER BY rowid")
    return {
        "events": [(str(kind), str(message)) for kind, message in events],
        "fills": journal.query("SELECT fill_id, client_order_id, quantity, reason FROM fills"),
        "exits": [str(r) for (r,) in journal.query("SELECT exit_reason FROM trades")],
    }


def _journey(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    *,
    seen_before_kill: float,
    stop_fills: float | None = None,
    killed_at_restart: bool = False,
) -> dict[str, Any]:
    """Life 1 (``_first_life``); while down the entry's rest fills and the market falls
    through the stop; life 2 looks (``_look``). ``killed_at_restart``: life 2 is killed as
    soon as its start-up is done (what it sent at the restart not seen filled), and a life 3
    looks instead."""
    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        hand_to_a_bot(harness, monkeypatch)
        entry = _first_life(tmp_path, harness, seen_before_kill=seen_before_kill)
        if seen_before_kill < 1.0:
            _fill_entry(harness, entry, None)  # the rest fills while the bot is down
        _crash(harness, stop_fills)
        seen: dict[str, Any] = {"entry": entry}
        if killed_at_restart:

            def die(_session: BotSession, _engine: Engine, _journal: Journal) -> None:
                raise Killed

            _restart(tmp_path, harness, die)
        _restart(tmp_path, harness, _look(harness, seen))
        seen["venue_closes"] = _venue_orders_of(harness, spent_close_id(entry))
    return seen


def _working_stops(engine: Engine, query: Callable[[str], Any]) -> list[tuple[str, float]]:
    """The bot's sell stops working at the venue: (client id, quantity left)."""
    out = []
    for working in engine.book:
        order = working.order
        if order.order_type is not OrderType.STOP or order.side is not Side.SELL:
            continue
        report = query(order.client_order_id)
        if report is not None and report.status is OrderStatus.OPEN:
            out.append((order.client_order_id, round(report.quantity - report.filled_quantity, 8)))
    return out


def _kinds(seen: dict[str, Any], kind: str) -> list[str]:
    return [message for k, message in seen["events"] if k == kind]


# -- the rest of the entry filled while down, then the small stop fired ----------------------


@pytest.mark.parametrize("name", VENUES)
def test_the_part_the_fired_stop_did_not_cover_is_closed_at_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Killed with 0.4 of the 1.0 entry filled and its children at the venue for 0.4; while
    down the other 0.6 fills (nothing grows the stop) and the stop sells its 0.4. The restart
    books each venue trade once, cancels the orphaned take-profit, and closes the 0.6 held
    below the strategy's stop at market, reduce-only (``bracket_spent``, exit reason
    ``bracket-spent``): flat, as a running bot would be."""
    seen = _journey(tmp_path, monkeypatch, name, seen_before_kill=0.4)
    entry = seen["entry"]
    assert seen["held"] == 0.0 and seen["venue_held"] == 0.0, seen
    assert not seen["stops"] and not seen["degraded"], seen
    # The entry's two parts and the stop's 0.4 once each, then the close of 0.6.
    assert [(cid, qty) for _id, cid, qty, _reason in seen["fills"]] == [
        (entry, 0.4),
        (entry, 0.6),
        (f"{entry}-sl", 0.4),
        (spent_close_id(entry), pytest.approx(0.6)),
    ], seen
    assert seen["exits"][-1] == BRACKET_SPENT_TAG, seen
    [said] = _kinds(seen, "bracket_spent")
    assert entry in said and "0.6" in said and "while the bot was down" in said, said
    [reconciled] = _kinds(seen, "reconciled")[-1:]
    # The take-profit it cancels is not counted as adopted.
    assert "0 working order(s) adopted" in reconciled, reconciled
    assert "1 bracket order(s) whose sibling filled to be cancelled" in reconciled, reconciled
    assert seen["venue_closes"] == 1, seen


@pytest.mark.parametrize("name", VENUES)
def test_a_second_restart_does_not_close_the_spent_part_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """As above, but the restarted bot is killed again as soon as it sent the close (before
    it saw it fill): the next restart finds it filled, is flat, and sends no second close —
    the venue took one order of that id (derived from the entry's: ``spent_close_id``)."""
    seen = _journey(tmp_path, monkeypatch, name, seen_before_kill=0.4, killed_at_restart=True)
    entry = seen["entry"]
    assert seen["held"] == 0.0 and seen["venue_held"] == 0.0, seen
    assert seen["venue_closes"] == 1, seen
    closes = [row for row in seen["fills"] if row[1] == spent_close_id(entry)]
    assert len(closes) == 1 and closes[0][2] == pytest.approx(0.6), seen
    assert len(_kinds(seen, "bracket_spent")) == 1, seen


# -- the grown stop fired while down, part executed, the rest ended by the venue -------------


@pytest.mark.parametrize("name", VENUES)
def test_a_stop_the_venue_ended_part_filled_while_down_is_said_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The bot saw all 1.0 fill and its stop grew to 1.0; while it is down the stop triggers
    but its market order executes 0.3 and the venue ends the rest (Binance USDⓈ-M
    ``EXPIRED``, Bybit ``PartiallyFilledCanceled``, which ccxt reads as closed). The restart
    books the 0.3 and holds 0.7 with no stop: said as a running bot says it (event
    ``stop_cancelled``, naming the stop and the 0.7 left without it). Its take-profit is
    cancelled, as the running broker cancels it
    (``test_a_stop_the_venue_ended_part_filled_while_running_ends_its_take_profit_too``).
    Nothing is closed: the stop covered the whole entry."""
    seen = _journey(tmp_path, monkeypatch, name, seen_before_kill=1.0, stop_fills=0.3)
    entry = seen["entry"]
    assert seen["held"] == pytest.approx(0.7) and seen["venue_held"] == pytest.approx(0.7), seen
    assert not seen["stops"], seen
    [said] = _kinds(seen, "stop_cancelled")
    assert f"{entry}-sl" in said and "0.7 BTCUSDT position runs without it" in said, said
    assert "while the bot was down" in said and "0.3 of 1 executed" in said, said
    assert not _kinds(seen, "bracket_spent") and seen["venue_closes"] == 0, seen


def _running_stop_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> dict[str, Any]:
    """The running bot's stop (grown to 1.0) triggers, executes 0.3 and the venue ends the
    rest: what the bot holds and says once both children left its book."""
    seen: dict[str, Any] = {}
    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        venue: VenueHarness = harness
        hand_to_a_bot(venue, monkeypatch)

        def crash(session: BotSession, engine: Engine, journal: Journal, entry: str) -> None:
            broker = bot_broker(session)
            _crash(venue, 0.3)
            children = (f"{entry}-sl", f"{entry}-tp")
            until(engine, lambda: not any(c in engine.book for c in children), "their ends")
            report = broker.query_order(f"{entry}-tp")
            seen["tp"] = None if report is None else report.status
            seen["entry"] = entry
            seen["held"] = engine.position(SYMBOL).quantity
            seen.update(_journaled(journal))

        _first_life(tmp_path, venue, seen_before_kill=1.0, while_running=crash)
        seen["venue_held"] = _venue_position(venue)
    return seen


@pytest.mark.parametrize("name", VENUES)
def test_a_stop_the_venue_ended_part_filled_while_running_ends_its_take_profit_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """What the restart mirrors: while the bot runs, a stop that ended with a part executed
    ends its bracket — the broker cancels the take-profit (``CcxtBroker._final``: a child that
    ended with a part filled cancels its siblings), so the 0.7 is left with neither."""
    seen = _running_stop_ends(tmp_path, monkeypatch, name)
    assert seen["held"] == pytest.approx(0.7) and seen["venue_held"] == pytest.approx(0.7), seen
    assert seen["tp"] is OrderStatus.CANCELLED, seen


@pytest.mark.parametrize("name", VENUES)
def test_a_stop_the_venue_ended_part_filled_while_running_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """While the bot runs, the stop that ended with 0.3 of 1.0 executed is said
    (``stop_cancelled``, ``Engine._stop_cancelled_outside``)."""
    seen = _running_stop_ends(tmp_path, monkeypatch, name)
    [said] = _kinds(seen, "stop_cancelled")
    assert f"{seen['entry']}-sl" in said and "0.7 BTCUSDT position runs without it" in said


# -- controls --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VENUES)
def test_a_stop_that_closed_everything_while_down_leaves_the_bot_flat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The bot saw the whole entry fill and grew its children to 1.0; the stop closes
    everything while it is down. The restart is flat, books three fills once each, leaves no
    stop working (its take-profit cancelled as an orphan), and closes nothing."""
    seen = _journey(tmp_path, monkeypatch, name, seen_before_kill=1.0)
    assert seen["held"] == 0.0 and seen["venue_held"] == 0.0, seen
    assert len(seen["fills"]) == 3 and not seen["stops"], seen
    assert not seen["degraded"], seen
    assert seen["exits"] == ["stop_loss"], seen
    assert not _kinds(seen, "bracket_spent") and not _kinds(seen, "stop_cancelled"), seen


# -- a flatten owed at the same restart ------------------------------------------------------


@pytest.mark.parametrize("name", VENUES)
def test_a_flatten_owed_at_the_restart_closes_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """R32 (1): as in the first journey, but a person's emergency stop with flatten was
    journaled before the kill and never carried out. The restart's flatten (``BotSession``,
    right after the reconciliation) closes the whole 0.6 alone: no bracket-spent close beside
    it (the flatten would not count it as on its way: on spot, with no reduce-only, the second
    sell would sell what the bot does not hold)."""

    def halt_owed(_session: BotSession, engine: Engine, journal: Journal, _entry: str) -> None:
        data = {"who": "alice", "reason": "kill switch", "flatten": True}
        journal.record_event(engine.now, "halted", "halted by alice: kill switch", data)

    with harness_for(name, tmp_path) as harness:
        assert isinstance(harness, VenueHarness)
        hand_to_a_bot(harness, monkeypatch)
        entry = _first_life(tmp_path, harness, seen_before_kill=0.4, while_running=halt_owed)
        _fill_entry(harness, entry, None)
        _crash(harness)
        seen: dict[str, Any] = {"entry": entry}
        _restart(tmp_path, harness, _look(harness, seen))
        seen["venue_closes"] = _venue_orders_of(harness, spent_close_id(entry))
    assert seen["venue_closes"] == 0 and not _kinds(seen, "bracket_spent"), seen
    assert seen["held"] == 0.0 and seen["venue_held"] == 0.0, seen
    closes = [row for row in seen["fills"] if row[3] == "emergency-flatten"]
    assert [qty for *_, qty, _reason in closes] == [pytest.approx(0.6)], seen


def test_a_stop_ended_part_executed_is_never_said_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walkthrough W20: on Binance USDⓈ-M the finished conditional order may be reported
    filled while its market order executed only 0.3 of 1.0; the restart said "filled at the
    venue while the bot was down, 0.3 of 1 executed" in the very message that says 0.7 runs
    without a stop. It is now said by what executed."""
    seen = _journey(tmp_path, monkeypatch, "binance-usdm", seen_before_kill=1.0, stop_fills=0.3)
    [said] = _kinds(seen, "stop_cancelled")
    assert "0.3 of 1 executed" in said and "filled at the venue" not in said, said
