"""A fake Binance (spot + USDⓈ-M futures) that the real ccxt library can drive.

Public entry points:

* :class:`~tests.venues.binance.server.FakeBinance` - the venue (state, faults, server)
* :func:`~tests.venues.binance.fixtures.make_ccxt_binance` - a ccxt client wired to it
* ``tests.venues.binance.fixtures`` - pytest fixtures
* ``python -m tests.venues.binance --port 8080`` - standalone server
"""

from .errors import BinanceError
from .faults import FAULTS, FaultInjector
from .server import DEFAULT_API_KEY, DEFAULT_SECRET, FakeBinance
from .state import BinanceState, SymbolSpec

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "FAULTS",
    "BinanceError",
    "BinanceState",
    "FakeBinance",
    "FaultInjector",
    "SymbolSpec",
]
