"""A restarted bot tells an ``OrderRestorer`` broker the orders its journal holds working,
before the start-up reconciliation asks it for ``order_reports`` and ``fill_reports``.

A venue cannot read back everything the bot holds of its orders (an MT5 split child's level
once a person moved one ticket's line; an order's reduce-only): the broker reads them from the
journal's orders, and must have them before it answers what filled while the bot was down.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from tests.plugin_hooks import registry_with, venue_plugins
from tests.runtime.test_reconcile import (
    BuyAndRest,
    SharedVenue,
    _bars,
    _run,
)
from tradefleet_runtime.capabilities import OrderRestorer
from tradefleet_runtime.model import Order, OrderReport


class RestoringVenue(SharedVenue):
    """The shared account, noting each call a restart makes of it, in order."""

    calls: ClassVar[list[tuple[str, Any]]] = []

    def restore_orders(self, orders: Sequence[Order]) -> None:
        RestoringVenue.calls.append(("restore_orders", [o.client_order_id for o in orders]))

    def order_reports(self, since_ts: int) -> Sequence[OrderReport]:
        RestoringVenue.calls.append(("order_reports", since_ts))
        return super().order_reports(since_ts)


def test_a_restart_hands_the_journals_working_orders_before_asking_for_reports(
    tmp_path: Path,
) -> None:
    SharedVenue.account = None
    SharedVenue.reachable.set()
    RestoringVenue.calls.clear()
    registry = registry_with(
        venue_plugins(("buy-and-rest", BuyAndRest), ("shared-venue", RestoringVenue))
    )
    assert isinstance(RestoringVenue(None), OrderRestorer)
    _run(tmp_path, registry, _bars(0, 5))
    resting = [o.client_order_id for o in SharedVenue.account.open_orders()]  # type: ignore[union-attr]
    assert len(resting) == 1
    RestoringVenue.calls.clear()

    _run(tmp_path, registry, _bars(5, 2))

    names = [name for name, _ in RestoringVenue.calls]
    assert names[:2] == ["restore_orders", "order_reports"]
    assert RestoringVenue.calls[0][1] == resting
