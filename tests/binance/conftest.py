"""Fixtures for the fake Binance tests (defined in tests.venues.binance.fixtures)."""

from tests.venues.binance.fixtures import (  # noqa: F401
    binance_spot,
    binance_spot_async,
    binance_usdm,
    binance_usdm_async,
    fake_binance,
)
