"""The currency a bot symbol pays its profit in, read from its name, and the paper broker's
refusal of a symbol whose profit is surely in another currency than the capital's (pure).

The paper broker books a trade's profit as quantity × price move, which is money of the
symbol's quote currency, as money of the account: USDJPY on a USD account would book yen as
dollars (a 100 JPY stop-out, about 0.67 USD, as a loss of 100 USD), and every figure a
rehearsal shows (sizes, P&L, drawdown, the limits of the risk rules) would be off by the rate.
The MT5 broker refuses such a symbol at start from the terminal's own ``currency_profit``; the
paper broker has no venue to ask, so it reads the name, and refuses only what the name says
surely:

- a unified name ``BASE/QUOTE`` or ``BASE/QUOTE:SETTLE`` (ccxt's): the price is in QUOTE; a
  contract settled in another currency than its quote (``BTC/USD:BTC``, an inverse perpetual)
  pays something the paper broker does not simulate (``contracts × (1/entry − 1/exit)`` in BTC,
  not quantity × price move in USD), so it is refused on any account;
- a six-letter forex name of two ISO 4217 codes, the first a currency or a metal (``EURUSD``,
  ``USDJPY``, ``XAUUSD``), the last a currency: the price is in the last three letters.

Anything else (``SYN``, ``GOLD.pro``, ``BTCUSDT``, ``US500``) passes as before: a wrong guess
would refuse a bot that books right. USD and the USD stablecoins count as one currency here:
they trade within a fraction of a percent of a dollar, and a rehearsal of ``BTC/USDT`` on a
USD account is off by no more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# ISO 4217's currencies in use (funds codes, such as BOV or CHE, and the non-currency X-codes
# left out), and CNH, the offshore yuan forex brokers quote (USDCNH) without an ISO code.
_ISO_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
    BYN BZD CAD CDF CHF CLP CNH CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
    TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
ISO_CURRENCIES = frozenset(_ISO_CODES.split())
# ISO 4217's precious metals: priced in a currency (XAUUSD), never the price's currency here.
METALS = frozenset({"XAU", "XAG", "XPT", "XPD"})
# USD and the coins pegged to it, taken as one currency by this check (see the module's doc).
USD_LIKE = frozenset({"USD", "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USDP"})

_FOREX = re.compile(r"[A-Z]{6}")
_CODE = re.compile(r"[A-Z][A-Z0-9]*")


@dataclass(frozen=True)
class Pricing:
    """What a symbol's name says of it: its ``base`` (what a quantity counts), ``quote``, the
    currency its price (and so quantity × price move) is in, and ``settle``, the currency the
    venue pays its profit in."""

    base: str
    quote: str
    settle: str


def pricing_of(symbol: str) -> Pricing | None:
    """The currencies ``symbol``'s name surely states, or None when it states none."""
    name = symbol.strip().upper()
    if "/" in name:
        return _unified(name)
    if _FOREX.fullmatch(name):
        base, quote = name[:3], name[3:]
        if (base in ISO_CURRENCIES or base in METALS) and quote in ISO_CURRENCIES:
            return Pricing(base, quote, quote)
    return None


def _unified(name: str) -> Pricing | None:
    """``BASE/QUOTE[:SETTLE]``; a dated contract's settle part keeps its expiry
    (``USDT-250328``), and an option's its strike and side: the currency is before the dash."""
    pair, _, settle_part = name.partition(":")
    base, _, quote = pair.partition("/")
    settle = settle_part.partition("-")[0] or quote
    if not all(_CODE.fullmatch(code) for code in (base, quote, settle)):
        return None
    return Pricing(base, quote, settle)


def same_money(first: str, second: str) -> bool:
    """Whether two currency codes count as one here: equal, or both USD or a USD stablecoin."""
    first, second = first.upper(), second.upper()
    return first == second or (first in USD_LIKE and second in USD_LIKE)


def symbol_refusal(index: int, symbol: str, capital: str) -> str | None:
    """Why the paper broker cannot book ``symbol`` (``spec.market.symbols[index]``) for an
    account in ``capital``, or None when it can or the name does not say."""
    pricing = pricing_of(symbol)
    if pricing is None or not capital:
        return None
    field = f"spec.market.symbols[{index}]"
    quote, settle = pricing.quote, pricing.settle
    if not same_money(settle, quote):
        return (
            f"{field}: {symbol} is priced in {quote} but settled in {settle} (an inverse or "
            f"quanto contract); the paper broker books quantity × price move in {quote} as "
            f"money of the account, which such a contract does not pay, and simulates none: "
            f"rehearse the contract settled in {quote} ({pricing.base}/{quote}:{quote}) with "
            f"spec.capital.currency {quote}"
        )
    if not same_money(quote, capital):
        return (
            f"{field}: {symbol} pays its profit in {quote} but spec.capital.currency is "
            f"{capital}; tradefleet does not convert profit currencies yet, so the paper "
            f"broker would book {quote} as {capital}: set spec.capital.currency to {quote} "
            f"(the rehearsal's sizes, P&L and limits then count in {quote}), or trade symbols "
            f"whose profit currency is {capital}"
        )
    return None


def currency_refusal(symbols: Sequence[str], capital: str) -> str | None:
    """Why the paper broker cannot book the bot's ``symbols`` for an account in ``capital``
    (one line per symbol refused), or None when it can."""
    problems = [symbol_refusal(i, symbol, capital) for i, symbol in enumerate(symbols)]
    found = [problem for problem in problems if problem is not None]
    return "\n".join(found) if found else None
