"""SIGNED endpoint security, checked on the wire and through ccxt.

Binance spot API "Request security" / "SIGNED (TRADE, USER_DATA) endpoint security":
``X-MBX-APIKEY`` header; ``signature`` = HMAC-SHA256 (hex) of ``totalParams`` (query
string concatenated with the body); ``timestamp`` mandatory; accepted only if
``timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow``
(recvWindow default 5000, max 60000).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import ccxt
import pytest

from tests.venues.binance.fixtures import make_ccxt_binance
from tests.venues.binance.server import DEFAULT_API_KEY, DEFAULT_SECRET, FakeBinance
from tests.venues.binance.signing import sign


def _request(
    fake: FakeBinance,
    method: str,
    path: str,
    query: str = "",
    body: str = "",
    api_key: str | None = DEFAULT_API_KEY,
) -> tuple[int, Any]:
    url = fake.url + path + (f"?{query}" if query else "")
    req = urllib.request.Request(url, data=body.encode() if body else None, method=method)
    if api_key is not None:
        req.add_header("X-MBX-APIKEY", api_key)
    if body:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _signed_query(params: dict[str, Any], secret: str = DEFAULT_SECRET) -> str:
    query = urlencode(params)
    return f"{query}&signature={sign(secret, query)}"


def _now() -> int:
    return int(time.time() * 1000)


def test_valid_signature_in_query(fake_binance: FakeBinance) -> None:
    status, body = _request(
        fake_binance, "GET", "/api/v3/account", _signed_query({"timestamp": _now()})
    )
    assert status == 200 and body["accountType"] == "SPOT"


def test_signature_over_query_plus_body(fake_binance: FakeBinance) -> None:
    """Mixed query string and body: the HMAC covers query + body concatenated (Binance's
    example 3, "Mixed query string and request body")."""
    fake_binance.set_price("BTCUSDT", 50_000)
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=0.01&price=49000&recvWindow=5000&timestamp={_now()}"
    sig = sign(DEFAULT_SECRET, query + body)
    status, resp = _request(fake_binance, "POST", "/api/v3/order", query, f"{body}&signature={sig}")
    assert status == 200 and resp["status"] == "NEW"


def test_bad_signature_is_1022(fake_binance: FakeBinance) -> None:
    """-1022 INVALID_SIGNATURE "Signature for this request is not valid.", HTTP 400."""
    query = _signed_query({"timestamp": _now()}, secret="wrong")
    status, body = _request(fake_binance, "GET", "/api/v3/account", query)
    assert status == 400
    assert body == {"code": -1022, "msg": "Signature for this request is not valid."}


def test_unknown_key_is_2015(fake_binance: FakeBinance) -> None:
    """-2015 REJECTED_MBX_KEY "Invalid API-key, IP, or permissions for action.", HTTP 401;
    a malformed or missing key is -2014 "API-key format invalid."."""
    query = _signed_query({"timestamp": _now()})
    status, body = _request(fake_binance, "GET", "/fapi/v2/balance", query, api_key="nosuchkey")
    assert status == 401
    assert body == {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
    status, body = _request(fake_binance, "GET", "/api/v3/account", query, api_key=None)
    assert (status, body["code"]) == (401, -2014)


def test_timestamp_rules(fake_binance: FakeBinance) -> None:
    """-1021 for stale / future timestamps; -1102 for a missing one; -1131 for
    recvWindow > 60000."""
    stale = _signed_query({"timestamp": _now() - 6000})
    status, body = _request(fake_binance, "GET", "/api/v3/account", stale)
    assert (status, body["code"]) == (400, -1021)
    assert body["msg"] == "Timestamp for this request is outside of the recvWindow."
    wide = _signed_query({"timestamp": _now() - 6000, "recvWindow": 10_000})
    assert _request(fake_binance, "GET", "/api/v3/account", wide)[0] == 200
    ahead = _signed_query({"timestamp": _now() + 5000})
    status, body = _request(fake_binance, "GET", "/api/v3/account", ahead)
    assert body == {
        "code": -1021,
        "msg": "Timestamp for this request was 1000ms ahead of the server's time.",
    }
    status, body = _request(fake_binance, "GET", "/api/v3/account", _signed_query({"a": 1}))
    assert body["code"] == -1102
    huge = _signed_query({"timestamp": _now(), "recvWindow": 70_000})
    assert _request(fake_binance, "GET", "/api/v3/account", huge)[1]["code"] == -1131


def test_public_endpoints_need_no_key(fake_binance: FakeBinance) -> None:
    status, body = _request(fake_binance, "GET", "/api/v3/time", api_key=None)
    assert status == 200 and abs(body["serverTime"] - _now()) < 5000


@pytest.mark.parametrize("futures", [False, True], ids=["spot", "usdm"])
def test_ccxt_maps_auth_errors(fake_binance: FakeBinance, futures: bool) -> None:
    """ccxt exceptions map: -1022 -> AuthenticationError, -2015 -> AuthenticationError."""
    ex = make_ccxt_binance(fake_binance, futures=futures, secret="not-the-secret")
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        ex.fetch_balance()
    ex = make_ccxt_binance(fake_binance, futures=futures, api_key="unknownKey123")
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        ex.fetch_balance()


def test_second_account_is_isolated(fake_binance: FakeBinance) -> None:
    """Accounts are keyed by API key; orders and balances do not leak between them."""
    fake_binance.add_account("otherKey42", "otherSecret42", spot={"USDT": 1000})
    other = make_ccxt_binance(fake_binance, api_key="otherKey42", secret="otherSecret42")
    main = make_ccxt_binance(fake_binance)
    other.load_markets()
    main.load_markets()
    other.create_order("BTC/USDT", "limit", "buy", 0.001, 40_000, {"newClientOrderId": "same"})
    main.create_order("BTC/USDT", "limit", "buy", 0.001, 40_000, {"newClientOrderId": "same"})
    assert len(other.fetch_open_orders("BTC/USDT")) == 1
    assert other.fetch_balance()["USDT"]["total"] == 1000
    assert "BTC" not in other.fetch_balance()["total"]
