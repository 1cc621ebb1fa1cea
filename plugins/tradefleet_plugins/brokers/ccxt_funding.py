"""Perpetual futures' funding payments, read from the venue's own rows: pure, no I/O.

ccxt's ``fetch_funding_history`` hands each payment on with an ``amount`` signed as the venue
signs its field: Binance USDⓈ-M's ``income`` (negative: the account paid), Bybit's ``execFee``
(a fee's sign: positive when the account paid), and open ccxt changes may flip either. So the
amount is read here from the venue's field in the row ccxt keeps (``info``), per venue, and
signed from the account's side (negative: paid), as ``CashFlow`` wants it.

A venue the broker trades futures on but has no reader for here reports no funding: the broker
says so once and never guesses a sign (``funding_rows_of`` is None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, NamedTuple

from tradefleet_plugins.brokers.ccxt_orders import Dialect
from tradefleet_runtime.sdk import CashFlow

# Bybit answers at most seven days a request (only a start: seven days from it); Binance names
# no span for its income, but a read in the same windows cannot be cut short by one it has.
_DAY_MS = 86_400_000
FUNDING_WINDOW_MS = 7 * _DAY_MS


@dataclass(frozen=True)
class FundingRows:
    """Where a venue lists its funding payments and how its rows read."""

    name: str  # for people: whose rows these are
    kind_field: str  # the row's type, and the type a funding payment has
    kind: str
    id_field: str  # the venue's id of the payment
    amount_field: str
    # True: the venue's amount is positive when the account paid (a fee's sign, Bybit's).
    paid_positive: bool
    time_field: str  # when the venue booked it, epoch ms
    currency_field: str  # "" or missing: the market's settle currency
    page: int  # rows a request answers at most
    # How far back the venue keeps them (ms): a read from earlier finds nothing more.
    kept_ms: int
    # Pages follow the venue's cursor (newest first), else the last row's time (oldest first).
    cursor: bool
    # What to send for a full page where ccxt's ``limit`` does not say it (Bybit: ccxt sends
    # ``size``, which v5 does not read; its page stays 50 unless ``limit`` is sent).
    page_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


FUNDING_ROWS: Mapping[Dialect, FundingRows] = MappingProxyType(
    {
        # GET /fapi/v1/income, incomeType FUNDING_FEE: income as the account sees it.
        Dialect.BINANCE_USDM: FundingRows(
            name="Binance USDⓈ-M income",
            kind_field="incomeType",
            kind="FUNDING_FEE",
            id_field="tranId",
            amount_field="income",
            paid_positive=False,
            time_field="time",
            currency_field="asset",
            page=1000,
            kept_ms=93 * _DAY_MS,  # "the last three months"
            cursor=False,
        ),
        # GET /v5/execution/list, execType Funding: execFee is what the position paid.
        Dialect.BYBIT: FundingRows(
            name="Bybit execution",
            kind_field="execType",
            kind="Funding",
            id_field="execId",
            amount_field="execFee",
            paid_positive=True,
            time_field="execTime",
            currency_field="feeCurrency",
            page=100,
            kept_ms=731 * _DAY_MS,  # "Get Execution (2 years)"
            cursor=True,
            page_params=MappingProxyType({"limit": 100}),
        ),
    }
)


def funding_rows_of(dialect: Dialect) -> FundingRows | None:
    """How ``dialect``'s venue lists funding; None when the broker has no reader for it."""
    return FUNDING_ROWS.get(dialect)


class Payment(NamedTuple):
    """One funding row read: the flow to report, when the venue booked it (ms; 0 when the row
    does not say), the key it is known by (its id, else the row's time and amount) and why it
    cannot be booked ('' when it can), naming the venue's field."""

    flow: CashFlow
    venue_ms: int
    key: str
    problem: str


def payment_of(
    row: Mapping[str, Any], rows: FundingRows, market_id: str, bot_symbol: str, settle: str
) -> Payment | None:
    """The payment in ``row`` (the venue's own row, ccxt's ``info``) of the market the venue
    names ``market_id``, reported under ``bot_symbol``; None when the row is not a funding
    payment of that market (another type, another symbol). A field that cannot be read is
    left for the engine to refuse (an empty id, a NaN amount, ts 0), and said in ``problem``."""
    if str(row.get(rows.kind_field) or "") != rows.kind:
        return None
    if str(row.get("symbol") or "") != market_id:
        return None
    flow_id = _text(row.get(rows.id_field))
    raw_amount = row.get(rows.amount_field)
    amount = _number(raw_amount)
    venue_ms = _epoch_ms(row.get(rows.time_field))
    currency = _text(row.get(rows.currency_field)) or settle
    problems = []
    if not flow_id:
        problems.append(f"{rows.id_field} {row.get(rows.id_field)!r} is missing")
    if amount is None:
        problems.append(f"{rows.amount_field} {raw_amount!r} is not a number")
    if venue_ms is None:
        problems.append(f"{rows.time_field} {row.get(rows.time_field)!r} is not a time")
    signed = math.nan if amount is None else float(-amount if rows.paid_positive else amount)
    ts = 0 if venue_ms is None else venue_ms // 1000
    flow = CashFlow(flow_id, bot_symbol, signed, currency, ts, "funding")
    key = flow_id or f"{row.get(rows.time_field)}:{raw_amount}"
    problem = ""
    if problems:
        problem = f"{rows.name} row {flow_id or '(no id)'} of {market_id}: " + "; ".join(problems)
    return Payment(flow, venue_ms or 0, key, problem)


def funding_windows(since_ms: int, until_ms: int, width_ms: int) -> list[tuple[int, int | None]]:
    """The reads that cover ``since_ms`` to ``until_ms``: windows of ``width_ms`` (both ends
    inclusive), the last one open (None: no end sent, so a venue whose clock runs ahead of the
    one ``until_ms`` came from still answers its newest rows)."""
    if width_ms <= 0:
        raise ValueError(f"width_ms must be positive, got {width_ms}")
    windows: list[tuple[int, int | None]] = []
    start = since_ms
    while True:
        end = start + width_ms - 1
        if end >= until_ms:
            windows.append((start, None))
            return windows
        windows.append((start, end))
        start = end + 1


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _number(value: Any) -> Decimal | None:
    """A finite decimal from the venue's number or numeric string; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _epoch_ms(value: Any) -> int | None:
    """The venue's time in ms (a number or a string of digits); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    text = _text(value)
    return int(text) if text.isdigit() and int(text) > 0 else None


__all__ = [
    "FUNDING_ROWS",
    "FUNDING_WINDOW_MS",
    "FundingRows",
    "Payment",
    "funding_rows_of",
    "funding_windows",
    "payment_of",
]
