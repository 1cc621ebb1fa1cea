"""Start-up reconciliation: a restarted bot compares its journal with the venue before trading.

The venue here is the paper broker's account held outside the bot's process (`SharedVenue`): it
outlives each `BotSession`, as an exchange outlives a pod, and things happen to it while the bot
is down. The plan itself is a pure function (`reconcile.plan_reconciliation`), tested first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.plugin_hooks import registry_with, venue_plugins
from tests.runtime.venue_view import VenueView, paper_bot_manifest
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime import session as session_module
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    Bar,
    Fill,
    Order,
    OrderReport,
    OrderStatus,
    OrderType,
    PositionReport,
    ReasonCode,
    Side,
)
from tradefleet_runtime.order_ids import bot_prefix, venue_replacement_id
from tradefleet_runtime.plugins.registry import PluginRegistry
from tradefleet_runtime.reconcile import order_from_report, plan_reconciliation, position_drift
from tradefleet_runtime.sdk import Strategy
from tradefleet_runtime.service import controller as controller_module
from tradefleet_runtime.service.api import Phase
from tradefleet_runtime.service.controller import BotController
from tradefleet_runtime.session import BotSession, assemble
from tradefleet_runtime.spec import load_manifest

HOUR = 3600
T0 = 1_500_000_000 - (1_500_000_000 % 86400)
NAME = "recon-bot"
PREFIX = bot_prefix(NAME)


# -- the plan (pure) ------------------------------------------------------------------------


def _fill(order_id: str, fill_id: str, side: Side, quantity: float, ts: int = T0) -> Fill:
    return Fill(order_id, "BTCUSDT", side, quantity, 100.0, 0.1, ts, fill_id)


def _report(order_id: str, status: OrderStatus, filled: float = 0.0) -> OrderReport:
    return OrderReport(
        order_id, "v-" + order_id, "BTCUSDT", Side.BUY, OrderType.LIMIT, 1.0, filled, status, T0,
        price=90.0,
    )  # fmt: skip


def _plan(**changes: Any) -> Any:
    arguments: dict[str, Any] = {
        "prefix": PREFIX,
        "symbols": ["BTCUSDT"],
        "journal_fills": [_fill(PREFIX + "1", "t1", Side.BUY, 1.0)],
        "journal_working": {},
        "known_order_ids": frozenset({PREFIX + "1"}),
        "venue_orders": [],
        "venue_fills": [_fill(PREFIX + "1", "t1", Side.BUY, 1.0)],
        "venue_positions": [PositionReport("BTCUSDT", 1.0, 100.0)],
        "now": T0 + HOUR,
    }
    arguments.update(changes)
    return plan_reconciliation(**arguments)


def test_a_journal_that_agrees_with_the_venue_plans_nothing() -> None:
    plan = _plan()
    assert not plan.degraded
    assert (plan.missed_fills, plan.adopted, plan.closed, plan.never_sent) == ((), (), (), ())


def test_fills_while_down_are_planned_once_each_and_the_position_then_agrees() -> None:
    missed = _fill(PREFIX + "2", "t2", Side.BUY, 2.0, T0 + 60)
    plan = _plan(
        venue_fills=[_fill(PREFIX + "1", "t1", Side.BUY, 1.0), missed, missed],
        venue_positions=[PositionReport("BTCUSDT", 3.0, 100.0)],
    )
    assert [f.fill_id for f in plan.missed_fills] == ["t2"]
    assert plan.missed_fills[0].reason == "reconciled"  # no reason from the venue, no order
    assert not plan.degraded
    assert plan.notes, "an id the journal never recorded is worth a note"


def _child(parent: str, role: str, order_type: OrderType, tag: str) -> Order:
    return Order(
        f"{parent}-{role}", "BTCUSDT", Side.SELL, 1.0, order_type, 90.0 if role == "sl" else 110.0,
        reduce_only=True, parent_id=parent, oco_group=parent, created_ts=T0, tag=tag,
    )  # fmt: skip


def test_a_missed_fill_of_a_journaled_order_carries_that_orders_reason() -> None:
    """A stop hit while the bot was down is a stop-loss exit in the report, as if the bot had
    seen it; the venue's word ("market", or nothing) only for an order the journal lacks."""
    parent = PREFIX + "1"
    stop = _child(parent, "sl", OrderType.STOP, "stop_loss")
    untagged = Order(PREFIX + "3", "BTCUSDT", Side.BUY, 1.0, OrderType.LIMIT, 95.0, created_ts=T0)
    venue = [
        _fill(parent, "t1", Side.BUY, 1.0),
        _fill(stop.client_order_id, "t2", Side.SELL, 1.0, T0 + 60)._replace(reason="market"),
        _fill(untagged.client_order_id, "t3", Side.BUY, 1.0, T0 + 120),
        _fill(PREFIX + "9", "t4", Side.SELL, 1.0, T0 + 180)._replace(reason="market"),
        _fill(PREFIX + "8", "t5", Side.BUY, 1.0, T0 + 240),
    ]
    plan = _plan(
        journal_working={o.client_order_id: o for o in (stop, untagged)},
        known_order_ids=frozenset({parent, stop.client_order_id, untagged.client_order_id}),
        venue_fills=venue,
        venue_positions=[PositionReport("BTCUSDT", 1.0, 100.0)],
    )
    assert [(f.fill_id, f.reason) for f in plan.missed_fills] == [
        ("t2", "stop_loss"),
        ("t3", "limit"),
        ("t4", "market"),
        ("t5", "reconciled"),
    ]


def test_a_bracket_child_whose_sibling_filled_is_to_be_cancelled_not_adopted_as_live() -> None:
    """The target of a position its stop closed while the bot was down (or just before it
    died) protects nothing, and would sell out of the next position: the plan cancels it. A
    bracket whose siblings did not fill, and a lone order, are adopted as ever."""
    a, b = PREFIX + "1", PREFIX + "2"
    a_sl, a_tp = (
        _child(a, "sl", OrderType.STOP, "stop_loss"),
        _child(a, "tp", OrderType.LIMIT, "take_profit"),
    )
    b_sl, b_tp = (
        _child(b, "sl", OrderType.STOP, "stop_loss"),
        _child(b, "tp", OrderType.LIMIT, "take_profit"),
    )
    lone = PREFIX + "5"

    def working(order_id: str) -> OrderReport:
        return _report(order_id, OrderStatus.OPEN)

    venue_fills = [
        _fill(a, "t1", Side.BUY, 1.0),
        _fill(b, "t2", Side.BUY, 1.0),
        _fill(a_sl.client_order_id, "t3", Side.SELL, 1.0, T0 + 60),  # the stop, while down
    ]

    def plan(**changes: Any) -> Any:
        arguments: dict[str, Any] = {
            "journal_fills": venue_fills[:2],
            "journal_working": {o.client_order_id: o for o in (a_sl, a_tp, b_sl, b_tp)},
            "known_order_ids": frozenset(
                {a, b, lone} | {o.client_order_id for o in (a_sl, a_tp, b_sl, b_tp)}
            ),
            "venue_orders": [
                working(i)
                for i in (a_tp.client_order_id, b_sl.client_order_id, b_tp.client_order_id, lone)
            ]
            + [_report(a_sl.client_order_id, OrderStatus.FILLED, 1.0)],
            "venue_fills": venue_fills,
            "venue_positions": [PositionReport("BTCUSDT", 1.0, 100.0)],
        }
        arguments.update(changes)
        return _plan(**arguments)

    missed = plan()
    assert missed.orphaned == (a_tp.client_order_id,)
    assert "1 bracket order(s) whose sibling filled to be cancelled" in missed.summary()
    # The stop's fill journaled before the bot died, the sibling's cancel never sent: the
    # filled stop is no longer working, and its id still names its group.
    still_working = {o.client_order_id: o for o in (a_tp, b_sl, b_tp)}
    journaled = plan(journal_fills=venue_fills, journal_working=still_working)
    assert journaled.missed_fills == ()
    assert journaled.orphaned == (a_tp.client_order_id,)
    assert {r.client_order_id for r in missed.adopted} >= {b_sl.client_order_id, lone}


def test_an_amended_stop_held_under_its_replacement_id_is_still_its_brackets_child() -> None:
    """A stop moved by cancel-replace lives at the venue under its replacement's id (Binance
    spot: ``<id>-a1``; ``~n`` elsewhere). After a restart it must still be its bracket's
    child: when its take-profit filled while the bot was down it is cancelled, not adopted
    as a lone order — a spot stop left working would sell what the bot no longer holds."""
    entry = PREFIX + "1"
    stop = _child(entry, "sl", OrderType.STOP, "stop_loss")
    target = _child(entry, "tp", OrderType.LIMIT, "take_profit")
    for moved in (venue_replacement_id(stop.client_order_id, 1), f"{stop.client_order_id}~2"):
        plan = _plan(
            journal_fills=[_fill(entry, "t1", Side.BUY, 1.0)],
            journal_working={o.client_order_id: o for o in (stop, target)},
            known_order_ids=frozenset({entry, stop.client_order_id, target.client_order_id}),
            venue_orders=[
                _report(stop.client_order_id, OrderStatus.CANCELLED),  # replaced
                _report(moved, OrderStatus.OPEN),
                _report(target.client_order_id, OrderStatus.FILLED, 1.0),
            ],
            venue_fills=[
                _fill(entry, "t1", Side.BUY, 1.0),
                _fill(target.client_order_id, "t2", Side.SELL, 1.0, T0 + 60),
            ],
            venue_positions=[],
        )
        assert plan.orphaned == (moved,), moved
        assert not plan.degraded
        adopted = order_from_report(_report(moved, OrderStatus.OPEN))
        assert (adopted.parent_id, adopted.oco_group, adopted.tag) == (entry, entry, "stop_loss")
    lone = order_from_report(_report(PREFIX + "9", OrderStatus.OPEN))
    assert (lone.parent_id, lone.oco_group, lone.tag) == (None, None, "adopted")


def test_a_stop_the_venue_never_received_is_sent_while_its_position_is_open() -> None:
    """The bot died after its entry filled, before the venue took the bracket: closing the
    children as never sent would leave the position without its stop-loss. A strategy's own
    order, a child of a position that is gone, or one whose sibling filled, is closed as
    ever (not re-sent)."""
    a = PREFIX + "1"
    a_sl = _child(a, "sl", OrderType.STOP, "stop_loss")
    a_tp = _child(a, "tp", OrderType.LIMIT, "take_profit")
    resting = Order(PREFIX + "4", "BTCUSDT", Side.BUY, 1.0, OrderType.LIMIT, 95.0, created_ts=T0)
    working = {o.client_order_id: o for o in (a_sl, a_tp, resting)}
    entry = _fill(a, "t1", Side.BUY, 1.0)
    plan = _plan(journal_fills=[entry], journal_working=working, venue_fills=[entry])
    assert plan.resend == (a_sl.client_order_id, a_tp.client_order_id)
    assert plan.never_sent == (resting.client_order_id,)
    assert "2 protective order(s) the venue never received sent again" in plan.summary()
    # The position is gone (closed by another order while the bot was down): nothing to protect.
    out = _fill(PREFIX + "6", "t6", Side.SELL, 1.0, T0 + 60)
    flat = _plan(
        journal_fills=[entry],
        journal_working=working,
        venue_fills=[entry, out],
        venue_positions=[],
    )
    assert (flat.resend, len(flat.never_sent)) == ((), 3)
    # Its sibling filled: the bracket is done.
    stopped = _plan(
        journal_fills=[entry],
        journal_working={a_tp.client_order_id: a_tp},
        venue_fills=[entry, _fill(a_sl.client_order_id, "t2", Side.SELL, 1.0, T0 + 60)],
        venue_positions=[],
    )
    assert (stopped.resend, stopped.never_sent) == ((), (a_tp.client_order_id,))


def test_own_working_orders_are_adopted_and_foreign_ones_only_reported() -> None:
    ours = _report(PREFIX + "5", OrderStatus.PARTIALLY_FILLED, 0.4)
    foreign = _report("manual-77", OrderStatus.OPEN)
    plan = _plan(venue_orders=[ours, foreign])
    assert plan.adopted == (ours,)
    assert plan.foreign_orders == (foreign,)


def test_journal_working_orders_take_the_venue_final_status_or_are_closed_as_never_sent() -> None:
    working = {
        PREFIX + "7": Order(PREFIX + "7", "BTCUSDT", Side.BUY, 1.0, OrderType.LIMIT, 90.0),
        PREFIX + "8": Order(PREFIX + "8", "BTCUSDT", Side.BUY, 1.0, OrderType.LIMIT, 90.0),
    }
    cancelled = _report(PREFIX + "7", OrderStatus.CANCELLED)
    plan = _plan(journal_working=working, venue_orders=[cancelled])
    assert plan.closed == ((PREFIX + "7", cancelled),)
    assert plan.never_sent == (PREFIX + "8",)


def test_a_position_the_journal_cannot_explain_degrades_the_bot_naming_both_sides() -> None:
    plan = _plan(venue_positions=[PositionReport("BTCUSDT", 4.0, 100.0)])
    assert plan.degraded
    assert plan.mismatches == ("BTCUSDT: the journal holds +1, the venue +4 (difference +3)",)


def test_adopting_venue_positions_books_the_difference_at_the_venue_price_instead() -> None:
    plan = _plan(
        venue_positions=[PositionReport("BTCUSDT", 4.0, 105.0)], adopt_venue_positions=True
    )
    assert not plan.degraded
    (adjustment,) = plan.adjustments
    assert (adjustment.side, adjustment.quantity, adjustment.price) == (Side.BUY, 3.0, 105.0)
    gone = _plan(venue_positions=[], adopt_venue_positions=True)
    (close,) = gone.adjustments
    # A position the venue no longer has closes at the journal's entry: no invented P&L.
    assert (close.side, close.quantity, close.price) == (Side.SELL, 1.0, 100.0)


def test_positions_in_other_symbols_are_foreign_and_within_tolerance_is_equal() -> None:
    plan = _plan(
        venue_positions=[
            PositionReport("BTCUSDT", 1.0 + 1e-12, 100.0),
            PositionReport("ETHUSDT", 5.0, 2000.0),
        ]
    )
    assert not plan.degraded
    assert [p.symbol for p in plan.foreign_positions] == ["ETHUSDT"]


# -- a bot restarted against a venue that lived on ------------------------------------------


class SharedVenue(VenueView):
    """A view of one account that outlives every broker object (and bot process) made for it."""

    account: ClassVar[PaperBroker | None] = None
    # Cleared: the venue cannot be reached (an exchange's maintenance); connect raises.
    reachable: ClassVar[threading.Event] = threading.Event()

    def __init__(self, params: Any) -> None:
        if SharedVenue.account is None:
            SharedVenue.account = PaperBroker(PaperBrokerParams())
            SharedVenue.account.connect(
                BrokerContext(NAME, "paper", ("BTCUSDT",), "USD", 100_000.0)  # type: ignore[arg-type]
            )
        super().__init__(SharedVenue.account)

    def connect(self, ctx: BrokerContext) -> None:
        """The account is already there; connecting changes nothing at the venue."""
        if not SharedVenue.reachable.is_set():
            raise ConnectionError("the venue answers 503 (maintenance)")


class BuyAndRest(Strategy):
    """On its first bar: buys 1 at market and rests a limit buy of 1 at 90 (below the data).
    From the bar at ``T0 + 8h`` on it asks to buy 1 more on every bar (a Degraded bot must send
    none of them)."""

    def on_bar(self, bar: Bar) -> None:
        ctx = self.ctx
        if bar.ts >= T0 + 8 * HOUR:
            ctx.buy(bar.symbol, 1)
        elif ctx.position(bar.symbol).quantity == 0 and not ctx.open_orders(bar.symbol):
            ctx.buy(bar.symbol, 1)
            ctx.buy(bar.symbol, 1, order_type=OrderType.LIMIT, price=90.0)


HOOKS = venue_plugins(("buy-and-rest", BuyAndRest), ("shared-venue", SharedVenue))


@pytest.fixture
def registry() -> PluginRegistry:
    SharedVenue.account = None
    SharedVenue.reachable.set()
    return registry_with(HOOKS)


def _bars(start: int, count: int, low: float | None = None) -> list[Bar]:
    bars = []
    for i in range(start, start + count):
        price = 100.0 + (i % 5)
        bars.append(
            Bar("BTCUSDT", HOUR, T0 + i * HOUR, price, price + 1, low or price - 1, price, 10.0)
        )
    return bars


def _manifest(folder: Path, adopt: bool = False) -> Path:
    return paper_bot_manifest(
        folder, NAME, "buy-and-rest", "shared-venue", broker_fields={"adoptVenuePositions": adopt}
    )


def _run(
    folder: Path, registry: PluginRegistry, bars: list[Bar], adopt: bool = False
) -> BotSession:
    """One life of the bot: open (reconcile), trade ``bars``, then die without a stop policy."""
    bot = assemble(load_manifest(_manifest(folder, adopt)), registry, folder)
    assert bot.venue is not None and bot.restorer is None
    journal = Journal(folder / "journal.sqlite", durable=True)
    session = BotSession(bot, journal, bars=bars)
    session.open()
    session.run()
    journal.close()  # killed: no stop policy, nothing closed at the venue
    return session


def test_a_position_closed_by_hand_while_the_bot_runs_degrades_it_before_the_next_bar(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found only at the next restart, the bot would trade on a position that is gone (and a
    close would open the other way). Compared before each new bar, it halts Degraded at once,
    and sends none of the buys its strategy asks for from T0 + 8h."""
    monkeypatch.setattr(session_module, "DRIFT_SETTLE_S", 0.01)
    _run(tmp_path, registry, _bars(0, 5))
    assert _venue().positions()["BTCUSDT"].quantity == 1.0
    bot = assemble(load_manifest(_manifest(tmp_path)), registry, tmp_path)
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    session = BotSession(bot, journal, bars=_bars(5, 6))
    engine = session.open()
    assert engine.degraded_reason == ""  # the start agreed with the venue
    # A person sells the bot's coin at the venue, on an order the bot never sent.
    _venue().restore_account([Fill("by-hand", "BTCUSDT", Side.SELL, 1.0, 100.0, 0.0, T0, "h1")])
    session.run()
    try:
        assert engine.degraded_reason == (
            "position drift: BTCUSDT: the bot holds +1, the venue +0 (changed outside the bot "
            "while it ran: by a person, or by another bot trading the symbol on this account — "
            "a bot needs its symbols' positions to itself)"
        )
        assert engine.halted
        kinds = [k for (k,) in journal.query("SELECT kind FROM events ORDER BY id")]
        assert kinds.count("degraded") == 1
        assert sum(engine.stats.vetoes.values()) > 0  # the buys from T0 + 8h: none sent
        assert _venue().positions().get("BTCUSDT") is None
    finally:
        journal.close()


def test_position_drift_applies_the_start_up_rules() -> None:
    held = {"BTCUSDT": 1.0, "ETHUSDT": 0.0}
    assert position_drift(["BTCUSDT"], held, [PositionReport("BTCUSDT", 1.0, 0.0)], 1e-9) == {}
    assert position_drift(["BTCUSDT"], held, [], 1e-9) == {"BTCUSDT": (1.0, 0.0)}
    # A spot balance covering the bot's holding: the rest is the owner's.
    spot = [PositionReport("BTCUSDT", 3.0, 0.0, balance=True)]
    assert position_drift(["BTCUSDT"], held, spot, 1e-9) == {}
    # Within the tolerance (half a lot step), and symbols the bot does not trade, agree.
    near = [PositionReport("BTCUSDT", 1.0004, 0.0), PositionReport("XRPUSDT", 5.0, 0.0)]
    assert position_drift(["BTCUSDT", "ETHUSDT"], held, near, 0.0005) == {}
    assert position_drift(["ETHUSDT"], held, [PositionReport("ETHUSDT", -2.0, 0.0)], 1e-9) == {
        "ETHUSDT": (0.0, -2.0)
    }


def _venue() -> PaperBroker:
    assert SharedVenue.account is not None
    return SharedVenue.account


def _our_orders_at_venue() -> list[str]:
    return [
        r.client_order_id for r in _venue().order_reports(0) if r.client_order_id[:4] == PREFIX[:4]
    ]


def test_a_restart_adopts_the_order_still_working_at_the_venue_without_resending_it(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    resting = [o.client_order_id for o in _venue().open_orders()]
    assert len(resting) == 1
    sent_before = _our_orders_at_venue()

    second = _run(tmp_path, registry, _bars(5, 3))
    plan = second.reconciliation
    assert plan is not None and not plan.degraded
    assert [r.client_order_id for r in plan.adopted] == resting
    assert second.engine is not None
    assert [o.client_order_id for o in second.engine.open_orders()] == resting
    # Nothing was sent twice: the venue holds each id once, and no new order went out.
    assert _our_orders_at_venue() == sent_before


def test_a_fill_while_the_bot_was_down_is_journaled_as_reconciled_and_booked(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    # While the bot is down the market trades through 90: the resting limit fills at the venue.
    _venue().on_bar(_bars(5, 1, low=89.0)[0])
    assert _venue().positions()["BTCUSDT"].quantity == 2.0

    second = _run(tmp_path, registry, _bars(6, 3))
    plan = second.reconciliation
    assert plan is not None and not plan.degraded
    assert len(plan.missed_fills) == 1
    assert second.engine is not None
    assert second.engine.portfolio.positions["BTCUSDT"].quantity == 2.0
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        carried = journal.carried_state(NAME)
        assert carried is not None
        assert [f.quantity for f in carried.fills] == [1.0, 1.0]
        assert carried.fills[-1].reason == "limit"
        # A third start finds nothing new: the fill is journaled exactly once.
    finally:
        journal.close()
    third = _run(tmp_path, registry, _bars(9, 1))
    assert third.reconciliation is not None and third.reconciliation.missed_fills == ()


def test_a_foreign_order_is_reported_and_left_working(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    foreign = Order("manual-1", "BTCUSDT", Side.BUY, 0.5, OrderType.LIMIT, 50.0, created_ts=T0)
    assert _venue().submit(foreign).status is OrderStatus.OPEN

    second = _run(tmp_path, registry, _bars(5, 2))
    plan = second.reconciliation
    assert plan is not None
    assert [r.client_order_id for r in plan.foreign_orders] == ["manual-1"]
    assert _venue().query_order("manual-1") is not None
    assert "manual-1" in [o.client_order_id for o in _venue().open_orders()]


def _foreign_fill_while_down() -> None:
    foreign = Order("manual-2", "BTCUSDT", Side.BUY, 3.0, created_ts=T0 + 5 * HOUR)
    assert _venue().submit(foreign).status is OrderStatus.OPEN
    _venue().on_bar(_bars(5, 1)[0])
    assert _venue().positions()["BTCUSDT"].quantity == 4.0


def test_a_venue_position_the_journal_cannot_explain_leaves_the_bot_degraded_sending_nothing(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    _foreign_fill_while_down()
    sent_before = _our_orders_at_venue()

    second = _run(tmp_path, registry, _bars(6, 4))
    plan = second.reconciliation
    assert plan is not None and plan.degraded
    engine = second.engine
    assert engine is not None
    assert engine.halted and engine.degraded_reason.startswith("reconciliation: BTCUSDT")
    assert engine.stats.orders == 0
    assert engine.stats.risk_decisions, "the strategy's asks were vetoed and journaled"
    assert _our_orders_at_venue() == sent_before


def test_adopt_venue_positions_takes_the_venue_position_and_trades_on(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    _foreign_fill_while_down()
    second = _run(tmp_path, registry, _bars(6, 4), adopt=True)
    plan = second.reconciliation
    assert plan is not None and not plan.degraded and len(plan.adjustments) == 1
    assert second.engine is not None and not second.engine.halted
    # The venue's 4, then the buy asked at 8h filled at the next open (the 9h one still works).
    assert second.engine.portfolio.positions["BTCUSDT"].quantity == pytest.approx(5.0)


@contextmanager
def _degraded_controller(tmp_path: Path, registry: PluginRegistry) -> Iterator[BotController]:
    """A served bot restarted after a fill its journal cannot explain, once it is Degraded.
    Paced by the wall clock: the first bar at once, the next an hour later — it stays up."""
    _run(tmp_path, registry, _bars(0, 5))
    _foreign_fill_while_down()
    bot = assemble(load_manifest(_manifest(tmp_path)), registry, tmp_path)
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    controller = BotController(bot, journal, registry, speed=1.0, bars=_bars(6, 2))
    controller.start()
    try:
        deadline = 200
        while controller.get_status().phase is not Phase.DEGRADED and deadline:
            controller.wait(0.05)
            deadline -= 1
        yield controller
    finally:
        controller.stop()
        controller.wait(10)
        journal.close()


def test_the_service_reports_degraded_and_not_reconciled_after_a_mismatch(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    with _degraded_controller(tmp_path, registry) as controller:
        status = controller.get_status()
        assert status.phase is Phase.DEGRADED
        assert not status.reconciled
        ready, why = controller.readiness()
        assert not ready and "reconciled" in why
        # A person looks at the account and resumes: the bot trades again.
        assert controller.resume("alice", "checked the account").phase is Phase.RUNNING
        assert controller.get_status().reconciled
        assert controller.readiness() == (True, "ok")
        # Degraded again while it runs (a drift found at a bar): not ready, as its status says.
        assert controller.engine is not None
        controller.engine.degrade("position drift: BTCUSDT: the bot holds +1, the venue +0")
        ready, why = controller.readiness()
        assert not ready and why.startswith("degraded: position drift: BTCUSDT")


def test_a_pause_only_resume_leaves_a_degraded_bot_halted(
    tmp_path: Path, registry: PluginRegistry
) -> None:
    """The operator undoing the pause it applied (``Resume`` with ``pause_only``) must not
    clear a Degraded stop: only a person who has looked at the venue may."""
    with _degraded_controller(tmp_path, registry) as controller:
        controller.pause("operator", "spec.paused is true")
        status = controller.resume("operator", "spec.paused is false", pause_only=True)
        assert status.phase is Phase.DEGRADED and status.halted and not status.paused
        assert not status.reconciled
        assert controller.resume("alice", "checked the account").phase is Phase.RUNNING


def test_a_refused_amend_leaves_the_order_working_as_it_was() -> None:
    broker = PaperBroker(PaperBrokerParams())
    broker.connect(BrokerContext(NAME, "paper", ("BTCUSDT",), "USD", 1000.0))  # type: ignore[arg-type]
    order = Order(PREFIX + "a", "BTCUSDT", Side.BUY, 1.0, OrderType.LIMIT, 90.0, created_ts=T0)
    broker.submit(order)
    refused = broker.amend(order.client_order_id, None, -5.0)
    assert refused is not None
    assert (refused.status, refused.code) == (OrderStatus.OPEN, ReasonCode.INVALID_PRICE)
    report = broker.query_order(order.client_order_id)
    assert report is not None and report.price == 90.0 and report.status is OrderStatus.OPEN
    unknown = broker.amend("nope", 2.0, None)
    assert unknown is not None
    assert (unknown.status, unknown.code) == (OrderStatus.REJECTED, ReasonCode.UNKNOWN_ORDER)


def test_replacement_ids_are_derived_and_stable() -> None:
    from tradefleet_runtime.sdk import replacement_order_id

    first = replacement_order_id(PREFIX + "x", 1)
    assert first == replacement_order_id(PREFIX + "x", 1) == PREFIX + "x~1"
    # A replacement of a replacement derives from the original, never grows without bound.
    assert replacement_order_id(first, 2) == PREFIX + "x~2"


def test_a_spot_balance_only_has_to_cover_what_the_bot_holds() -> None:
    more = _plan(venue_positions=[PositionReport("BTCUSDT", 7.5, 0.0, balance=True)])
    assert not more.degraded, "the owner's own coins are not the bot's business"
    less = _plan(venue_positions=[PositionReport("BTCUSDT", 0.25, 0.0, balance=True)])
    assert less.mismatches == ("BTCUSDT: the journal holds +1, the venue +0.25 (difference -0.75)",)


# -- control given while the venue cannot be reached at start ------------------------------------


def _until(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.02)


@contextmanager
def _waiting_controller(
    folder: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[BotController, Journal]]:
    """A restart while the venue is down: the controller waits for it in phase Starting (and
    is stopped, its journal closed, at the block's end)."""
    monkeypatch.setattr(controller_module, "VENUE_WAIT_FIRST_S", 0.05)
    SharedVenue.reachable.clear()
    bot = assemble(load_manifest(_manifest(folder)), registry, folder)
    journal = Journal(folder / "journal.sqlite", durable=True)
    controller = BotController(bot, journal, registry, speed=1.0, bars=_bars(6, 2))
    controller.start()
    try:
        _until(lambda: controller.waiting)
        yield controller, journal
    finally:
        controller.stop()
        controller.wait(10)
        journal.close()


def _event_kinds(journal: Journal) -> list[str]:
    return [str(row[0]) for row in journal.query("SELECT kind FROM events ORDER BY id")]


def test_an_emergency_stop_with_flatten_given_while_the_venue_is_down_is_carried_out_after(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A halt given during an exchange's maintenance holds from the bot's first bar on (it is
    not refused as "still starting", leaving the bot to trade when the venue is back), and its
    flatten is done once the venue answers and the account is reconciled — exactly once."""
    _run(tmp_path, registry, _bars(0, 5))
    assert _venue().positions()["BTCUSDT"].quantity == 1.0 and _our_orders_at_venue()
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, journal):
        status = controller.emergency_stop("alice", "exchange incident", flatten=True)
        assert status.phase is Phase.STARTING
        assert status.halted and status.halt_reason == "exchange incident"
        # Journaled at once: a restart of the pod meanwhile would keep it.
        assert journal.last_control_event(NAME) == (
            "halted",
            "emergency stop by alice: exchange incident (to flatten once the venue answers)",
        )
        assert journal.flatten_owed(NAME) == ("alice", "exchange incident")
        assert _venue().positions()["BTCUSDT"].quantity == 1.0  # nothing to be done yet
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.HALTED)
        _until(lambda: controller.get_status().bars >= 1)
        assert _venue().positions().get("BTCUSDT") is None or (
            _venue().positions()["BTCUSDT"].quantity == 0.0
        )
        assert not _venue().open_orders()  # the resting limit buy went too
        engine = controller.engine
        assert engine is not None and engine.halted
        assert engine.stats.orders == 1  # the closing sell; the strategy's buys were vetoed
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        kinds = _event_kinds(journal)
        assert kinds.index("halted") < kinds.index("halt_restored") < kinds.index("flattened")
        assert journal.flatten_owed(NAME) is None  # done: a later start does not flatten again
        assert journal.last_control_event(NAME) is not None
        assert journal.last_control_event(NAME)[0] == "halted"  # type: ignore[index]
    finally:
        journal.close()


def test_a_pause_and_a_resume_given_while_the_venue_is_down_are_applied_in_order(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, _journal):
        status = controller.pause("bob", "looking at the venue")
        assert status.paused and status.pause_reason == "looking at the venue"
        assert not status.halted and status.phase is Phase.STARTING
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.PAUSED)
        assert controller.resume("bob", "venue is fine").phase is Phase.RUNNING


@pytest.mark.parametrize(
    ("commands", "resumes"),
    [
        (("resume", "halt"), 0),  # a resume with nothing to undo (not journaled), then a stop
        (("pause", "halt", "resume", "halt"), 1),  # the resume undid the first stop only
    ],
)
def test_a_resume_given_before_an_emergency_stop_never_undoes_it_when_the_venue_answers(
    tmp_path: Path,
    registry: PluginRegistry,
    monkeypatch: pytest.MonkeyPatch,
    commands: tuple[str, ...],
    resumes: int,
) -> None:
    """A halt is undone only by a newer, explicit resume: the commands given while the bot
    waits for its venue are not replayed on the engine in a way that lets an older resume
    undo the newer stop (the bot traded once the venue answered), nor journal a ``resumed``
    after it (a later restart would find no halt in force)."""
    _run(tmp_path, registry, _bars(0, 5))
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, journal):
        for n, command in enumerate(commands):
            if command == "pause":
                controller.pause("alice", "looking")
            elif command == "resume":
                controller.resume("alice", "go on")
            else:
                controller.emergency_stop("bob", f"incident {n}")
        assert controller.get_status().halted
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.HALTED)
        _until(lambda: controller.get_status().bars >= 1)
        engine = controller.engine
        assert engine is not None and engine.halted
        last = journal.last_control_event(NAME)
        assert last is not None and last[0] == "halted", last
        assert _event_kinds(journal).count("resumed") == resumes


def test_a_halt_in_force_shows_while_the_bot_waits_and_a_resume_then_undoes_it(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted bot whose halt is still in force says so while it waits; a person's resume
    meanwhile is a newer, explicit resume: journaled, so the start does not restore the halt."""
    _run(tmp_path, registry, _bars(0, 5))
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    journal.record_event(0, "halted", "emergency stop by carol: drill", {"who": "carol"})
    journal.close()
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, journal):
        status = controller.get_status()
        assert status.halted
        assert status.halt_reason == "restored after restart (emergency stop by carol: drill)"
        status = controller.resume("carol", "drill over")
        assert not status.halted and status.phase is Phase.STARTING
        assert journal.last_control_event(NAME) == ("resumed", "resumed by carol: drill over")
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.RUNNING)
        assert "halt_restored" not in _event_kinds(journal)


def test_a_flatten_asked_of_a_bot_halted_from_before_is_owed_while_it_waits(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Halted before the restart (position kept), then asked to flatten while the venue is
    down: the halt still holds and the flatten is done once the venue answers."""
    _run(tmp_path, registry, _bars(0, 5))
    journal = Journal(tmp_path / "journal.sqlite", durable=True)
    journal.record_event(0, "halted", "emergency stop by carol: drill", {"who": "carol"})
    journal.close()
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, journal):
        status = controller.emergency_stop("carol", "flatten it", flatten=True)
        assert status.halt_reason == "restored after restart (emergency stop by carol: drill)"
        assert journal.flatten_owed(NAME) == ("carol", "flatten it")
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.HALTED)
        _until(lambda: controller.get_status().bars >= 1)
        assert _venue().positions().get("BTCUSDT") is None or (
            _venue().positions()["BTCUSDT"].quantity == 0.0
        )
        assert "flattened" in _event_kinds(journal)


def test_a_halt_and_a_resume_while_waiting_owe_no_flatten(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(tmp_path, registry, _bars(0, 5))
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, journal):
        controller.emergency_stop("alice", "incident", flatten=True)
        controller.resume("alice", "false alarm")
        assert journal.flatten_owed(NAME) is None
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.RUNNING)
        _until(lambda: controller.get_status().bars >= 1)
        assert _venue().positions()["BTCUSDT"].quantity >= 1.0  # not flattened
        assert "flattened" not in _event_kinds(journal)


def test_while_the_venue_is_down_the_status_shows_the_journaled_account_as_last_known(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a restarted bot waiting for its venue showed a flat account at its starting
    capital (no position, no order, equity 100000, in its status and /metrics) while its
    journal and the venue held a position and a working order."""
    _run(tmp_path, registry, _bars(0, 5))
    journal = Journal(tmp_path / "journal.sqlite")
    try:
        timestamps, equity = journal.account_equity(NAME)
        carried = journal.carried_state(NAME)
    finally:
        journal.close()
    assert carried is not None and carried.working and equity[-1] != 100_000
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, _journal):
        status = controller.get_status()
        assert status.phase is Phase.STARTING and status.last_known
        assert (status.equity, status.last_bar_ts) == (equity[-1], timestamps[-1])
        assert status.balance < 100_000  # the position was paid for
        assert status.open_positions == 1
        assert [(e.symbol, e.quantity) for e in status.exposure] == [("BTCUSDT", 1.0)]
        assert status.open_orders == len(carried.working) + len(carried.unacknowledged)
        sample = controller.metrics.registry.get_sample_value
        assert sample("tradefleet_equity", {"bot": NAME, "currency": "USD"}) == equity[-1]
        assert sample("tradefleet_open_positions", {"bot": NAME}) == 1
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.RUNNING)
        running = controller.get_status()
        assert not running.last_known and running.open_positions == 1


def test_a_first_start_waiting_for_its_venue_publishes_no_account_figures(
    tmp_path: Path, registry: PluginRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing journaled: the status has the spec's capital and nothing open (what the bot
    starts from), not marked last known; /metrics publishes no equity until the engine runs."""
    with _waiting_controller(tmp_path, registry, monkeypatch) as (controller, _journal):
        status = controller.get_status()
        assert status.phase is Phase.STARTING and not status.last_known
        assert (status.equity, status.open_positions, status.open_orders) == (100_000, 0, 0)
        sample = controller.metrics.registry.get_sample_value
        assert sample("tradefleet_equity", {"bot": NAME, "currency": "USD"}) is None
        assert sample("tradefleet_open_positions", {"bot": NAME}) is None
        assert sample("tradefleet_phase", {"bot": NAME, "phase": Phase.STARTING.value}) == 1
        SharedVenue.reachable.set()
        _until(lambda: controller.get_status().phase is Phase.RUNNING)
        assert sample("tradefleet_equity", {"bot": NAME, "currency": "USD"}) is not None
