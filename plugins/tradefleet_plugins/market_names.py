"""Bot symbols as venue markets: the refusals the ccxt broker and the ccxt feed share (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def repeated_market(symbols: Sequence[str], markets: Sequence[str], exchange: str) -> str | None:
    """The refusal of a bot symbol that names the same venue market as an earlier one
    (``BTC/USDT`` and ``BTCUSDT`` at Binance), or None when each is a market of its own.
    ``markets`` are the symbols' ccxt markets, in the same order. Two names of one market would
    split its orders and fills (or give both the same bars) between two bot symbols."""
    first: dict[str, int] = {}
    for index, (symbol, market) in enumerate(zip(symbols, markets, strict=True)):
        earlier = first.setdefault(market, index)
        if earlier != index:
            return (
                f"spec.market.symbols[{index}]: {symbol} is the same {exchange} market as "
                f"spec.market.symbols[{earlier}] ({symbols[earlier]}); list it once"
            )
    return None
