"""A live bot stopped with ``onStop.flattenPositions`` closes its position at the venue before
its process exits, and its journal says the position was flattened only when the venue filled
the close.

`tradefleet serve` runs a `live` bot (`external-signal`, the `ccxt` broker) against the fake
Binance USDⓈ-M in this process. The venue's broker reports a close's fill later, as an event:
the stop waits for it (as for its cancels), so the close is not a request left in flight when
the process exits; a close the venue does not fill in time is journaled as not confirmed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import test_live_ccxt_halt_restart as halt_restart
from tests.e2e import test_live_ccxt_restart as restart
from tests.e2e import test_live_ccxt_stop_adopted as stop_adopted
from tests.e2e.serve_process import ServeProcess
from tests.venues.binance.server import FakeBinance

FLATTEN_ON_STOP = "  onStop: {cancelOpenOrders: true, flattenPositions: true}\n"


# The restart suite's Binance USDⓈ-M account, its position and the stop event, as they read
# them (the fixture under its own name).
fake = restart.fake
_venue_position = halt_restart._venue_position
_stopped_event = stop_adopted._stopped_event


def _long_bot(
    folder: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> tuple[ServeProcess, str]:
    """A running bot holding 0.01 BTC at the venue under its SL/TP, told to flatten when
    stopped; its entry's id."""
    manifest = restart._bot(folder, fake, "market") + FLATTEN_ON_STOP
    serve = restart._serve(folder, manifest, monkeypatch)
    entry = restart._signal(serve, restart.PRICE)
    restart._until(lambda: restart._journal(folder)[1].get(f"{entry}-tp") == "open")
    assert _venue_position(fake) == pytest.approx(0.01)
    return serve, entry


def test_a_stop_with_flatten_closes_the_position_at_the_venue_before_the_process_exits(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, entry = _long_bot(tmp_path, fake, monkeypatch)

    assert serve.terminate() == 0

    assert _venue_position(fake) == 0.0
    message, data = _stopped_event(tmp_path)
    assert message.endswith("resting orders cancelled; positions flattened"), message
    assert data["flatten_unconfirmed"] == [] and data["cancel_unconfirmed"] == []
    # The position's SL/TP, cancelled by the close, are the venue's word too: journaled so.
    statuses = restart._journal(tmp_path)[1]
    assert (statuses[f"{entry}-sl"], statuses[f"{entry}-tp"]) == ("cancelled", "cancelled")
    assert data["open_orders"] == []


def test_a_close_the_venue_does_not_fill_in_time_is_journaled_as_not_confirmed(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve, _entry = _long_bot(tmp_path, fake, monkeypatch)
    # The closing market order hangs at the venue past the stop's wait, unexecuted.
    fake.faults.inject("timeout", path="/fapi/v1/order", method="POST", times=None, hold_s=30)

    assert serve.terminate() == 0

    message, data = _stopped_event(tmp_path)
    assert "positions flattened" not in message, message
    assert "flatten NOT confirmed filled" in message, message
    assert len(data["flatten_unconfirmed"]) == 1
    assert data["flatten_unconfirmed"][0] in message


def test_sl_tp_cancels_the_venue_does_not_answer_are_named_not_claimed(
    tmp_path: Path, fake: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left working, a reduce-only stop of a closed position would act on a later one: a stop
    that could not hear their cancels says so, by id."""
    serve, entry = _long_bot(tmp_path, fake, monkeypatch)
    fake.faults.inject("timeout", path="/fapi/v1/algoOrder", method="DELETE", times=None, hold_s=30)

    assert serve.terminate() == 0

    message, data = _stopped_event(tmp_path)
    assert "resting orders cancelled;" not in message, message
    assert "cancel NOT confirmed" in message, message
    assert {f"{entry}-sl", f"{entry}-tp"} <= set(data["cancel_unconfirmed"])
