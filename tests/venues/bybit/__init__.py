"""A fake Bybit v5 (linear USDT perpetuals) that the real ccxt library can drive.

Public entry points:

* :class:`~tests.venues.bybit.server.FakeBybit` - the venue (state, faults, server)
* :func:`~tests.venues.bybit.fixtures.make_ccxt_bybit` - a ccxt client wired to it
* ``tests.venues.bybit.fixtures`` - pytest fixtures
* ``python -m tests.venues.bybit --port 8081`` - standalone server
"""

from .errors import BybitError
from .faults import FAULTS, FaultInjector
from .server import DEFAULT_API_KEY, DEFAULT_SECRET, FakeBybit
from .state import BybitState, Instrument

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "FAULTS",
    "BybitError",
    "BybitState",
    "FakeBybit",
    "FaultInjector",
    "Instrument",
]
