"""``make bench``'s restart bench still measures a restart that adopts the bot's orders.

Its orders were made with the prefix of the bot's bare name while a new journal draws the
bot an identity of its own (``session.live_identity``): the restarted bot took all of them for
foreign orders and the bench stopped on its check, so ``make bench`` failed and nobody saw it.
No timing is asserted here (speed goals live in ``bench/``): only that it runs and adopts.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_brokers.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_brokers_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_restart_bench_adopts_every_order_of_the_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEFLEET_CREDENTIALS_DIR", "")  # the bench sets it: put back after
    result = _bench().bench_reconcile(open_orders=3)
    assert result["adopted"] == 3
