"""Client order ids are deterministic, short enough for venues, and never submitted twice."""

from __future__ import annotations

import re

from tests.runtime.helpers import Scripted, bar, make_engine, run
from tradefleet_plugins.brokers.paper import PaperBroker
from tradefleet_plugins.brokers.paper_params import PaperBrokerParams
from tradefleet_runtime.brackets import STOP_LOSS_TAG, TAKE_PROFIT_TAG, bracket_role
from tradefleet_runtime.model import Order, OrderStatus, Side
from tradefleet_runtime.order_ids import (
    bot_prefix,
    child_order_id,
    client_order_id,
    original_order_id,
    replacement_order_id,
    venue_replacement_id,
)

BINANCE_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def test_ids_are_a_pure_function_of_bot_bar_symbol_and_sequence() -> None:
    prefix = bot_prefix("eurusd-ema")
    first = client_order_id(prefix, 1_700_000_000, "EURUSD", 0)
    assert first == client_order_id(bot_prefix("eurusd-ema"), 1_700_000_000, "EURUSD", 0)
    others = {
        client_order_id(prefix, 1_700_000_000, "EURUSD", 1),
        client_order_id(prefix, 1_700_003_600, "EURUSD", 0),
        client_order_id(prefix, 1_700_000_000, "GBPUSD", 0),
        client_order_id(bot_prefix("other-bot"), 1_700_000_000, "EURUSD", 0),
    }
    assert first not in others and len(others) == 4


def test_ids_fit_binance_and_mt5_comment_limits() -> None:
    parent = client_order_id(bot_prefix("x" * 63), 4_102_444_800, "BTC/USDT", 999)
    child = child_order_id(parent, "sl")
    assert BINANCE_CLIENT_ID.match(child)
    assert len(child) <= 31  # an MT5 comment keeps about 31 characters


def test_a_bracket_childs_id_names_its_parent_and_role() -> None:
    """What a restarted broker knows an earlier run's bracket by; no other id of the bot's is
    taken for a child (sequences are base 36, replacements end in ``~n``)."""
    prefix = bot_prefix("eurusd-ema")
    parents = [client_order_id(prefix, 1_700_000_000, "BTC/USDT", n) for n in (0, 35, 36 * 36)]
    for parent in parents:
        assert bracket_role(child_order_id(parent, "sl")) == (parent, STOP_LOSS_TAG)
        assert bracket_role(child_order_id(parent, "tp")) == (parent, TAKE_PROFIT_TAG)
        assert bracket_role(parent) is None
        assert bracket_role(replacement_order_id(parent, 1)) is None
    assert bracket_role("-sl") is None
    assert bracket_role(f"{parents[0]}-xx") is None


def test_a_replaced_order_is_known_by_its_own_id() -> None:
    """A venue holds an order amended by cancel-replace under the replacement's id: ``~n``
    (``replacement_order_id``) or, where ``~`` is not allowed (Binance spot), ``-a<n>``
    (``venue_replacement_id``). ``original_order_id`` gives the bot's id back, so a replaced
    bracket child keeps its role and group; no id the bot makes is changed by it."""
    prefix = bot_prefix("btc-spot")
    parent = client_order_id(prefix, 1_700_000_000, "BTC/USDT", 37)
    stop = child_order_id(parent, "sl")
    for moved in (
        replacement_order_id(stop, 1),
        replacement_order_id(stop, 36),
        venue_replacement_id(stop, 1),
        venue_replacement_id(venue_replacement_id(stop, 1), 2),
    ):
        assert original_order_id(moved) == stop, moved
        assert bracket_role(moved) == (parent, STOP_LOSS_TAG), moved
    assert venue_replacement_id(stop, 2) == f"{stop}-a2"
    assert BINANCE_CLIENT_ID.match(venue_replacement_id(stop, 99))
    for own in (parent, stop, child_order_id(parent, "tp"), prefix + "reconcile"):
        assert original_order_id(own) == own
    assert original_order_id(replacement_order_id(parent, 3)) == parent
    assert bracket_role(replacement_order_id(parent, 3)) is None


def test_two_runs_of_the_same_bot_produce_the_same_ids() -> None:
    def ids() -> list[str]:
        strategy = Scripted({0: lambda c, b: c.buy("TEST", 1), 2: lambda c, b: c.close("TEST")})
        engine, _ = run(strategy, [bar(i, 100, 101, 99, 100) for i in range(4)])
        return [row[0] for row in engine.journal.query("SELECT client_order_id FROM orders")]

    assert ids() == ids()


def test_paper_broker_refuses_a_resubmitted_id() -> None:
    broker = PaperBroker(PaperBrokerParams())
    order = Order("tf-abc", "TEST", Side.BUY, 1.0)
    assert broker.submit(order).status is OrderStatus.OPEN
    again = broker.submit(order)
    assert (again.status, again.reason) == (OrderStatus.REJECTED, "duplicate client order id")
    assert len(broker.open_orders()) == 1


def test_engine_journals_every_order_before_sending_it() -> None:
    strategy = Scripted({0: lambda c, b: c.buy("TEST", 1)})
    engine = make_engine(strategy)
    engine.run([bar(0, 100, 100, 100, 100)])
    rows = engine.journal.query("SELECT status FROM order_updates ORDER BY id")
    assert rows == [("pending",), ("open",)]  # journaled before sending, then the broker's answer
    assert engine.journal.query("SELECT status FROM order_status") == [("open",)]
