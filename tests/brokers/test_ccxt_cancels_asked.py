"""The ccxt broker forgets a cancel the bot asked once the order ends, or at once when there is
nothing to cancel (review R41).

``cancel`` records the id (``_cancels_asked``: a stop-loss lifted for a Kraken take-profit's
sale, whose cancel the bot asked, ends as cancelled, not refused); ``_final`` forgets it. A
cancel of an order the broker never placed (nor adopts), or of one it has already ended (its
final status on its way to the engine as the cancel is asked), never reached ``_final`` again:
the id stayed for the process's life. The venue is left out (``_followed`` answers).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tradefleet_plugins.brokers.ccxt_broker import CcxtBroker
from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams


class _Io:
    def spawn(self, coro: Any) -> None:
        asyncio.run(coro)


def _broker(followed: object) -> CcxtBroker:
    broker = CcxtBroker(CcxtBrokerParams(exchange="binance"))

    async def _followed(*_args: object, **_kwargs: object) -> object:
        return followed

    broker._io = _Io  # type: ignore[method-assign,assignment]
    broker._followed = _followed  # type: ignore[method-assign,assignment]
    return broker


def test_a_cancel_of_an_order_never_placed_is_not_kept() -> None:
    broker = _broker(None)
    broker.cancel("never-placed-1")
    assert "never-placed-1" not in broker._cancels_asked


class _Ended:
    final_sent = True


def test_a_cancel_of_an_order_already_ended_is_not_kept() -> None:
    broker = _broker(_Ended())
    broker.cancel("filled-1")
    assert "filled-1" not in broker._cancels_asked
