"""A fake Kraken spot REST API that the real ccxt library can drive.

Public entry points:

* :class:`~tests.venues.kraken.server.FakeKraken` - the venue (state, faults, server)
* :func:`~tests.venues.kraken.fixtures.make_ccxt_kraken` - a ccxt client wired to it
* ``tests.venues.kraken.fixtures`` - pytest fixtures
* ``python -m tests.venues.kraken --port 8082`` - standalone server
"""

from .errors import KrakenError
from .faults import FAULTS, FaultInjector
from .server import DEFAULT_API_KEY, DEFAULT_SECRET, FakeKraken
from .state import KrakenState, Pair

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SECRET",
    "FAULTS",
    "FakeKraken",
    "FaultInjector",
    "KrakenError",
    "KrakenState",
    "Pair",
]
