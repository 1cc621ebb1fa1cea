"""Kraken's error strings, as the fake sends them in ``{"error": [...], "result": {}}``.

Kraken answers refusals with HTTP 200 and the error strings in the envelope; ccxt
(4.5.90) turns each into an exception by ``describe()['exceptions']``: an ``exact``
match on the whole string first, then a ``broad`` substring match, else a plain
``ExchangeError``.  The ccxt class each string raises is in its comment (checked by
``tests/kraken/test_order_rules.py`` and ``test_faults.py`` driving the real ccxt).

Sources: Kraken's "Spot Error Messages" guide and error reference (docs.kraken.com),
ccxt's own map, and "EGeneral:Invalid arguments:volume" as Kraken's answer quoted in
public bug reports.  A string marked ``# guessed`` is not documented anywhere we could
read: it is our best reconstruction, and ccxt's class for it follows from the string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class KrakenError(Exception):
    """A refusal: ``{"error": [message], "result": {}}`` with HTTP 200."""

    message: str

    def __str__(self) -> str:
        return self.message


# -- authentication (EAPI) -----------------------------------------------------
INVALID_KEY = "EAPI:Invalid key"  # AuthenticationError (exact)
INVALID_SIGNATURE = "EAPI:Invalid signature"  # ExchangeError: not in ccxt's map
INVALID_NONCE = "EAPI:Invalid nonce"  # InvalidNonce (exact)
RATE_LIMIT = "EAPI:Rate limit exceeded"  # DDoSProtection (exact), NOT RateLimitExceeded
ORDER_RATE_LIMIT = "EOrder:Rate limit exceeded"  # DDoSProtection (exact)

# -- arguments (EGeneral) ------------------------------------------------------
INVALID_ARGUMENTS = "EGeneral:Invalid arguments"  # BadRequest (exact)
INVALID_VOLUME = "EGeneral:Invalid arguments:volume"  # InvalidOrder (broad)
INVALID_PRICE = "EGeneral:Invalid arguments:price"  # InvalidOrder (exact)
INVALID_CL_ORD_ID = "EGeneral:Invalid arguments:cl_ord_id"  # ExchangeError  # guessed
INVALID_USERREF = "EGeneral:Invalid arguments:userref"  # ExchangeError  # guessed
INVALID_ORDERTYPE = "EGeneral:Invalid arguments:ordertype"  # ExchangeError  # guessed
INVALID_TYPE = "EGeneral:Invalid arguments:type"  # ExchangeError  # guessed
INTERNAL = "EGeneral:Internal error"  # ExchangeNotAvailable (exact)

# -- orders (EOrder) -----------------------------------------------------------
ORDER_MINIMUM = "EOrder:Order minimum not met"  # InvalidOrder (exact)
COST_MINIMUM = "EOrder:Cost minimum not met"  # ExchangeError: not in ccxt's map
TICK_SIZE = "EOrder:Tick size check failed"  # ExchangeError: not in ccxt's map
INSUFFICIENT_FUNDS = "EOrder:Insufficient funds"  # InsufficientFunds (exact)
UNKNOWN_ORDER = "EOrder:Unknown order"  # InvalidOrder (exact); cancel_order -> OrderNotFound
INVALID_ORDER = "EOrder:Invalid order"  # InvalidOrder (broad ":Invalid order")  # guessed use
DUPLICATE_ORDER = "EOrder:Duplicate order"  # ExchangeError  # guessed
ORDERS_LIMIT = "EOrder:Orders limit exceeded"  # ExchangeError: not in ccxt's map
NO_POSITION = "EOrder:Reduce only:No position exists"  # ExchangeError: not in ccxt's map

# -- queries / service ---------------------------------------------------------
UNKNOWN_PAIR = "EQuery:Unknown asset pair"  # ExchangeError (ccxt maps "Invalid asset pair")
UNAVAILABLE = "EService:Unavailable"  # ExchangeNotAvailable (exact)
BUSY = "EService:Busy"  # ExchangeNotAvailable (exact)


def refuse(message: str) -> KrakenError:
    return KrakenError(message)
