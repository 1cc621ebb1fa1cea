"""One signed request at a time, for a venue whose nonce is a counter per API key.

Kraken refuses a private request whose nonce is not above the last one it accepted for the key
("EAPI:Invalid nonce"). The broker has two ccxt clients on one key (one enters orders, one
reads), each with its own nonce counter, and a request signed first may reach the venue second:
a read held up anywhere between its signing and the venue, then an order signed after it and
sent at once, and the read is refused. Under load this refused about one request in fifteen
(each then waited out and resent).

So both clients draw nonces from one counter, and a request takes its turn after ccxt's rate
limiter has let it go and keeps it until its answer (or failure) is back, or for
``TURN_HOLD_S`` at most: requests are signed and reach the venue in one order. The bound keeps a
hung request from holding every other one (a stop among them) for the whole client timeout;
past it the next request goes, and the worst it meets is a nonce refusal, which the venue
answers before executing anything and the broker retries. The rate limiters stay each
client's own, so an order never waits for a read's spacing, only for a read already on the
wire.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

# The turn the running task holds (between its throttle and the end of its request), if any.
_TURN: contextvars.ContextVar[object | None] = contextvars.ContextVar("tf_turn", default=None)

# The venues (ccxt ids) whose nonce must grow from one accepted request to the next.
COUNTER_NONCE = frozenset({"kraken"})

# How long one request may hold the turn while its answer is outstanding (seconds).
TURN_HOLD_S = 2.0


def one_signer_at_a_time(*clients: Any, hold_s: float = TURN_HOLD_S) -> None:
    """Make ``clients`` (ccxt async exchanges on one key and one event loop) share a nonce
    counter and sign and send one request at a time.

    ccxt's ``fetch2`` throttles, signs (taking a nonce) and sends; the turn is taken at the end
    of ``throttle`` and given back when ``fetch2`` ends, however it ends, or after ``hold_s``.
    Every client here rate-limits (the broker sets ``enableRateLimit``), so every request
    passes ``throttle``."""
    turn = asyncio.Lock()
    holder: list[object | None] = [None]
    last = [0]

    def give_back(token: object) -> None:
        if holder[0] is token:
            holder[0] = None
            turn.release()

    def shared_nonce(client: Any) -> Any:
        def incrementing_nonce() -> int:
            last[0] = max(int(client.nonce()), last[0] + 1)
            return last[0]

        return incrementing_nonce

    def take_turn_after(throttle: Any) -> Any:
        async def throttled(cost: Any = None) -> Any:
            result = await throttle(cost)
            if _TURN.get() is None:
                await turn.acquire()
                token = object()
                holder[0] = token
                _TURN.set(token)
                asyncio.get_running_loop().call_later(hold_s, give_back, token)
            return result

        return throttled

    def give_turn_after(fetch2: Any) -> Any:
        async def in_turn(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fetch2(*args, **kwargs)
            finally:
                token = _TURN.get()
                if token is not None:
                    _TURN.set(None)
                    give_back(token)

        return in_turn

    for client in clients:
        client.incrementing_nonce = shared_nonce(client)
        client.throttle = take_turn_after(client.throttle)
        client.fetch2 = give_turn_after(client.fetch2)
