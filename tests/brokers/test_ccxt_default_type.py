"""``options.defaultType`` may not contradict ``market_type``: the broker sets it from the
market type, and a spot bot given ``swap`` (or a linear one ``spot``) would make ccxt read the
bot's symbols as other markets, so every order failed at the venue instead of the manifest
being refused, naming the field, at admission or at ``tradefleet backtest``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tradefleet_plugins.brokers.ccxt_params import CcxtBrokerParams

SPOT: dict[str, Any] = {"exchange": "binance"}
USDM: dict[str, Any] = {"exchange": "binanceusdm", "market_type": "linear"}


@pytest.mark.parametrize(
    ("params", "default_type"),
    [(SPOT, "swap"), (SPOT, "margin"), (SPOT, "future"), (USDM, "spot"), (USDM, "margin")],
)
def test_a_default_type_against_the_market_type_is_refused_naming_it(
    params: dict[str, Any], default_type: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        CcxtBrokerParams.model_validate({**params, "options": {"defaultType": default_type}})
    words = str(refused.value)
    assert f"options.defaultType: {default_type!r} contradicts market_type" in words
    assert "remove it" in words


@pytest.mark.parametrize(
    ("params", "default_type"), [(SPOT, "spot"), (USDM, "swap"), (USDM, "future")]
)
def test_a_default_type_the_market_type_means_is_taken(
    params: dict[str, Any], default_type: str
) -> None:
    taken = CcxtBrokerParams.model_validate({**params, "options": {"defaultType": default_type}})
    assert taken.options == {"defaultType": default_type}
    assert CcxtBrokerParams.model_validate(params).options == {}
