"""Payments a venue makes outside fills (perpetual futures' funding): what the bot may book.

Pure decisions for the engine: a broker's report is checked before anything is booked (a bad
answer is said naming its field, never booked as a guess), and a payment goes into the account's
cash only when it is in the account's currency. The same for an ``Accrual`` (a payment accrued
on an open position, not booked yet: an MT5 swap), which the bot's equity counts as a mark.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from tradefleet_runtime.model import Accrual, CashFlow


def cash_flow_problem(flow: CashFlow, symbols: Collection[str]) -> str:
    """Why ``flow`` cannot be booked for a bot trading ``symbols``, naming the field; ''."""
    if not isinstance(flow.flow_id, str) or not flow.flow_id:
        return f"flow_id {flow.flow_id!r}: the venue's id of the payment is missing"
    common = _payment_problem(flow.amount, flow.symbol, flow.currency, symbols)
    if common:
        return common
    if isinstance(flow.ts, bool) or not isinstance(flow.ts, int) or flow.ts <= 0:
        return f"ts {flow.ts!r} is not a time (UTC epoch seconds)"
    return ""


def _payment_problem(
    amount: object, symbol: object, currency: object, symbols: Collection[str]
) -> str:
    """What a payment and an accrual must both be: a finite amount, of one of the bot's
    symbols, in a named currency; '' when they are."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return f"amount {amount!r} is not a number"
    if not math.isfinite(amount):
        return f"amount {amount!r} is not a finite number"
    if symbol not in symbols:
        return f"symbol {symbol!r} is not one of the bot's ({', '.join(symbols)})"
    if not isinstance(currency, str) or not currency:
        return f"currency {currency!r}: missing"
    return ""


def books_in(flow: CashFlow, currency: str) -> bool:
    """Whether ``flow`` goes into the cash of an account kept in ``currency``."""
    return flow.currency.upper() == currency.upper()


def accrual_problem(accrual: Accrual, symbols: Collection[str], currency: str) -> str:
    """Why ``accrual`` cannot be counted in the equity of a bot trading ``symbols`` with an
    account in ``currency``, naming the field; ''. Another currency is refused, not converted:
    the bot's equity is in its account's currency and a mark in another would be a guess."""
    common = _payment_problem(accrual.amount, accrual.symbol, accrual.currency, symbols)
    if common:
        return common
    if accrual.currency.upper() != currency.upper():
        return (
            f"currency {accrual.currency!r} is not the account's ({currency}): tradefleet "
            "does not convert currencies"
        )
    return ""
