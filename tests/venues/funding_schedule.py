"""Perpetual funding on a fake venue's clock, shared by the Binance USDⓈ-M and Bybit fakes.

Both venues settle funding at fixed instants (by default every 8 hours: 00:00, 08:00 and
16:00 UTC).  At each instant every open position pays ``size × mark price × rate`` (size
signed, in base units): a long pays a positive rate, a short receives it; a negative rate
reverses that.  How each venue reports the payment (Binance's income, Bybit's execution) is
the venue's own, in its ``state.py``; this module only decides *when* funding is due and
*how much* a position pays.  Pure: no clock of its own, no I/O.

The fakes observe their clock lazily (on every request, price move and test helper), so a
:class:`FundingSchedule` is asked, with the venue's time, which funding instants passed since
it was last asked.  A clock moved backwards (a test starting a timeline in the past) rewinds
the schedule without paying anything: funding is due each time the clock moves forward across
a funding instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

EIGHT_HOURS_MS = 8 * 3_600_000
# Every symbol's funding rate until a test sets one: 0, so that a test that holds a futures
# position across 00:00, 08:00 or 16:00 UTC of the wall clock (the fakes' clocks follow it
# unless frozen) is not paid funding it did not ask for and does not expect; the published
# rate (premiumIndex, tickers) is the one paid. The real venues' usual rate is 0.0001.
DEFAULT_RATE = Decimal("0")
# Funding amounts are settled to 8 decimals of the margin coin (both venues print USDT
# amounts with at most 8); the wallet moves by the rounded amount the venue reports.
_AMOUNT_STEP = Decimal("1e-8")


def funding_times(after_ms: int, upto_ms: int, interval_ms: int) -> list[int]:
    """The funding instants ``t`` with ``after_ms < t <= upto_ms`` (multiples of
    ``interval_ms`` since the epoch, as UTC 00:00/08:00/16:00 are for 8 hours)."""
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    first = after_ms - after_ms % interval_ms + interval_ms
    return list(range(first, upto_ms + 1, interval_ms))


def next_funding_time(now_ms: int, interval_ms: int) -> int:
    """The first funding instant after ``now_ms`` (one at ``now_ms`` exactly is settled)."""
    return now_ms - now_ms % interval_ms + interval_ms


def funding_payment(size: Decimal, mark: Decimal, rate: Decimal) -> Decimal:
    """What a position of signed ``size`` pays at ``mark`` and ``rate`` (negative: it
    receives), rounded to 8 decimals."""
    return (size * mark * rate).quantize(_AMOUNT_STEP, rounding=ROUND_HALF_UP)


def check_rate(symbol: str, rate: Decimal, bound: Decimal | None = None) -> Decimal:
    """``rate`` if it is a finite number within ``±bound``; else ValueError naming the
    symbol and the rate."""
    if not rate.is_finite():
        raise ValueError(f"funding rate of {symbol} must be a finite number, got {rate}")
    if bound is not None and abs(rate) > bound:
        raise ValueError(f"funding rate of {symbol} must be within ±{bound}, got {rate}")
    return rate


@dataclass
class FundingSchedule:
    """When funding is due on one venue, and each symbol's rate.

    ``settled_ms``: the venue time up to which funding has been settled (the last time the
    venue's clock was observed).
    """

    settled_ms: int
    interval_ms: int = EIGHT_HOURS_MS
    default_rate: Decimal = DEFAULT_RATE
    rates: dict[str, Decimal] = field(default_factory=dict)

    def rate(self, symbol: str) -> Decimal:
        return self.rates.get(symbol, self.default_rate)

    def set_rate(self, symbol: str, rate: Decimal) -> None:
        self.rates[symbol] = check_rate(symbol, rate)

    def next_time(self, now_ms: int) -> int:
        return next_funding_time(now_ms, self.interval_ms)

    def due(self, now_ms: int) -> list[int]:
        """The funding instants the clock passed since it was last observed; the schedule
        then counts them settled.  A clock moved backwards rewinds it, paying nothing."""
        if now_ms <= self.settled_ms:
            self.settled_ms = now_ms
            return []
        times = funding_times(self.settled_ms, now_ms, self.interval_ms)
        self.settled_ms = now_ms
        return times
