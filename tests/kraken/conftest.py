"""Fixtures for the fake Kraken tests (defined in tests.venues.kraken.fixtures)."""

from tests.venues.kraken.fixtures import fake_kraken, kraken, kraken_async  # noqa: F401
