"""The engine's event bus: every state change is published here, in order.

Past events are kept in a bounded ring so ``events --since`` can replay them. Each subscriber
gets its own bounded queue: a slow client loses its subscription (it is told so) instead of
ever making the daemon wait.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

HISTORY = 10_000
QUEUE_DEPTH = 4_096


@dataclass(frozen=True)
class Event:
    """One thing that happened to one object."""

    type: str  # container, image, volume, network, pod, daemon
    action: str
    id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_ns: int = 0
    seq: int = 0


class SubscriberTooSlow(Exception):
    """The subscriber fell more than QUEUE_DEPTH events behind and was dropped."""


class EventBus:
    """Publish/subscribe of engine events, safe to publish from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._seq = itertools.count(1)
        self._history: deque[Event] = deque(maxlen=HISTORY)
        self._subscribers: set[_Subscriber] = set()

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open now."""
        return len(self._subscribers)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach the loop subscribers live on (publishers in threads hop onto it)."""
        self._loop = loop

    def publish(self, type: str, action: str, id: str, **attributes: str) -> None:
        """Record an event and hand it to every subscriber."""
        if self._loop is not None and _running_loop() is not self._loop:
            self._loop.call_soon_threadsafe(self._publish, type, action, id, attributes)
        else:
            self._publish(type, action, id, attributes)

    def _publish(self, type: str, action: str, id: str, attributes: dict[str, str]) -> None:
        event = Event(type, action, id, attributes, time.time_ns(), next(self._seq))
        self._history.append(event)
        for sub in list(self._subscribers):
            sub.offer(event)

    async def subscribe(
        self,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        match: Callable[[Event], bool] = lambda e: True,
    ) -> AsyncIterator[Event]:
        """Replay history from ``since_ns`` then follow live events until ``until_ns``."""
        sub = _Subscriber()
        self._subscribers.add(sub)
        try:
            last_seq = 0
            if since_ns is not None:
                for event in list(self._history):
                    if event.time_ns >= since_ns and (
                        until_ns is None or event.time_ns <= until_ns
                    ):
                        last_seq = event.seq
                        if match(event):
                            yield event
            now = time.time_ns()
            if until_ns is not None and until_ns <= now:
                return
            deadline = None if until_ns is None else (until_ns - now) / 1e9
            start = time.monotonic()
            while True:
                timeout = (
                    None if deadline is None else max(0.0, deadline - (time.monotonic() - start))
                )
                try:
                    got = await asyncio.wait_for(sub.queue.get(), timeout)
                except TimeoutError:
                    return
                if got is None:
                    raise SubscriberTooSlow("event subscriber fell too far behind")
                if got.seq > last_seq and match(got):
                    yield got
        finally:
            self._subscribers.discard(sub)


class _Subscriber:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_DEPTH + 1)
        self.dropped = False

    def offer(self, event: Event) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= QUEUE_DEPTH:
            self.dropped = True
            log.warning("dropping a slow event subscriber")
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
