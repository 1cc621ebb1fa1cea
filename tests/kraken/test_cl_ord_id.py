"""Kraken's ``cl_ord_id`` rules, driven through the real ccxt.

Kraken's "Spot Client Order Identifiers" guide: three formats (a long UUID, 36
characters with hyphens; a short UUID, 32 hex digits; free text of at most 18
characters), and uniqueness enforced among the client's OPEN orders only.  So a client
id is no idempotency key for an order that has already filled or been cancelled: the
same id is accepted again then, and a second order is placed.
"""

from __future__ import annotations

import ccxt
import pytest

from tests.venues.kraken.server import FakeKraken
from tests.venues.kraken.state import valid_cl_ord_id

from .helpers import ASYNC_MODES, BTC, MODE_IDS, call, client

modes = pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)
LONG_UUID = "6d1b345e-2821-40e2-ad83-4ecb18a06876"
SHORT_UUID = "6d1b345e282140e2ad834ecb18a06876"


@pytest.fixture
def ex(kraken: ccxt.kraken) -> ccxt.kraken:
    kraken.load_markets()
    return kraken


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a" * 18, True),
        ("a" * 19, False),
        ("x", True),
        ("tf-0123456789-abcd", True),  # 18, punctuation allowed
        (LONG_UUID, True),
        (LONG_UUID.upper(), True),
        (SHORT_UUID, True),
        (SHORT_UUID[:-1] + "g", False),  # 32 characters, not hex
        (LONG_UUID.replace("-", "_"), False),  # 36 characters, not a UUID
        (SHORT_UUID + "0", False),  # 33 hex digits
        ("has space", False),
        ("é" * 3, False),
        ("", False),
    ],
)
def test_the_three_formats(value: str, ok: bool) -> None:
    assert valid_cl_ord_id(value) is ok


def test_18_characters_accepted_19_refused(ex: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "b" * 18})
    with pytest.raises(ccxt.ExchangeError, match="Invalid arguments:cl_ord_id") as err:
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "c" * 19})
    assert type(err.value) is ccxt.ExchangeError  # not in ccxt's map: a plain ExchangeError
    assert [o.cl_ord_id for o in fake_kraken.orders()] == ["b" * 18]
    ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": LONG_UUID})
    ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": SHORT_UUID})
    assert len(fake_kraken.orders()) == 3


@pytest.mark.parametrize("async_", ASYNC_MODES, ids=MODE_IDS)
async def test_duplicate_among_open_orders_refused(fake_kraken: FakeKraken, async_: bool) -> None:
    async with client(fake_kraken, async_) as ex:
        first = await call(
            ex.create_order, BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "dup"}
        )
        with pytest.raises(ccxt.ExchangeError, match="EOrder:Duplicate order") as err:
            await call(ex.create_order, BTC, "limit", "buy", 0.02, 41_000, {"clientOrderId": "dup"})
        assert type(err.value) is ccxt.ExchangeError
        assert [o.txid for o in fake_kraken.orders()] == [first["id"]]
        await call(ex.edit_order, first["id"], BTC, "limit", "buy", 0.03, None)  # still open
        with pytest.raises(ccxt.ExchangeError, match="Duplicate order"):
            await call(ex.create_order, BTC, "market", "buy", 0.01, None, {"clientOrderId": "dup"})


@modes
async def test_same_id_accepted_again_once_the_first_is_filled(
    fake_kraken: FakeKraken, async_: bool
) -> None:
    """The reason the fake exists: after a fill (or a cancel) the id is free again, and the
    venue places a second order under it; both then show up filtered by that id."""
    async with client(fake_kraken, async_) as ex:
        first = await call(
            ex.create_order, BTC, "market", "buy", 0.01, None, {"clientOrderId": "again"}
        )
        second = await call(
            ex.create_order, BTC, "limit", "buy", 0.01, 45_000, {"clientOrderId": "again"}
        )
        assert second["id"] != first["id"]
        with pytest.raises(ccxt.ExchangeError, match="Duplicate order"):  # second is open
            await call(
                ex.create_order, BTC, "limit", "buy", 0.01, 45_000, {"clientOrderId": "again"}
            )
        await call(ex.cancel_order, None, BTC, {"clientOrderId": "again"})  # cancels the open one
        third = await call(
            ex.create_order, BTC, "limit", "buy", 0.01, 45_000, {"clientOrderId": "again"}
        )
        closed = await call(ex.fetch_closed_orders, BTC, None, None, {"clientOrderId": "again"})
        assert sorted(x["id"] for x in closed) == sorted([first["id"], second["id"]])
        opened = await call(ex.fetch_open_orders, BTC, None, None, {"clientOrderId": "again"})
        assert [x["id"] for x in opened] == [third["id"]]
        assert len(fake_kraken.orders()) == 3


def test_cl_ord_id_and_userref_are_exclusive(ex: ccxt.kraken, fake_kraken: FakeKraken) -> None:
    with pytest.raises(ccxt.BadRequest):  # "EGeneral:Invalid arguments"
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"clientOrderId": "x1", "userref": 5})
    with pytest.raises(ccxt.ExchangeError, match="Invalid arguments:userref"):
        ex.create_order(BTC, "limit", "buy", 0.01, 40_000, {"userref": "abc"})
    assert fake_kraken.orders() == []


def test_cancel_and_amend_by_cl_ord_id_reach_only_open_orders(
    ex: ccxt.kraken, fake_kraken: FakeKraken
) -> None:
    ex.create_order(BTC, "market", "buy", 0.01, None, {"clientOrderId": "gone"})
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(None, BTC, {"clientOrderId": "gone"})
    with pytest.raises(ccxt.InvalidOrder, match="Unknown order"):
        ex.edit_order(None, BTC, "limit", "buy", None, 40_000, {"clientOrderId": "gone"})
