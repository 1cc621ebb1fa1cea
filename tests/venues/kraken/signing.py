"""Kraken private-endpoint signing: ``API-Key`` + ``API-Sign`` and the per-key nonce.

What ccxt's ``kraken.sign()`` sends for ``/0/private/*`` (and Kraken checks)::

    POST /0/private/<Method>, body form-encoded (JSON for a few calls), carrying nonce
    API-Key:  the key
    API-Sign: base64(HMAC_SHA512(base64decode(secret), uri_path + SHA256(nonce + body)))

The nonce is an integer that must be strictly greater than the last nonce the venue
accepted for the key ("EAPI:Invalid nonce").  It is not compared with the clock (ccxt
uses milliseconds, made strictly increasing per client with ``incrementing_nonce``),
so a skewed clock does not matter to Kraken, but two clients sharing one key do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping

from . import errors as E
from .errors import KrakenError


def sign(secret: str, uri_path: str, nonce: str, body: str) -> str:
    digest = hashlib.sha256((nonce + body).encode()).digest()
    mac = hmac.new(base64.b64decode(secret), uri_path.encode() + digest, hashlib.sha512)
    return base64.b64encode(mac.digest()).decode()


class NonceBook:
    """The last accepted nonce of every key (Kraken's default: no nonce window)."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.refused = 0  # requests refused for their nonce (tests read it)

    def accept(self, api_key: str, raw: str) -> None:
        try:
            nonce = int(raw)
        except ValueError as exc:
            self.refused += 1
            raise KrakenError(E.INVALID_NONCE) from exc  # guessed: a missing nonce
        if nonce <= self.last.get(api_key, 0):
            self.refused += 1
            raise KrakenError(E.INVALID_NONCE)
        self.last[api_key] = nonce


def verify(
    headers: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    uri_path: str,
    nonce: str,
    body: str,
    nonces: NonceBook,
) -> str:
    """Return the API key of a correctly signed request with a fresh nonce, or raise."""
    api_key = headers.get("API-Key") or ""
    signature = headers.get("API-Sign") or ""
    secret = secret_for(api_key) if api_key else None
    if secret is None:
        raise KrakenError(E.INVALID_KEY)
    try:
        expected = sign(secret, uri_path, nonce, body)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - secrets are base64
        raise KrakenError(E.INVALID_SIGNATURE) from exc
    if not hmac.compare_digest(expected, signature):
        raise KrakenError(E.INVALID_SIGNATURE)
    nonces.accept(api_key, nonce)
    return api_key
