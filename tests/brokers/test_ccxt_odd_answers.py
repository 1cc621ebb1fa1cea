"""Venue answers that are wrong but well-formed JSON, and credential files that go bad: the
broker books no fill it cannot trust, ends what the venue ended, and says what is wrong once,
naming the field or the file (never a credential).

The fake Binance's answers are rewritten on their way out (``_Rewrites``): the matching
engine behind them stays right, so the venue's next honest answer is the truth to reach.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.brokers.harness import QUANTITY, VenueHarness
from tests.venues.binance.server import FakeBinance
from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_credentials import CredentialsError, read_credentials
from tradefleet_plugins.brokers.ccxt_orders import trade_problem
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams
from tradefleet_runtime.sdk import (
    BrokerContext,
    Fill,
    OrderStatus,
    OrderType,
    OrderUpdate,
    ReasonCode,
    Side,
)

Rewrite = Callable[[Any], Any]


class _Rewrites:
    """Rewrites of the fake's 200 answers on one (method, path), each ``times`` times (None:
    for ever)."""

    def __init__(self) -> None:
        self.rules: list[list[Any]] = []  # [method, path, fn, times left]

    def add(self, method: str, path: str, fn: Rewrite, times: int | None) -> None:
        self.rules.append([method, path, fn, times])

    def clear(self) -> None:
        self.rules.clear()

    def apply(self, request: web.Request, answer: web.StreamResponse) -> web.StreamResponse:
        if not isinstance(answer, web.Response) or answer.status != 200 or answer.text is None:
            return answer
        for rule in self.rules:
            method, path, fn, times = rule
            if request.method != method or request.path != path or times == 0:
                continue
            if times is not None:
                rule[3] = times - 1
            body = fn(json.loads(answer.text))
            return web.Response(text=json.dumps(body), content_type="application/json")
        return answer


@pytest.fixture
def rewrites(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Rewrites]:
    """Every FakeBinance started in the test answers through these rewrites."""
    found = _Rewrites()
    original = FakeBinance._dispatch

    async def dispatch(self: FakeBinance, request: web.Request) -> web.StreamResponse:
        return found.apply(request, await original(self, request))

    monkeypatch.setattr(FakeBinance, "_dispatch", dispatch)
    yield found


def _each(**fields: Any) -> Rewrite:
    return lambda rows: [{**row, **fields} for row in rows]


def _without(*keys: str) -> Rewrite:
    return lambda rows: [{k: v for k, v in row.items() if k not in keys} for row in rows]


def _spot(tmp_path: Path) -> VenueHarness:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    return VenueHarness("binance-spot", credentials)


def _fills(harness: VenueHarness, cid: str) -> list[Fill]:
    return [e for e in harness.events if isinstance(e, Fill) and e.client_order_id == cid]


def _warnings(caplog: pytest.LogCaptureFixture, *words: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and all(w in r.getMessage() for w in words)
    ]


# -- trade rows ------------------------------------------------------------------------------


def test_a_trade_row_with_a_negative_amount_and_price_is_refused_not_booked(
    tmp_path: Path, rewrites: _Rewrites, caplog: pytest.LogCaptureFixture
) -> None:
    """The venue's trade list names the bot's fill with qty -0.5 at price -1 (three reads),
    then rightly: the fill booked is the venue's true one, once, and never the negative one."""
    caplog.set_level(logging.WARNING, logger="tradefleet.brokers.ccxt")
    harness = _spot(tmp_path)
    try:
        rewrites.add("GET", "/api/v3/myTrades", _each(price="-1", qty="-0.5"), 3)
        harness.broker.submit(harness.order("neg1"))
        final = harness.wait_final("neg1")
        assert final.status is OrderStatus.FILLED
        fills = _fills(harness, "neg1")
        assert fills, "the true fill, read once the venue answers it rightly"
        assert all(f.quantity > 0 and f.price > 0 for f in fills)
        assert harness.filled("neg1") == pytest.approx(QUANTITY)
        harness.assert_venue_matches()
        said = _warnings(caplog, "malformed trade", "binance", "amount")
        assert len(said) == 1, [r.getMessage() for r in said]
        assert fills[0].fill_id in said[0].getMessage()  # names the trade
        assert not harness.broker.open_orders()
    finally:
        harness.close()


def test_a_trade_row_that_stays_malformed_is_never_booked_and_the_order_waits(
    tmp_path: Path, rewrites: _Rewrites, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a right row the bot cannot know the fill: it books none, the order does not end
    (its end follows its fills), and the warning is said once, not at every poll."""
    caplog.set_level(logging.WARNING, logger="tradefleet.brokers.ccxt")
    harness = _spot(tmp_path)
    try:
        rewrites.add("GET", "/api/v3/myTrades", _each(price="0", qty="0.01"), None)
        harness.broker.submit(harness.order("neg2"))
        time.sleep(1.5)
        harness.collect()
        assert _fills(harness, "neg2") == []
        assert harness.final("neg2") is None
        assert harness.broker.positions() == {}
        assert len(_warnings(caplog, "malformed trade", "price")) == 1
    finally:
        harness.close()


def test_trade_rows_without_an_id_are_refused_not_booked_under_none(
    tmp_path: Path, rewrites: _Rewrites, caplog: pytest.LogCaptureFixture
) -> None:
    """Two fills whose rows lack their ids: an id-less row is not booked (as 'None', two of
    them would be one fill); once the venue names them, each is booked once under its id."""
    caplog.set_level(logging.WARNING, logger="tradefleet.brokers.ccxt")
    harness = _spot(tmp_path)
    try:
        harness.fake.faults.inject("partial_fill", path="/api/v3/order", method="POST")
        rewrites.add("GET", "/api/v3/myTrades", _without("id"), 6)
        harness.broker.submit(harness.order("noid1", order_type=OrderType.LIMIT, price=50_100.0))
        harness.wait_for(lambda _e: bool(_fills(harness, "noid1")), 10)
        harness.trade_through(50_050.0)
        harness.wait_final("noid1")
        ids = [f.fill_id for f in _fills(harness, "noid1")]
        assert "None" not in ids and "" not in ids
        assert len(ids) == 2 == len(set(ids))
        harness.assert_venue_matches()
        assert _warnings(caplog, "malformed trade", "id: missing")
    finally:
        harness.close()


def test_trade_problem_names_each_field() -> None:
    good = {
        "id": "7",
        "amount": 0.01,
        "price": 50_000.0,
        "side": "buy",
        "symbol": "BTC/USDT",
        "order": "12",
    }
    assert trade_problem(good, "BTC/USDT", Side.BUY) is None
    cases = {
        "id": {"id": None},
        "amount": {"amount": -0.5},
        "price": {"price": float("nan")},
        "side": {"side": "sell"},
        "symbol": {"symbol": "ETH/USDT"},
        "order": {"order": None},
    }
    for field_name, change in cases.items():
        problem = trade_problem({**good, **change}, "BTC/USDT", Side.BUY)
        assert problem is not None and problem.startswith(f"{field_name}:"), (field_name, problem)
    assert trade_problem({**good, "amount": float("inf")}, "BTC/USDT") is not None
    assert trade_problem({**good, "id": "None"}, "BTC/USDT") is not None


# -- order answers ---------------------------------------------------------------------------


def test_an_answer_filled_above_the_ordered_quantity_still_ends_the_order_filled(
    tmp_path: Path, rewrites: _Rewrites, caplog: pytest.LogCaptureFixture
) -> None:
    """The order's answer says FILLED with executedQty 5 for an order of 0.01: the order ends
    FILLED with the fills the venue's trades name, and leaves the broker's book."""
    caplog.set_level(logging.WARNING, logger="tradefleet.brokers.ccxt")
    harness = _spot(tmp_path)
    try:
        rewrites.add(
            "POST",
            "/api/v3/order",
            lambda body: {**body, "executedQty": "5", "status": "FILLED"},
            1,
        )
        harness.broker.submit(harness.order("over1"))
        final = harness.wait_final("over1")
        assert final.status is OrderStatus.FILLED
        assert harness.filled("over1") == pytest.approx(QUANTITY)
        assert final.filled_quantity == pytest.approx(harness.held("over1"))
        assert not harness.broker.open_orders()
        harness.assert_venue_matches()
        assert len(_warnings(caplog, "over1", "above")) == 1
    finally:
        harness.close()


# -- credential files ------------------------------------------------------------------------


def test_an_api_key_file_removed_mid_run_rejects_the_order_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tradefleet.brokers.ccxt")
    harness = _spot(tmp_path)
    key = (harness.credentials / "apiKey").read_text()
    try:
        assert harness.broker.is_connected()
        (harness.credentials / "apiKey").unlink()
        sent = len(harness.fake.requests)
        harness.broker.submit(harness.order("nokey1", order_type=OrderType.LIMIT, price=45_000.0))
        final = harness.wait_final("nokey1")
        assert final.status is OrderStatus.REJECTED
        assert final.code is ReasonCode.AUTHENTICATION
        assert "apiKey" in final.reason and key not in final.reason
        time.sleep(1.0)  # twenty polls
        assert not harness.broker.is_connected()
        assert len(harness.fake.requests) == sent  # nothing signed without the key
        failed = [r for r in caplog.records if "poll failed" in r.getMessage()]
        assert len(failed) == 1 and not failed[0].exc_info
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # The key comes back: connected again, and orders go.
        (harness.credentials / "apiKey").write_text(key)
        harness.wait_for(lambda _e: harness.broker.is_connected(), 5)
        harness.broker.submit(harness.order("nokey2", order_type=OrderType.LIMIT, price=45_000.0))
        update = harness.answer(OrderUpdate("nokey2", OrderStatus.PENDING, 0))
        assert update.status is OrderStatus.OPEN
        assert not any(key in r.getMessage() for r in caplog.records)
    finally:
        harness.close()


def test_a_non_utf8_key_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "apiKey").write_bytes(b"PLANTEDbin\xff\xfeSECRETPART")
    (tmp_path / "secret").write_text("s3cr3t-value")
    with pytest.raises(CredentialsError) as raised:
        read_credentials(tmp_path)
    message = str(raised.value)
    assert "apiKey: not UTF-8 text" in message and str(tmp_path) in message
    assert "PLANTED" not in message and "SECRETPART" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_a_key_with_a_newline_inside_is_refused_before_any_request(tmp_path: Path) -> None:
    fake = FakeBinance().start()
    try:
        (tmp_path / "apiKey").write_text(fake.api_key[:10] + "\n" + fake.api_key[10:] + "\n")
        (tmp_path / "secret").write_text(fake.secret)
        broker = CcxtBroker(CcxtBrokerParams(exchange="binance", api_url=fake.url))
        context = BrokerContext("nl-bot", "live", ("BTCUSDT",), "USDT", 1e5, tmp_path)
        with pytest.raises(CredentialsError) as raised:
            broker.connect(context)
        message = str(raised.value)
        assert "apiKey: holds a control character (a newline inside the key?)" in message
        assert fake.api_key[:10] not in message
        assert fake.requests == []
    finally:
        fake.stop()


def test_a_secret_with_a_control_character_is_named(tmp_path: Path) -> None:
    (tmp_path / "apiKey").write_text("a-good-key-value")
    (tmp_path / "secret").write_text("abc\x07def")
    with pytest.raises(CredentialsError, match=r"secret: holds a control character \(U\+0007\)"):
        read_credentials(tmp_path)


def test_order_sent_before_the_key_went_missing_is_not_lost(tmp_path: Path) -> None:
    """A working order keeps its place in the book while the key is missing (polls cannot
    sign), and its fill is reported once the key is back."""
    harness = _spot(tmp_path)
    key = (harness.credentials / "apiKey").read_text()
    try:
        harness.broker.submit(harness.order("keep1", order_type=OrderType.LIMIT, price=49_000.0))
        harness.answer(OrderUpdate("keep1", OrderStatus.PENDING, 0))
        (harness.credentials / "apiKey").unlink()
        harness.trade_through(48_900.0)
        time.sleep(0.5)
        harness.collect()
        assert harness.final("keep1") is None
        assert [o.client_order_id for o in harness.broker.open_orders()] == ["keep1"]
        (harness.credentials / "apiKey").write_text(key)
        final = harness.wait_final("keep1")
        assert final.status is OrderStatus.FILLED
        harness.assert_venue_matches()
    finally:
        harness.close()
