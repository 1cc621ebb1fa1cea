"""Signing requests for ``POST /webhook/signal``, the way a sender does (see the protocol in
``tradefleet_runtime.service.webhook``'s docstring). Written independently of the server's own
code so that tests check the documented protocol, not the implementation against itself."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

WEBHOOK_PATH = "/webhook/signal"

GOOD_SIGNAL: dict[str, Any] = {
    "symbol": "EURUSD",
    "timeframe": "M5",
    "pattern_type": "M5_BOS",
    "direction": "BUY",
    "price_levels": {
        "entry": 1.0850,
        "stop_loss": 1.0830,
        "take_profit": 1.0890,
        "current_price": 1.0851,
        "previous_high": 1.0845,
    },
    "volume": 0.01,
    "metadata": {"source": "tradingview", "confidence": 0.85},
}


def signal_body(**overrides: Any) -> bytes:
    """``GOOD_SIGNAL`` with top-level fields replaced, as JSON bytes."""
    return json.dumps({**GOOD_SIGNAL, **overrides}).encode()


def sign(
    key: bytes,
    body: bytes,
    timestamp: int,
    *,
    key_id: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that authenticate ``body``: signature, timestamp and optionally the key id
    (the server assumes ``default`` without it) and a nonce."""
    mac = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "X-Tradefleet-Timestamp": str(timestamp),
        "X-Tradefleet-Signature": f"sha256={mac}",
    }
    if key_id is not None:
        headers["X-Tradefleet-Key-Id"] = key_id
    if nonce is not None:
        headers["X-Tradefleet-Nonce"] = nonce
    return headers
