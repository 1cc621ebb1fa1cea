"""A signal's id comes from the key's bytes, never from the (unsigned) key id header.

Only the timestamp and body are signed. When two key ids hold the same key (a relay's key given
a second name while senders move over, one Secret key copied for two alert sources), a captured
request replayed with ``X-Tradefleet-Key-Id`` changed verifies again: it must be the same
signal, answered with its first outcome, never a second order.
"""

from __future__ import annotations

from pathlib import Path

from tests.service.test_webhook import KEY, NOW, running, write_key
from tests.service.webhook_client import sign, signal_body
from tradefleet_runtime.service.api import Signal, SignalResult
from tradefleet_runtime.service.webhook import key_fingerprint, signal_id_for


async def test_a_request_replayed_under_another_key_id_with_the_same_key_trades_once(
    tmp_path: Path,
) -> None:
    journaled: dict[str, SignalResult] = {}  # the bot's journal: first outcome by signal id

    async def bot(signal: Signal) -> SignalResult:
        return journaled.setdefault(
            signal.signal_id, SignalResult(True, client_order_id=f"order-{len(journaled) + 1}")
        )

    async with running(tmp_path) as h:
        h.answer = bot
        write_key(h.keys_dir, "tradingview", KEY)  # the same key under a second id
        body = signal_body()
        captured = sign(KEY, body, NOW, key_id="default")
        first = await h.post(body, captured)
        assert first.status == 202, first.body
        replayed = await h.post(body, {**captured, "X-Tradefleet-Key-Id": "tradingview"})

    assert replayed.status == 202, replayed.body
    assert replayed.body["client_order_id"] == first.body["client_order_id"]
    assert replayed.body["signal_id"] == first.body["signal_id"]
    assert len(journaled) == 1, f"two signals from one signed request: {sorted(journaled)}"


def test_the_signal_id_names_the_key_by_a_fingerprint_never_the_key() -> None:
    """The id is public (answered, journaled, logged): it holds a hash of the key, not the
    key, and differs for another key signing the same text."""
    signal_id = signal_id_for(KEY, "ab" * 32)
    assert signal_id.startswith(f"key-{key_fingerprint(KEY)}:sig-")
    assert KEY.decode() not in signal_id and KEY.hex() not in signal_id
    assert signal_id_for(KEY + b"x", "ab" * 32) != signal_id
