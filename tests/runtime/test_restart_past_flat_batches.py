"""``reconcile._as_decided`` takes a symbol's orders the bot decided at one time together; by
their ``created_ts`` alone, across symbols, it went wrong: An entry in another symbol
decided on the same bar (a multi-symbol strategy's bars share their time) pulls a symbol's
exit to where that unrelated entry first filled: ahead of the symbol's own take-profit that
the venue filled before the exit. The take-profit then reads as going past flat, and the
restart sends a close no order asked for — which it does not send when the other symbol's
entry is absent or decided a second later.

Long 0.1 BTCUSDT since T0 (SL 90 / TP 110 resting). On the bar of T0+60 the strategy exits
BTCUSDT with a plain sell of 0.1 (not reduce-only) and enters ETHUSDT; the bot dies. The venue
fills the ETHUSDT entry at T0+70, the take-profit at T0+100 (the long is closed: nothing past
flat), then the exit sell at T0+150 (short 0.1: what the strategy's own sell opened, not a
reduce-only order's doing — the commit's own rule: "a take-profit resting from before that
filled after a later exit did go past flat", and not one that filled before it).
"""

from __future__ import annotations

from tests.runtime.helpers import T0
from tradefleet_runtime.brackets import bracket_children
from tradefleet_runtime.model import Fill, Order, OrderType, Side
from tradefleet_runtime.order_ids import bot_prefix
from tradefleet_runtime.reconcile import past_flat_owed

PREFIX = bot_prefix("past-flat-bot")
BTC, ETH = "BTCUSDT", "ETHUSDT"
ENTRY = Order(
    PREFIX + "1", BTC, Side.BUY, 0.1, OrderType.MARKET, None,
    stop_loss=90.0, take_profit=110.0, created_ts=T0,
)  # fmt: skip
STOP, TARGET = bracket_children(ENTRY, 0.1, T0)
EXIT = Order(
    PREFIX + "2", BTC, Side.SELL, 0.1, OrderType.MARKET, None, tag="exit", created_ts=T0 + 60
)
BOUGHT = Fill(ENTRY.client_order_id, BTC, Side.BUY, 0.1, 100.0, 0.0, T0, "t1")
TP_FILL = Fill(TARGET.client_order_id, BTC, Side.SELL, 0.1, 110.0, 0.0, T0 + 100, "t3")
EXIT_FILL = Fill(EXIT.client_order_id, BTC, Side.SELL, 0.1, 109.0, 0.0, T0 + 150, "t4")


def _owed(eth_decided_at: int | None) -> list[tuple[str, str, Side, float]]:
    journaled = {o.client_order_id: o for o in (ENTRY, STOP, TARGET, EXIT)}
    missed = [TP_FILL, EXIT_FILL]
    if eth_decided_at is not None:
        eth = Order(
            PREFIX + "3", ETH, Side.BUY, 1.0, OrderType.MARKET, None, created_ts=eth_decided_at
        )
        journaled[eth.client_order_id] = eth
        missed.insert(0, Fill(eth.client_order_id, ETH, Side.BUY, 1.0, 2_000.0, 0.0, T0 + 70, "e"))
    owed = past_flat_owed(journaled, [BOUGHT], missed, {}, (), "past-flat")
    return [(p.order_id, p.symbol, p.side, round(p.quantity, 9)) for p in owed]


def test_the_venue_order_alone_owes_nothing() -> None:
    assert _owed(None) == []
    assert _owed(T0 + 61) == []  # the other symbol's entry decided a second later


def test_an_unrelated_symbols_entry_decided_on_the_same_bar_changes_nothing() -> None:
    owed = _owed(T0 + 60)
    assert owed == [], (
        f"owed {owed}: the BTCUSDT exit was moved ahead of the take-profit the venue filled "
        "before it, because an ETHUSDT entry decided at the same time filled first; the "
        "restart would buy 0.1 BTCUSDT that no order asked for"
    )
