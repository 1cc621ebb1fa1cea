"""``ensemble``: N child strategies vote; the ensemble trades only what a quorum agrees on.

Children are built by name and params through the SDK's ``build_strategy`` (the plugin
registry), each given a *voting* context: what it reads comes from the bot (equity, orders of
the bot are not its own: it sees no working orders), but its orders are votes, never sent. A
child's standing vote per symbol is the direction of its last order (buy +1, sell −1, close 0),
and its ``position`` is that vote as a quantity, so a child behaves as it would alone.

After every bar, the direction with at least ``quorum`` votes whose mean ``confidence`` reaches
``min_confidence`` (>=) is the target (default 2 of 3 at 0.7); a vote counts only when its
child's confidence is strictly above ``min_voter_confidence`` (0, the default: every vote), so
"2 of 3 agree, each above 70%" is ``quorum: 2, min_voter_confidence: 0.7``. The ensemble
reverses into the target, and with ``exit_without_quorum`` closes a position that lost it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tradefleet_plugins.strategies.ensemble_params import EnsembleParams
from tradefleet_runtime.sdk import (
    Bar,
    Instrument,
    Order,
    OrderIntent,
    OrderType,
    Position,
    Side,
    Strategy,
    StrategyContext,
    Subscription,
    bar_handler,
    build_strategy,
)


class VotingContext:
    """A child's context: reads go to the bot's, orders become the child's vote."""

    def __init__(self, parent: StrategyContext, name: str) -> None:
        self._parent = parent
        self.name = name
        self.votes: dict[str, int] = {}

    @property
    def now(self) -> int:
        return self._parent.now

    @property
    def symbols(self) -> Sequence[str]:
        return self._parent.symbols

    @property
    def base_timeframe_s(self) -> int:
        return self._parent.base_timeframe_s

    @property
    def equity(self) -> float:
        return self._parent.equity

    @property
    def cash(self) -> float:
        return self._parent.cash

    def position(self, symbol: str) -> Position:
        return Position(symbol, float(self.votes.get(symbol, 0)))

    def instrument(self, symbol: str) -> Instrument:
        return self._parent.instrument(symbol)

    def submit(self, intent: OrderIntent) -> None:
        self.votes[intent.symbol] = 0 if intent.reduce_only else intent.side.sign

    def buy(
        self,
        symbol: str,
        quantity: float | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tag: str = "",
    ) -> None:
        self.votes[symbol] = Side.BUY.sign

    def sell(
        self,
        symbol: str,
        quantity: float | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tag: str = "",
    ) -> None:
        self.votes[symbol] = Side.SELL.sign

    def close(self, symbol: str, tag: str = "") -> None:
        self.votes[symbol] = 0

    def cancel(self, client_order_id: str) -> None:
        """A child has no working orders of its own."""

    def open_orders(self, symbol: str | None = None) -> Sequence[Order]:
        return ()

    def log(self, message: str, **fields: Any) -> None:
        self._parent.log(f"{self.name}: {message}", **fields)


class Ensemble(Strategy):
    params: EnsembleParams

    def __init__(
        self,
        params: EnsembleParams,
        children: Sequence[tuple[str, Strategy, float]] | None = None,
    ) -> None:
        """``children``: (name, strategy, confidence) built elsewhere (tests); default: built
        from ``params.children`` through the plugin registry."""
        super().__init__(params)
        if children is None:
            children = [
                (
                    child.name,
                    # The child's place in the manifest: the registry names its params
                    # (``…children[i].params.slow``) and its name (``…children[i].name``).
                    build_strategy(
                        child.name, child.params, ["spec", "strategy", "params", "children", i]
                    ),
                    child.confidence,
                )
                for i, child in enumerate(params.children)
            ]
        self.children = list(children)
        self.contexts: list[VotingContext] = []
        self._handlers: list[Callable[[Bar], None]] = []
        # (confidence, that child's standing votes) per child, in order: what tally reads.
        self._ballots: list[tuple[float, dict[str, int]]] = []
        self._base_s = 0

    def subscriptions(self, symbols: Sequence[str], base_timeframe_s: int) -> list[Subscription]:
        wanted: dict[Subscription, None] = {}
        for _, child, _ in self.children:
            wanted.update(dict.fromkeys(child.subscriptions(symbols, base_timeframe_s)))
        wanted.update(dict.fromkeys(super().subscriptions(symbols, base_timeframe_s)))
        return list(wanted)

    def warmup_bars(self) -> int:
        return max(child.warmup_bars() for _, child, _ in self.children)

    def on_start(self, ctx: StrategyContext) -> None:
        self._base_s = ctx.base_timeframe_s
        for name, child, confidence in self.children:
            voting = VotingContext(ctx, name)
            child.ctx = voting
            child.on_start(voting)
            self.contexts.append(voting)
            self._ballots.append((confidence, voting.votes))
            self._handlers.append(bar_handler(child.on_bar, child.indicator_book))

    def on_stop(self) -> None:
        for _, child, _ in self.children:
            child.on_stop()

    def update_params(self, params: EnsembleParams) -> None:
        """Take new params while running: the ensemble's own, and each child's params and
        confidence, the children being the same strategies in the same order.

        Each child's new params are validated (built through the registry) before anything
        changes, so a refusal leaves every param in force. A change of which strategies vote
        is refused: a child built now would vote from no history while the others carry
        theirs (restart the bot with the new children). Raises ``ValueError`` naming the field:
        the runtime answers ``UpdateParams`` with it, nothing applied.
        """
        running = [name for name, _, _ in self.children]
        wanted = [child.name for child in params.children]
        if wanted != running:
            raise ValueError(
                f"children: the voting strategies cannot change while the bot runs (running:"
                f" {', '.join(running)}; asked: {', '.join(wanted)}); restart the bot with them"
            )
        validated = [
            build_strategy(child.name, child.params, ["params", "children", i]).params
            for i, child in enumerate(params.children)
        ]
        for (_, child, _), new in zip(self.children, validated, strict=True):
            child.update_params(new)
        self.children = [
            (name, child, spec.confidence)
            for (name, child, _), spec in zip(self.children, params.children, strict=True)
        ]
        self._ballots = [
            (spec.confidence, votes)
            for spec, (_, votes) in zip(params.children, self._ballots, strict=True)
        ]
        super().update_params(params)

    def tally(self, symbol: str) -> int:
        """The direction a quorum agrees on with enough confidence: +1, −1 or 0. Only the
        votes of children above ``min_voter_confidence`` count (0: all): two voters at 0.95
        and 0.45 make a mean of 0.7, but not two voters each above 70%."""
        p = self.params
        floor = p.min_voter_confidence
        ballots = self._ballots
        for direction in (1, -1):
            confidences = [
                confidence
                for confidence, votes in ballots
                if votes.get(symbol, 0) == direction and (confidence > floor or not floor)
            ]
            if len(confidences) >= p.quorum and (
                sum(confidences) / len(confidences) >= p.min_confidence
            ):
                return direction
        return 0

    def on_bar(self, bar: Bar) -> None:
        for handle in self._handlers:
            handle(bar)
        if bar[1] != self._base_s:
            return
        symbol = bar[0]
        target = self.tally(symbol)
        ctx = self.ctx
        held = ctx.position(symbol).quantity
        side = (held > 0) - (held < 0)
        if target == side:
            return
        if target == 0:
            if held and self.params.exit_without_quorum:
                ctx.close(symbol, tag="no-quorum")
            return
        if held:
            ctx.close(symbol, tag="quorum-reverse")
        elif ctx.open_orders(symbol):
            return
        close, p = bar[6], self.params
        stop = p.stop_loss_pct
        profit = p.take_profit_pct
        send = ctx.buy if target > 0 else ctx.sell
        send(
            symbol,
            stop_loss=close * (1 - target * stop) if stop else None,
            take_profit=close * (1 + target * profit) if profit else None,
            tag="quorum-long" if target > 0 else "quorum-short",
        )
