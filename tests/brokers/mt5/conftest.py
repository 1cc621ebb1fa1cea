"""Fixtures: an MT5 broker connected to a fresh emulated terminal (netting or hedging)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers.mt5.harness import Mt5Harness


@pytest.fixture
def netting() -> Iterator[Mt5Harness]:
    harness = Mt5Harness.netting().connect()
    yield harness
    harness.close()


@pytest.fixture
def hedging() -> Iterator[Mt5Harness]:
    harness = Mt5Harness.hedging().connect()
    yield harness
    harness.close()
