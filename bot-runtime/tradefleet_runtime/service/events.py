"""Fan-out of runtime events to subscribers that may be slow (gRPC streams).

Publishing never blocks: each subscriber has a bounded queue, and what does not fit is counted
and reported to that subscriber as one ``DROPPED`` event when it catches up.

The hub keeps the last ``KEPT`` events, so that a subscriber may start with the recent past
(``subscribe(recent=n)``): a person answering an alert connects after the event that caused it.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Collection, Iterator, Mapping

from tradefleet_runtime.service.api import EventKind, RuntimeEvent


class Subscription:
    def __init__(self, hub: EventHub, max_queue: int) -> None:
        self._hub = hub
        self._queue: queue.Queue[RuntimeEvent] = queue.Queue(maxsize=max(1, max_queue))
        self._dropped = 0
        self._lock = threading.Lock()
        self.closed = False

    def offer(self, event: RuntimeEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self._dropped += 1

    def get(self, timeout: float | None = None) -> RuntimeEvent | None:
        with self._lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            return RuntimeEvent(
                seq=0,
                ts=0,
                kind=EventKind.DROPPED,
                message=f"{dropped} event(s) dropped: the subscriber fell behind",
                data={"count": dropped},
            )
        if self.closed:
            return None
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[RuntimeEvent]:
        while not self.closed:
            event = self.get(timeout=0.5)
            if event is not None:
                yield event

    def close(self) -> None:
        self.closed = True
        self._hub.unsubscribe(self)


#: Events the hub keeps for subscribers that ask for the recent past.
KEPT = 1000


class EventHub:
    def __init__(self, kept: int = KEPT) -> None:
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._kept: deque[RuntimeEvent] = deque(maxlen=kept)

    def subscribe(
        self, max_queue: int = 1000, recent: int = 0, kinds: Collection[EventKind] = ()
    ) -> Subscription:
        """A subscription to the events published from now on; with ``recent``, first the last
        ``recent`` events kept (oldest first) of ``kinds`` (every kind when empty), with no gap
        and none twice before the live ones (taken under the lock ``publish`` takes). Those
        are chosen by kind before they are counted: a rare kind asked for is not crowded out
        by the others."""
        subscription = Subscription(self, max(max_queue, recent))
        with self._lock:
            if recent > 0:
                kept = [e for e in self._kept if not kinds or e.kind in kinds]
                for event in kept[-recent:]:
                    subscription.offer(event)
            self._subscribers = [*self._subscribers, subscription]
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s is not subscription]

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(
        self,
        ts: int,
        kind: EventKind,
        message: str,
        data: Mapping[str, str | float | int | bool] | None = None,
    ) -> None:
        # Kept whether anyone listens or not: a later subscriber may ask for it. Events are an
        # order's, a fill's or a state change's, never a bar's: this is not the bar loop.
        event = RuntimeEvent(next(self._seq), ts, kind, message, dict(data or {}))
        with self._lock:
            self._kept.append(event)
            subscribers = self._subscribers
        for subscription in subscribers:
            subscription.offer(event)
