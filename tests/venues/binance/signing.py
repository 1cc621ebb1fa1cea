"""HMAC-SHA256 request signing, checked the way Binance documents it.

"SIGNED endpoints require an additional parameter, ``signature``, to be sent in
the query string or request body. ... The signature is not case sensitive.
``totalParams`` is defined as the query string concatenated with the request
body."  (Binance spot API, *Request security* / *SIGNED endpoint security*.)

Timing security: "The logic is as follows: if (timestamp < serverTime + 1000
&& serverTime - timestamp <= recvWindow) { process } else { reject }";
``recvWindow`` defaults to 5000 and may not exceed 60000.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

from . import errors as E
from .errors import BinanceError

_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def strip_signature(raw: str) -> tuple[str, str | None]:
    """Split ``raw`` (a query string or form body) into (text before signature, sig)."""
    if not raw:
        return "", None
    parts = raw.split("&")
    kept: list[str] = []
    sig: str | None = None
    for part in parts:
        if part.startswith("signature="):
            sig = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), sig


def verify(
    *,
    api_key: str | None,
    secret_for: Callable[[str], str | None],
    query: str,
    body: str,
    params: dict[str, str],
    server_time_ms: int,
) -> str:
    """Check a SIGNED request; return the API key or raise the venue's error."""
    if not api_key:
        raise BinanceError(E.BAD_API_KEY_FMT, E.MSG_BAD_KEY_FMT, 401)
    if not _KEY_RE.match(api_key):
        raise BinanceError(E.BAD_API_KEY_FMT, E.MSG_BAD_KEY_FMT, 401)
    secret = secret_for(api_key)
    if secret is None:
        raise BinanceError(E.REJECTED_MBX_KEY, E.MSG_BAD_KEY, 401)
    raw_ts = params.get("timestamp")
    if not raw_ts:
        raise E.mandatory("timestamp")
    if not raw_ts.isdigit():
        raise E.illegal("timestamp")
    recv_raw = params.get("recvWindow", "5000")
    if not recv_raw.isdigit():
        raise E.illegal("recvWindow")
    recv_window = int(recv_raw)
    if recv_window > 60_000:
        raise BinanceError(E.INVALID_RECV_WINDOW, "recvWindow must be less than 60000")
    q_text, q_sig = strip_signature(query)
    b_text, b_sig = strip_signature(body)
    signature = q_sig or b_sig
    if not signature:
        raise E.mandatory("signature")
    expected = sign(secret, q_text + b_text)
    if not hmac.compare_digest(expected.lower(), signature.lower()):
        raise BinanceError(E.INVALID_SIGNATURE, E.MSG_BAD_SIGNATURE)
    timestamp = int(raw_ts)
    if timestamp >= server_time_ms + 1000:
        raise BinanceError(E.INVALID_TIMESTAMP, E.MSG_TS_AHEAD)
    if server_time_ms - timestamp > recv_window:
        raise BinanceError(E.INVALID_TIMESTAMP, E.MSG_TS_OUTSIDE)
    return api_key
