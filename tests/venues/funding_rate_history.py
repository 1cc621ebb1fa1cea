"""The funding-rate history a fake venue lists, shared by the Binance USDⓈ-M and Bybit fakes.

What the history lists and what the fake pays agree, because both come from the venue's
:class:`~tests.venues.funding_schedule.FundingSchedule`: every funding instant the venue's
clock passes records each symbol's rate then (the rate a position paid at that instant, and
the mark it paid at) — :meth:`FundingRateLog.record`, called by the states' ``settle_funding``.
Instants before the fake started (a real venue lists years of them) are seeded by a test,
on the schedule's grid and in the venue's past — :meth:`FundingRateLog.seed` — and are never
paid (nothing was held then). Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class ListedRate:
    """One row of the history: the funding instant (ms), its rate and, where the venue lists
    it (Binance's ``markPrice``), the mark."""

    symbol: str
    at_ms: int
    rate: Decimal
    mark: Decimal | None


@dataclass
class FundingRateLog:
    """Each symbol's listed rates by funding instant."""

    rows: dict[str, dict[int, ListedRate]] = field(default_factory=dict)

    def record(self, symbol: str, at_ms: int, rate: Decimal, mark: Decimal | None) -> None:
        """The rate ``symbol`` was settled at, at ``at_ms`` (a clock moved back and forward
        again settles an instant again: the last settlement is what the venue paid)."""
        self.rows.setdefault(symbol, {})[at_ms] = ListedRate(symbol, at_ms, rate, mark)

    def seed(
        self,
        symbol: str,
        first_ms: int,
        rates: Iterable[Decimal],
        mark: Decimal | None,
        interval_ms: int,
        now_ms: int,
    ) -> list[int]:
        """List ``rates`` at ``first_ms`` and every ``interval_ms`` after it; the instants.

        ValueError, naming the symbol and the instant, when ``first_ms`` is not on the
        schedule's grid, an instant is after ``now_ms`` (the venue lists only what it
        settled), or one is listed already at another rate (a settlement the fake paid).
        """
        if first_ms % interval_ms:
            raise ValueError(
                f"{symbol}: {first_ms} is not a funding instant (a multiple of {interval_ms} ms)"
            )
        seeded: dict[int, ListedRate] = {}
        listed = self.rows.get(symbol, {})
        for i, rate in enumerate(rates):
            at = first_ms + i * interval_ms
            if at > now_ms:
                raise ValueError(
                    f"{symbol}: funding instant {at} is after the venue's clock ({now_ms}): a "
                    "history lists only instants already settled"
                )
            known = listed.get(at)
            if known is not None and known.rate != rate:
                raise ValueError(
                    f"{symbol}: funding instant {at} was settled at {known.rate}, not {rate}"
                )
            seeded[at] = ListedRate(symbol, at, rate, mark)
        self.rows.setdefault(symbol, {}).update(seeded)
        return sorted(seeded)

    def between(self, symbols: Iterable[str], start_ms: int, end_ms: int) -> list[ListedRate]:
        """The rows of ``symbols`` with ``start_ms <= at <= end_ms``, oldest first (ties in
        the order of ``symbols``)."""
        picked: list[ListedRate] = []
        for symbol in symbols:
            picked += [r for at, r in self.rows.get(symbol, {}).items() if start_ms <= at <= end_ms]
        order = {s: i for i, s in enumerate(dict.fromkeys(r.symbol for r in picked))}
        return sorted(picked, key=lambda r: (r.at_ms, order[r.symbol]))
