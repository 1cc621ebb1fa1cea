"""Bybit v5 request signing: ``X-BAPI-*`` headers, HMAC-SHA256, timestamp window.

What ccxt's ``bybit.sign()`` sends for ``/v5`` private calls (and Bybit checks)::

    X-BAPI-API-KEY, X-BAPI-TIMESTAMP (ms), X-BAPI-RECV-WINDOW, X-BAPI-SIGN
    X-BAPI-SIGN = hex(HMAC_SHA256(secret, timestamp + apiKey + recvWindow + payload))
    payload = the raw query string (GET) or the raw JSON body (POST)

The timestamp must satisfy ``server - recvWindow <= timestamp < server + 1000``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping

from . import errors as E
from .errors import BybitError


def sign(secret: str, timestamp: str, api_key: str, recv_window: str, payload: str) -> str:
    text = timestamp + api_key + recv_window + payload
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def verify(
    headers: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    payload: str,
    server_time_ms: int,
) -> str:
    """Return the API key of a correctly signed request or raise :class:`BybitError`."""
    api_key = headers.get("X-BAPI-API-KEY") or ""
    timestamp = headers.get("X-BAPI-TIMESTAMP") or ""
    signature = headers.get("X-BAPI-SIGN") or ""
    recv_window = headers.get("X-BAPI-RECV-WINDOW") or "5000"
    if not api_key or not timestamp or not signature:
        raise E.params(
            f"empty value: apiTimestamp[{timestamp}] apiKey[{api_key}] apiSignature[{signature}]"
        )
    secret = secret_for(api_key)
    if secret is None:
        raise BybitError(E.BAD_KEY, "API key is invalid.")
    try:
        ts, window = int(timestamp), int(recv_window)
    except ValueError as exc:
        raise E.params("params error: X-BAPI-TIMESTAMP invalid") from exc  # guessed wording
    if not (server_time_ms - window <= ts < server_time_ms + 1000):
        raise BybitError(
            E.TIMESTAMP,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{server_time_ms}],recv_window[{window}]",
        )
    expected = sign(secret, timestamp, api_key, recv_window, payload)
    if not hmac.compare_digest(expected, signature.lower()):
        raise BybitError(
            E.BAD_SIGN, f"error sign! origin_string[{timestamp}{api_key}{recv_window}{payload}]"
        )
    return api_key
