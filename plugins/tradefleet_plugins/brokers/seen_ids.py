"""The ids of venue executions a broker has already turned into fills, kept only as long as a
later read of the venue can return them again.

A broker reads the venue's executions from a moving start (the last one seen, less a margin)
and skips those it has taken before, by id. An id older than every start a later read can use
can never come back, so remembering it only costs memory: a busy bot's pod would otherwise
hold every execution of its life (tens of MB a year). Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Below this many ids a sweep is not worth it; above, the sweep runs when the memory has doubled
# since the last one (amortised O(1) a step).
_FIRST_SWEEP = 1024


class SeenIds(Generic[K]):
    """Execution ids with the venue time (ms or s, the caller's unit) each happened at.

    An execution older than the floor counts as taken even once its id is forgotten: a venue
    that returned it anyway (a start it ignored) must not make it a second fill. One without a
    time is never forgotten."""

    def __init__(self) -> None:
        self._stamps: dict[K, int] = {}
        self._timeless: set[K] = set()
        self._floor: int | None = None
        self._sweep_at = _FIRST_SWEEP

    def __len__(self) -> int:
        return len(self._stamps) + len(self._timeless)

    def taken(self, key: K, stamp: int | None) -> bool:
        if key in self._stamps or key in self._timeless:
            return True
        return stamp is not None and self._floor is not None and stamp < self._floor

    def add(self, key: K, stamp: int | None) -> None:
        if stamp is None:
            self._timeless.add(key)
            return
        self._stamps[key] = stamp
        if len(self._stamps) >= self._sweep_at:
            self._sweep()

    def forget_before(self, stamp: int) -> None:
        """From now on no read returns an execution older than ``stamp``: its id may go.

        The floor only rises: a lower one asked for later keeps the higher one."""
        if self._floor is None or stamp > self._floor:
            self._floor = stamp
        if len(self._stamps) >= self._sweep_at:
            self._sweep()

    def _sweep(self) -> None:
        floor = self._floor
        if floor is not None:
            self._stamps = {k: s for k, s in self._stamps.items() if s >= floor}
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self._stamps))
