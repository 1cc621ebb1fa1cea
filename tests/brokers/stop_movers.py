"""A scripted risk plugin that asks the engine to move a position's stop (MOVE_STOP)."""

from __future__ import annotations

from tradefleet_runtime.sdk import AccountAction, ActionKind, Bar, RiskContext


class Mover:
    """Asks one MOVE_STOP of ``symbol`` after each bar named in ``prices`` (bar index), once
    (the engine asks acting plugins again after each pump of the venue's events)."""

    def __init__(self, symbol: str, prices: dict[int, float]) -> None:
        self.symbol = symbol
        self.prices = prices
        self.bars = 0

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1

    def account_actions(self, ctx: RiskContext) -> list[AccountAction]:
        price = self.prices.pop(self.bars - 1, None)
        if price is None:
            return []
        return [AccountAction(ActionKind.MOVE_STOP, "trail", self.symbol, price=price)]
