"""Deterministic client order ids.

An id is a pure function of (bot, bar time, symbol, intent number within that bar), so a retry
or a restart that replays the same bar produces the same id, and the venue's duplicate-id check
turns a second submission into a no-op instead of a second order. Ids stay within the venues'
limits: Binance allows 36 characters, an MT5 order comment keeps about 31; ours are at most 27
(bracket children add three).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(value: int) -> str:
    if value < 36:  # nearly every id: the first few orders of a bar
        return _ALPHABET[value]
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


def bot_prefix(identity: str) -> str:
    """The start of every id of the bot whose identity this is (``"tf"`` and hex).

    A live bot's identity is chosen once per journal (``new_identity``): its name, where it
    runs and a random part, so two bots of one name (two namespaces, a copied manifest) never
    share ids, and 32 bits keep a fleet's prefixes apart (a collision among 1,000 bots: about
    1 in 10,000). A bare bot name — every backtest and paper bot, and a live bot whose journal
    began before identities — keeps the 24-bit prefix its ids always had.
    """
    size = 4 if IDENTITY_MARK in identity else 3
    return "tf" + hashlib.blake2b(identity.encode(), digest_size=size).hexdigest()


# Separates a bot's name from the random part of its identity: no bot name contains it.
IDENTITY_MARK = "#"


def new_identity(bot_name: str, namespace: str, nonce: str) -> str:
    """A live bot's identity for a new journal: ``namespace/name#nonce`` (``nonce``: random
    hex the caller draws; kept in the journal, so ids stay the same across restarts)."""
    return f"{namespace}/{bot_name}{IDENTITY_MARK}{nonce}"


@lru_cache(maxsize=4096)
def _symbol_tag(symbol: str) -> str:
    return hashlib.blake2b(symbol.encode(), digest_size=2).hexdigest()


def client_order_id(prefix: str, ts: int, symbol: str, sequence: int) -> str:
    """The id of the ``sequence``-th order a bot sent for ``symbol`` at bar time ``ts``.

    Hexadecimal time (formatted in C, on the per-order path) and a base-36 sequence.
    """
    return f"{prefix}{_symbol_tag(symbol)}{ts:x}{_base36(sequence)}"


def replacement_order_id(client_order_id: str, amendment: int) -> str:
    """Id of the ``amendment``-th (1, 2, …) replacement of an order that a venue without a
    native amend cancels and sends again: derived, so a retry of the same amendment is the same
    id (never a second order), and within the venues' limits (a child's id stays ≤ 31)."""
    base = client_order_id.split("~", 1)[0]
    return f"{base}~{_base36(amendment)}"


def venue_replacement_id(client_order_id: str, amendment: int) -> str:
    """The venue's id of the ``amendment``-th (1, 2, …) cancel-replace of an order, where the
    venue's ids allow no ``~`` (Binance spot: letters, digits and ``.:/_-``). The bot still
    calls the order by its own id; whoever finds it at the venue later (a restarted broker,
    start-up reconciliation) gets that id back with :func:`original_order_id`."""
    return f"{original_order_id(client_order_id)}-a{amendment}"


# What a replacement adds to the bot's own id: ``~n`` (replacement_order_id) or ``-a<n>``
# (venue_replacement_id). Neither can end an id the bot makes: ids are lowercase hex and
# base 36 without ``-`` or ``~``, bracket children end in ``-sl``/``-tp``.
_REPLACED = re.compile(r"(?:~[0-9a-z]+|-a[0-9]+)$")


def original_order_id(client_order_id: str) -> str:
    """The bot's own id of an order a venue holds under a replacement's id; any other id as
    it is. A bracket child amended by cancel-replace stays that bracket's child after a
    restart only through this (its role, its one-cancels-other group)."""
    return _REPLACED.sub("", client_order_id)


def child_order_id(parent_id: str, role: str) -> str:
    """Id of a bracket child: ``role`` is ``sl`` or ``tp``."""
    return f"{parent_id}-{role}"
