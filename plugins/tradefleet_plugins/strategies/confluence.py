"""``indicator-confluence``: five indicators vote; enter when a direction gets enough votes.

Votes for a long (shorts mirrored): RSI at or below ``rsi_oversold`` or rising through 50
(momentum: RSI > 50 and below ``rsi_overbought``), MACD histogram above zero, close above the
trend EMA, close above the Bollinger middle band, close above the session VWAP. The strength of
a direction is its number of votes; a flat bot enters when one direction reaches
``threshold`` (default 3 of 5) with a stop-loss and take-profit bracket (−2% / +5% by
default), and may close early at ``early_exit_fraction`` of the stop distance.
"""

from __future__ import annotations

from tradefleet_plugins.strategies.confluence_params import ConfluenceParams
from tradefleet_runtime.sdk import (
    EMA,
    MACD,
    RSI,
    Bar,
    Bollinger,
    SessionVWAP,
    Strategy,
    StrategyContext,
)


class _Indicators:
    __slots__ = ("bollinger", "ema", "macd", "rsi", "vwap")

    def __init__(self, rsi: RSI, macd: MACD, ema: EMA, bollinger: Bollinger, vwap: SessionVWAP):
        self.rsi, self.macd, self.ema, self.bollinger, self.vwap = rsi, macd, ema, bollinger, vwap


class IndicatorConfluence(Strategy):
    params: ConfluenceParams

    def __init__(self, params: ConfluenceParams) -> None:
        super().__init__(params)
        self._indicators: dict[str, _Indicators] = {}
        self.last_votes: dict[str, tuple[int, int]] = {}  # (long, short) at the last bar

    def on_start(self, ctx: StrategyContext) -> None:
        p = self.params
        for symbol in ctx.symbols:
            self._indicators[symbol] = _Indicators(
                self.indicator(RSI(p.rsi_period), symbol),
                self.indicator(MACD(p.macd_fast, p.macd_slow, p.macd_signal), symbol),
                self.indicator(EMA(p.ema_period), symbol),
                self.indicator(Bollinger(p.bollinger_period, p.bollinger_k), symbol),
                self.indicator(SessionVWAP(), symbol),
            )

    def votes(self, bar: Bar) -> tuple[int, int]:
        """(long votes, short votes) on the bar just handled; (0, 0) until all are ready."""
        i = self._indicators[bar[0]]
        close = bar[6]
        macd = i.macd
        # The histogram's newest value, as MACD computes it (NaN until MACD is ready): read
        # from its two values, not through its series.
        hist = macd.value - macd.signal_value
        rsi, ema = i.rsi.value, i.ema.value
        middle, vwap = i.bollinger.value, i.vwap.value
        if not (rsi == rsi and hist == hist and ema == ema and middle == middle and vwap == vwap):
            return 0, 0  # NaN somewhere: not warmed up
        p = self.params
        long = (
            (rsi <= p.rsi_oversold or 50.0 < rsi < p.rsi_overbought)
            + (hist > 0.0)
            + (close > ema)
            + (close > middle)
            + (close > vwap)
        )
        short = (
            (rsi >= p.rsi_overbought or p.rsi_oversold < rsi < 50.0)
            + (hist < 0.0)
            + (close < ema)
            + (close < middle)
            + (close < vwap)
        )
        return long, short

    def on_bar(self, bar: Bar) -> None:
        symbol = bar[0]
        long, short = self.last_votes[symbol] = self.votes(bar)
        ctx = self.ctx
        held = ctx.position(symbol)
        p = self.params
        close = bar[6]
        if held.quantity:
            fraction = p.early_exit_fraction
            if fraction is not None:
                move = (close - held.average_price) / held.average_price
                loss = -move if held.quantity > 0 else move
                if loss >= fraction * p.stop_loss_pct:
                    ctx.close(symbol, tag="early-exit")
            return
        if ctx.open_orders(symbol):
            return  # an entry is on its way
        threshold = p.threshold
        if long >= threshold and long > short:
            ctx.buy(
                symbol,
                stop_loss=close * (1 - p.stop_loss_pct),
                take_profit=close * (1 + p.take_profit_pct),
                tag=f"confluence-long-{long}",
            )
        elif short >= threshold and short > long and p.allow_short:
            ctx.sell(
                symbol,
                stop_loss=close * (1 + p.stop_loss_pct),
                take_profit=close * (1 - p.take_profit_pct),
                tag=f"confluence-short-{short}",
            )
