"""A bot's two API tokens and the Secret data that carries them (pure)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tradefleet_runtime.api.conventions import CONTROL_TOKEN_FILE, READ_TOKEN_FILE


@dataclass(frozen=True)
class ApiTokens:
    """The runtime's two bearer tokens: ``control`` (every RPC) and ``read`` (read-only RPCs).

    The operator reads status with ``read`` and steers with ``control``: a leaked status reader
    must not be able to halt or resume a bot.
    """

    control: str
    read: str

    def __repr__(self) -> str:  # never print a token
        return "ApiTokens(control=***, read=***)"

    @classmethod
    def generate(cls) -> ApiTokens:
        """Two fresh random tokens (the caller does this once per bot)."""
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32))


def secret_data(tokens: ApiTokens) -> dict[str, str]:
    """The Secret's base64 ``data``, as the API server returns it (compares like with like)."""
    return {CONTROL_TOKEN_FILE: _b64(tokens.control), READ_TOKEN_FILE: _b64(tokens.read)}


def tokens_from_secret(secret: Mapping[str, Any] | None) -> ApiTokens | None:
    """The tokens in an existing ``<name>-api-token`` Secret, or None if absent or incomplete."""
    if not secret:
        return None
    data = secret.get("data") or {}
    try:
        control = base64.b64decode(data[CONTROL_TOKEN_FILE], validate=True).decode()
        read = base64.b64decode(data[READ_TOKEN_FILE], validate=True).decode()
    except (KeyError, ValueError, TypeError):
        return None
    if not control or not read:
        return None
    return ApiTokens(control, read)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
