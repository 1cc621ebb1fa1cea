"""Bybit v5 ``retCode`` values and messages the fake answers with.

Every code below is a key of ``ccxt.bybit().describe()['exceptions']['exact']``
(ccxt 4.5.90), so ccxt raises the class it raises for the real venue.  The codes
are Bybit's; a message marked ``# guessed`` is our best reconstruction of Bybit's
wording (ccxt decides by code, never by these texts, except the ``broad`` match on
"Not supported symbols").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BybitError(Exception):
    """A refusal: ``{"retCode": code, "retMsg": msg, "result": {}, ...}``."""

    code: int
    msg: str
    http_status: int = 200  # Bybit answers most refusals with HTTP 200

    def __str__(self) -> str:
        return f"{self.code}: {self.msg}"


# ccxt class (ccxt 4.5.90 describe()['exceptions']['exact']) in the comment
PARAMS = 10001  # BadRequest
TIMESTAMP = 10002  # InvalidNonce
BAD_KEY = 10003  # AuthenticationError
BAD_SIGN = 10004  # AuthenticationError
TOO_MANY = 10006  # RateLimitExceeded
SYSTEM = 10016  # ExchangeError
ORDER_NOT_FOUND = 110001  # OrderNotFound
PRICE_RANGE = 110003  # InvalidOrder
NOT_ENOUGH = 110007  # InsufficientFunds
LEVERAGE_RISK = 110013  # BadRequest
REDUCE_ONLY = 110017  # InvalidOrder
TOO_MANY_ORDERS = 110020  # InvalidOrder
POS_MODE_HAS_POSITION = 110024  # BadRequest
POS_MODE_SAME = 110025  # NoChange
MARGIN_MODE_SAME = 110026  # MarginModeAlreadySet
LEVERAGE_SAME = 110043  # BadRequest
DUPLICATE_LINK_ID = 110072  # InvalidOrder
TRIGGER_RISING = 110092  # InvalidOrder
TRIGGER_FALLING = 110093  # InvalidOrder
MIN_NOTIONAL = 110094  # InvalidOrder


def params(msg: str) -> BybitError:
    return BybitError(PARAMS, msg)


def bad_symbol() -> BybitError:
    # ccxt's 'broad' map turns this text into BadSymbol
    return BybitError(PARAMS, "Not supported symbols")


def missing(name: str) -> BybitError:
    return BybitError(PARAMS, f"params error: {name} is empty")  # guessed wording


def not_found(action: str = "cancel") -> BybitError:
    return BybitError(ORDER_NOT_FOUND, f"order not exists or too late to {action}")


def duplicate_link_id() -> BybitError:
    return BybitError(DUPLICATE_LINK_ID, "OrderLinkedID is duplicate")


def insufficient() -> BybitError:
    return BybitError(NOT_ENOUGH, "ab not enough for new order")


def reduce_only() -> BybitError:
    return BybitError(REDUCE_ONLY, "current position is zero, cannot fix reduce-only order qty")


def min_notional(limit: str) -> BybitError:
    return BybitError(MIN_NOTIONAL, f"Order does not meet minimum order value {limit}USDT")
