"""Fixtures: fresh, initialized emulator instances (one per test, never shared)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.venues.mt5 import MT5Terminal


@pytest.fixture
def raw_term() -> MT5Terminal:
    """A terminal that has not been initialized yet."""
    return MT5Terminal()


@pytest.fixture
def term() -> Iterator[MT5Terminal]:
    """A connected terminal on a hedging account (10,000 USD, 1:100)."""
    mt5 = MT5Terminal(margin_mode="hedging")
    assert mt5.initialize()
    yield mt5
    mt5.shutdown()


@pytest.fixture
def netting() -> Iterator[MT5Terminal]:
    """A connected terminal on a netting account (10,000 USD, 1:100)."""
    mt5 = MT5Terminal(margin_mode="netting")
    assert mt5.initialize()
    yield mt5
    mt5.shutdown()
