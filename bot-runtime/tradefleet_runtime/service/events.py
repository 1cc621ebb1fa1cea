"""Fan-out of runtime events to subscribers that may be slow (gRPC streams).

Publishing never blocks: each subscriber has a bounded queue, and what does not fit is counted
and reported to that subscriber as one ``DROPPED`` event when it catches up.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator, Mapping

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


class EventHub:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)

    def subscribe(self, max_queue: int = 1000) -> Subscription:
        subscription = Subscription(self, max_queue)
        with self._lock:
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
        subscribers = self._subscribers  # copy-on-write list: no lock on the hot path
        if not subscribers:
            return
        event = RuntimeEvent(next(self._seq), ts, kind, message, dict(data or {}))
        for subscription in subscribers:
            subscription.offer(event)
