"""R27 (b17c3ff): a hedging ticket opened by two deals counts for its whole opening volume.

On a hedging account one order filled in parts opens one position through several deals, each
``DEAL_ENTRY_IN`` under the same ``position_id``. ``opened_lots`` keeps only the first of them
(``setdefault``), so a ticket B opened 0.04 + 0.06 lot counts as opened with 0.04. With a
person's 0.04 closed of B by hand while the bot was down and B's remaining 0.06 fired on the
child's line, B then counts for max(0.06, 0.04) = 0.06 < the journal's 0.1 lot child: the
restart judges the set-apart ticket A's close at the person's line by the oldest ticket and
books it as the child's fill — the child filled twice (0.06 + 0.1), the very case b17c3ff fixes
for a ticket opened by one deal. Failed before every opening deal was summed.

Likewise a ticket's close on its line filled in parts is several deals of that ticket: the lots
it fired with (``Mt5Broker._fired_lots``) are their sum, not the last deal's.
"""

from __future__ import annotations

from types import SimpleNamespace

from tradefleet_plugins.brokers.mt5_broker import Mt5Broker
from tradefleet_plugins.brokers.mt5_params import Mt5BrokerParams
from tradefleet_plugins.brokers.mt5_reports import (
    DEAL_REASON_SL,
    opened_lots,
    restart_fired_outside,
)

HALF = 0.000005
MAGIC = 424242


def _deals() -> list[SimpleNamespace]:
    return [
        SimpleNamespace(entry=0, position_id=7001, order=7001, volume=0.1),  # A, one deal
        SimpleNamespace(entry=0, position_id=7002, order=7002, volume=0.04),  # B, first part
        SimpleNamespace(entry=0, position_id=7002, order=7002, volume=0.06),  # B, the rest
        SimpleNamespace(entry=1, position_id=7002, order=7010, volume=0.04),  # by hand
        SimpleNamespace(entry=1, position_id=7002, order=7011, volume=0.06),  # B's SL fired
    ]


def test_opened_lots_sums_every_opening_deal_of_a_position() -> None:
    opened = opened_lots(_deals())
    assert abs(opened[7002] - 0.1) < 1e-9, opened  # was {7002: 0.04}


def test_a_set_apart_ticket_firing_is_outside_when_its_sibling_opened_in_two_deals() -> None:
    fired = {7001: (1.090, 0.1), 7002: (1.095, 0.06)}
    assert restart_fired_outside(
        7001,
        "sl",
        1.09,
        [],
        HALF,
        fired=fired,
        booked=1.095,
        journaled=0.1,
        opened=opened_lots(_deals()),
    ), "A's close at the person's line booked as a second fill of the 0.1 lot child"


def _closer(ticket: int, position_id: int, volume: float, level: str, **fields: object) -> object:
    """A deal the terminal made closing ``position_id`` on its SL at ``level`` (the bot's)."""
    base: dict[str, object] = dict(
        ticket=ticket,
        position_id=position_id,
        magic=MAGIC,
        reason=DEAL_REASON_SL,
        entry=1,
        volume=volume,
        comment=f"[sl {level}]",
    )
    base.update(fields)
    return SimpleNamespace(**base)


def _near(got: tuple[float, float], want: tuple[float, float]) -> bool:
    """(level, lots) equal within the 1e-9 margin lots are compared with."""
    return all(abs(g - w) < 1e-9 for g, w in zip(got, want, strict=True))


def _broker() -> Mt5Broker:
    """A broker that knows tickets A (7001) and B (7002) as entry ``e1``'s (no terminal read)."""
    broker = Mt5Broker(Mt5BrokerParams(magic=MAGIC))
    broker._parents.update({7001: "e1", 7002: "e1"})
    return broker


def test_fired_lots_sums_every_closing_deal_of_a_ticket() -> None:
    """B's SL close filled in two deals (0.03 + 0.03): B fired with 0.06, not the last 0.03.
    A person's close by hand (another reason) and another entry's ticket are not counted."""
    closers = [
        _closer(9001, 7001, 0.1, "1.09000"),  # A, at the person's line
        _closer(9002, 7002, 0.03, "1.09500"),  # B, first part
        SimpleNamespace(ticket=9003, position_id=7002, magic=MAGIC, reason=0, entry=1,
                        volume=0.04, comment=""),  # by hand
        _closer(9004, 7002, 0.03, "1.09500"),  # B, the rest
        _closer(9005, 7003, 0.5, "1.09500"),  # another entry's ticket
    ]  # fmt: skip
    broker = _broker()
    broker._parents[7003] = "e2"
    fired = broker._fired_lots(closers, "sl", "e1")
    assert sorted(fired) == [7001, 7002]
    assert _near(fired[7001], (1.09, 0.1)), fired
    assert _near(fired[7002], (1.095, 0.06)), fired  # was (1.095, 0.03)
    # Without B's opening deals to read, its fired lots alone account for the 0.06 lot child
    # the running bot cut to B: A's close at the person's line is outside it, never the
    # child's fill (the last deal's 0.03 judged it by the oldest ticket, A: the child's).
    assert restart_fired_outside(
        7001, "sl", 1.09, [], HALF, fired=fired, booked=1.095, journaled=0.06
    )


def test_fired_lots_of_one_closing_order_is_its_volume() -> None:
    """An order closer (``volume_initial``) is read as before: one order, its volume."""
    order = _closer(9101, 7002, 0.0, "1.09500", volume_initial=0.06)
    fired = _broker()._fired_lots([order], "sl", "e1")
    assert sorted(fired) == [7002]
    assert _near(fired[7002], (1.095, 0.06)), fired
