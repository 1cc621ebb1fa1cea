"""A live bot on Binance spot, on an account funded in USDT only, SIGKILLed with a position
open and started again.

Binance takes a spot buy's commission from the coin bought: a buy of 0.01 BTC leaves the
account 0.00999. The bot holds what the account holds, so its stop-loss sells what is there,
its restart finds the venue's balance covering its position (reconciled, not degraded), and the
stop closes the position to the last satoshi. The stop-loss and take-profit work as one OCO
order list, which holds the coin once: the venue expires the target when the stop triggers.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.serve_process import ServeProcess, control
from tests.e2e.test_live_ccxt_restart import (
    API_KEY,
    API_SECRET,
    PRICE,
    VENUE_SYMBOL,
    _bot,
    _journal,
    _kill,
    _serve,
    _signal,
    _until,
)
from tests.venues.binance.server import FakeBinance
from tradefleet_runtime.api.v1 import runtime_pb2 as pb

SYMBOL = "BTC/USDT"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    venue = FakeBinance().start()
    venue.add_account(API_KEY, API_SECRET, spot={"USDT": 100_000})  # no BTC
    venue.api_key = API_KEY
    venue.set_price(VENUE_SYMBOL, PRICE, market="spot")
    try:
        yield venue
    finally:
        venue.stop()


def _btc(fake: FakeBinance) -> Decimal:
    """The account's BTC at the venue, free and held by orders."""
    with fake.state.lock:
        account = fake.state.accounts[API_KEY]
        return account.spot_free.get("BTC", Decimal(0)) + account.spot_locked.get("BTC", Decimal(0))


def _order_status(fake: FakeBinance, client_id: str) -> str:
    return next((str(o.status) for o in fake.orders("spot") if o.client_order_id == client_id), "")


def _held(serve: ServeProcess) -> float:
    positions = serve.stub().ListPositions(pb.ListPositionsRequest(), metadata=control())
    return sum(p.quantity for p in positions.positions if p.symbol == SYMBOL)


def _restarted_bracket_is_one_list(
    folder: Path, fake: FakeBinance, manifest: str, monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    """Started again, the bot has ``entry``'s stop-loss and take-profit working at the venue
    as one OCO list over what the account holds; the price through the take-profit sells all
    of it, and the venue expires the stop."""
    stop, target = f"{entry}-sl", f"{entry}-tp"
    again = _serve(folder, manifest, monkeypatch)
    try:
        _until(lambda: _order_status(fake, stop) == _order_status(fake, target) == "NEW")
        with fake.state.lock:
            legs = [o for o in fake.orders("spot") if o.client_order_id in (stop, target)]
        assert len({leg.order_list_id for leg in legs}) == 1 and legs[0].order_list_id != -1
        assert _held(again) == 0.00999
        fake.set_price(VENUE_SYMBOL, PRICE * 1.05, market="spot")
        again.wait_for(lambda s: s.open_positions == 0 and s.open_orders == 0)
    finally:
        assert again.terminate() == 0
    assert (_order_status(fake, stop), _order_status(fake, target)) == ("EXPIRED", "FILLED")
    assert _btc(fake) == 0  # the target sold all of it


def test_a_spot_position_is_what_the_account_holds_through_a_restart_to_its_stop(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _bot(tmp_path, fake, "market", SYMBOL, "binance", "spot")
    serve = _serve(tmp_path, manifest, monkeypatch)
    order_id = _signal(serve, PRICE, SYMBOL)
    stop, target = f"{order_id}-sl", f"{order_id}-tp"
    _until(lambda: _order_status(fake, stop) == _order_status(fake, target) == "NEW")
    assert _btc(fake) == Decimal("0.00999")  # 0.01 less the 0.1 % fee, in BTC
    _until(lambda: _held(serve) == 0.00999)
    _kill(serve)

    again = _serve(tmp_path, manifest, monkeypatch)  # waits for running and reconciled
    try:
        assert _held(again) == 0.00999
        fake.set_price(VENUE_SYMBOL, PRICE * 0.95, market="spot")
        again.wait_for(lambda s: s.open_positions == 0 and s.open_orders == 0)
    finally:
        assert again.terminate() == 0
    assert (_order_status(fake, stop), _order_status(fake, target)) == ("FILLED", "EXPIRED")
    assert _btc(fake) == 0  # the stop sold all of it

    db = sqlite3.connect(tmp_path / "journal.sqlite")
    try:
        fills = [r[0] for r in db.execute("SELECT fill_id FROM fills")]
        rows = dict(
            db.execute(
                "SELECT client_order_id, SUM(quantity) FROM fills GROUP BY client_order_id"
            ).fetchall()
        )
        statuses = dict(db.execute("SELECT client_order_id, status FROM order_status").fetchall())
        notes = [
            r[0] for r in db.execute("SELECT message FROM events WHERE kind = 'reconcile_note'")
        ]
    finally:
        db.close()
    with fake.state.lock:
        venue_fills = [
            str(t.id)
            for (account, _symbol), trades in fake.state.spot.trades.items()
            if account == API_KEY
            for t in trades
        ]
    assert Counter(fills) == Counter(venue_fills)
    assert rows == {order_id: 0.00999, stop: 0.00999}
    assert (statuses[stop], statuses[target]) == ("filled", "cancelled")
    assert not [n for n in notes if "the journal holds" in n], notes


def test_an_entry_filled_while_down_gets_its_bracket_as_one_order_list_after_restart(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot dies before the venue's answer to its entry: it never saw the fill, so it never
    placed the bracket. The restarted bot places it, and on Binance spot as one OCO list: sent
    as two orders, the stop-loss would hold the coin and the venue would refuse the target."""
    manifest = _bot(tmp_path, fake, "market", SYMBOL, "binance", "spot")
    serve = _serve(tmp_path, manifest, monkeypatch)
    fake.faults.inject("accept_then_timeout", path="/api/v3/order", method="POST")
    order_id = _signal(serve, PRICE, SYMBOL)
    _until(lambda: _order_status(fake, order_id) == "FILLED")
    _kill(serve)
    fake.faults.clear()
    _restarted_bracket_is_one_list(tmp_path, fake, manifest, monkeypatch, order_id)


def test_a_bracket_the_venue_never_received_is_placed_as_one_order_list_after_restart(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry filled and the bot journaled its stop-loss and take-profit, then died before
    the venue took them (their requests hung). The restarted bot places them as one OCO list,
    as at the fill: sent as two orders again, the stop-loss would hold the coin and the venue
    would refuse the take-profit for the balance."""
    manifest = _bot(tmp_path, fake, "limit", SYMBOL, "binance", "spot")
    serve = _serve(tmp_path, manifest, monkeypatch)
    order_id = _signal(serve, PRICE * 0.99, SYMBOL)
    _until(lambda: _order_status(fake, order_id) == "NEW")
    for path in ("/api/v3/order", "/api/v3/orderList/oco"):
        fake.faults.inject("timeout", path=path, method="POST", times=None, hold_s=30)
    fake.set_price(VENUE_SYMBOL, PRICE * 0.985, market="spot")  # the limit entry fills
    stop, target = f"{order_id}-sl", f"{order_id}-tp"
    _until(lambda: {stop, target} <= set(_journal(tmp_path)[1]))
    _kill(serve)
    fake.faults.clear()
    assert _order_status(fake, stop) == _order_status(fake, target) == ""  # never received
    _restarted_bracket_is_one_list(tmp_path, fake, manifest, monkeypatch, order_id)
