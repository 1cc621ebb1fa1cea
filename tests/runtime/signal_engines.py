"""An engine trading the ``external-signal`` strategy on the paper broker, for tests that send
it signals and read what it sent."""

from __future__ import annotations

from typing import Any

from tests.runtime.helpers import make_engine
from tradefleet_plugins.strategies.external_signal import ExternalSignal
from tradefleet_plugins.strategies.external_signal_params import ExternalSignalParams
from tradefleet_runtime.model import Order


def signal_engine(broker: dict[str, Any] | None = None, **params: Any) -> tuple[Any, list[Order]]:
    """An engine trading ``external-signal`` on the paper broker, recording every order sent."""
    strategy = ExternalSignal(ExternalSignalParams.model_validate(params))
    engine = make_engine(strategy, capital=100_000.0, broker=broker)
    engine.signals = strategy  # it declares the takes-signals capability
    sent: list[Order] = []
    submit = engine.broker.submit

    def recording_submit(order: Order) -> Any:
        sent.append(order)
        return submit(order)

    engine.broker.submit = recording_submit  # type: ignore[method-assign]
    return engine, sent
