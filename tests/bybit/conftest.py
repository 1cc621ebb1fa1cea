"""Fixtures for the fake Bybit tests (defined in tests.venues.bybit.fixtures)."""

from tests.venues.bybit.fixtures import bybit, bybit_async, fake_bybit  # noqa: F401
