"""A bracket child the venue never received (the bot died between placing it and the venue's
answer: ``plan.resend``) is put back after a restart as an adopted one is: its journaled cut
restored in the book and told to a broker that sizes children itself (``ChildCutter``)
before anything is sent, capped to what is held, grown to what its entry filled less the cut,
and sent at that size. The entry's next fill grows it from there, never over the position.

The venue is the paper broker's account, the reconciliation plan the real one
(``plan_reconciliation``) from hand-made venue reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime.helpers import start_test_run
from tests.runtime.test_bracket_cut_restored import (
    BOT,
    ENTRY,
    HOUR,
    PREFIX,
    SL,
    T0,
    TP,
    Cutter,
    Idle,
    _children,
    _report,
)
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.contracts import BrokerContext
from tradefleet_runtime.engine.engine import Engine, EngineConfig
from tradefleet_runtime.journal import Journal
from tradefleet_runtime.model import (
    CarriedState,
    Fill,
    Order,
    OrderType,
    PositionReport,
    Side,
)
from tradefleet_runtime.reconcile import plan_reconciliation

EXIT = Order(PREFIX + "3", "BTCUSDT", Side.SELL, 0.01, OrderType.LIMIT, 99.0, created_ts=T0)


def _restart(
    folder: Path, cutter: Cutter, filled_while_down: float = 0.0, exit_while_down: bool = False
) -> tuple[Engine, PaperBroker, Journal]:
    """Entry limit buy 0.1 (SL/TP) filled 0.04, its children journaled, then cut to 0.03 by a
    sell of 0.01; the bot died before the venue acknowledged the children: the venue holds
    the entry (part-filled) and the position, not the children. While it was down the entry
    filled ``filled_while_down`` more, and (``exit_while_down``) a resting sell of 0.01 the
    bot had sent filled."""
    venue = PaperBroker(PaperBrokerParams())
    venue.connect(BrokerContext(BOT, "paper", ("BTCUSDT",), "USD", 10_000.0))  # type: ignore[arg-type]
    journal = Journal(folder / "journal.sqlite", durable=True)
    start_test_run(journal, "r2", bot=BOT, mode="live")
    config = EngineConfig(BOT, "live", ("BTCUSDT",), HOUR, 10_000.0)
    engine = Engine(config, Idle(None), venue, journal, venue=venue, brackets=cutter)
    stop, target = bracket_children(ENTRY, 0.04, T0 + 60)
    working: list[tuple[Order, float]] = [
        (ENTRY, 0.04),
        (stop._replace(quantity=0.03), 0.0),
        (target._replace(quantity=0.03), 0.0),
    ]
    if exit_while_down:
        working.append((EXIT, 0.0))
    bought = Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, 0.04, 100.0, 0.0, T0 + 60, "t1")
    sell = Fill(PREFIX + "2", "BTCUSDT", Side.SELL, 0.01, 101.0, 0.0, T0 + 90, "t2")
    venue_fills = [bought, sell]
    if filled_while_down:
        more = filled_while_down
        venue_fills.append(
            Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, more, 100.0, 0.0, T0 + 200, "t4")
        )
    if exit_while_down:
        venue_fills.append(
            Fill(EXIT.client_order_id, "BTCUSDT", Side.SELL, 0.01, 99.0, 0.0, T0 + 300, "t5")
        )
    held = round(0.03 + filled_while_down - (0.01 if exit_while_down else 0.0), 8)
    known = frozenset({o.client_order_id for o, _ in working} | {PREFIX + "2"})
    state = CarriedState(
        10_000.0, fills=[bought, sell], working=working, runs=1, known_order_ids=known
    )
    plan = plan_reconciliation(
        prefix=PREFIX,
        symbols=["BTCUSDT"],
        journal_fills=[bought, sell],
        journal_working={o.client_order_id: o for o, _ in working},
        known_order_ids=known,
        venue_orders=[_report(ENTRY, 0.1, 0.04 + filled_while_down)],
        venue_fills=venue_fills,
        venue_positions=[PositionReport("BTCUSDT", held, 100.0)],
        now=T0 + HOUR,
    )
    assert set(plan.resend) == {SL, TP} and not plan.degraded, plan
    engine.restore_from_venue(state, plan, T0 + HOUR)
    return engine, venue, journal


def _sent(venue: PaperBroker) -> dict[str, float]:
    """The children at the venue: what was sent."""
    return {
        o.client_order_id: round(o.quantity, 8)
        for o in venue.open_orders()
        if o.parent_id == ENTRY.client_order_id
    }


def test_a_resent_child_keeps_its_cut_and_never_closes_more_than_held(tmp_path: Path) -> None:
    cutter = Cutter()
    engine, venue, journal = _restart(tmp_path, cutter)
    # The broker sizing children itself is told the cuts of the resent children before it
    # follows the entry (the engine sends them below, at their cut size).
    assert cutter.calls[:2] == [
        ("restore", {SL: 0.01, TP: 0.01}),
        ("follow", ENTRY.client_order_id),
    ]
    assert _children(engine) == {SL: 0.03, TP: 0.03}
    assert _sent(venue) == {SL: 0.03, TP: 0.03}
    # The entry fills 0.02 more: 0.05 held, and the children grow to it, not to 0.06.
    engine._on_fill(
        Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, 0.02, 100.0, 0.0, T0 + HOUR, "t3")
    )
    assert engine.position("BTCUSDT").quantity == pytest.approx(0.05)
    assert _children(engine) == {SL: 0.05, TP: 0.05}
    journal.close()


def test_a_resent_child_is_sent_at_its_entrys_fills_while_down_less_its_cut(
    tmp_path: Path,
) -> None:
    """The entry filled 0.02 more while the bot was down: 0.05 held; the children go at 0.05
    (0.06 filled less the 0.01 cut), not at the 0.03 journaled nor at 0.06."""
    engine, venue, journal = _restart(tmp_path, Cutter(), filled_while_down=0.02)
    assert engine.position("BTCUSDT").quantity == pytest.approx(0.05)
    assert _children(engine) == {SL: 0.05, TP: 0.05}
    assert _sent(venue) == {SL: 0.05, TP: 0.05}
    journal.close()


def test_a_resent_child_is_capped_to_a_position_closed_in_part_while_down(
    tmp_path: Path,
) -> None:
    """A sell of 0.01 the bot had resting filled while it was down: 0.02 held; the children
    are sent at 0.02 — cut in the book, never cut at a venue that has nothing of them yet."""
    cutter = Cutter()
    engine, venue, journal = _restart(tmp_path, cutter, exit_while_down=True)
    assert engine.position("BTCUSDT").quantity == pytest.approx(0.02)
    assert _children(engine) == {SL: 0.02, TP: 0.02}
    assert _sent(venue) == {SL: 0.02, TP: 0.02}
    assert not [call for call in cutter.calls if call[0] == "cut"]
    # The broker sizing children itself is told the whole cut (0.01 earlier, 0.01 now) before
    # it follows the entry: it grows them as the engine does, not to 0.05 over 0.04 held.
    follow = cutter.calls.index(("follow", ENTRY.client_order_id))
    told: dict[str, float] = {}
    for kind, cuts in cutter.calls[:follow]:
        if kind == "restore":
            assert isinstance(cuts, dict)
            for child_id, cut in cuts.items():
                told[child_id] = max(told.get(child_id, 0.0), cut)  # as the ccxt broker keeps it
    assert told == {SL: 0.02, TP: 0.02}
    # The next fill of the entry grows them by what it fills, less both cuts.
    engine._on_fill(
        Fill(ENTRY.client_order_id, "BTCUSDT", Side.BUY, 0.02, 100.0, 0.0, T0 + HOUR, "t3")
    )
    assert _children(engine) == {SL: 0.04, TP: 0.04}
    journal.close()
