"""Server-Sent Events for every open dashboard from one producer.

Each open `/api/events` stream used to poll the results file and compute the job status on its own:
200 streams meant 200 status computations a second, row counts over the whole results file each
time, and a job whose writes waited behind all those reads. Here one producer task per server does
the work once per interval and fans the encoded events out to the streams' queues:

- `event: change` with `{"tables": [...]}` when result tables changed (one `ChangeWatcher`, polled
  every `poll_interval_s`);
- `event: status` with the `/api/status` body every `status_interval_s`, and at once to a stream
  that just opened (the last one computed, so opening a stream costs no computation).

The producer runs while at least one stream is open. At most `max_streams` streams are open at
once; `StreamLimitError` (HTTP 503) refuses more. A stream whose client does not keep up (its queue
is full) is ended: the browser's EventSource reconnects and re-fetches what it missed. That also
frees the place of a stream whose client left before its response started (its body never ran).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from clickstream.serve.results import ChangeWatcher, ResultsDB

POLL_INTERVAL_S = 0.5
STATUS_INTERVAL_S = 1.0
MAX_STREAMS = 100
QUEUE_EVENTS = 32  # a stream this far behind is ended (its client reconnects)
# How often a stream with nothing to send checks that the server is not stopping.
IDLE_CHECK_S = 0.5

log = logging.getLogger(__name__)


class StreamLimitError(RuntimeError):
    """Too many event streams are open; the message says how many and what to do."""


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


class EventHub:
    """The producer and its streams. Everything but `snapshot` and the watcher's polls runs on the
    server's event loop, so the stream set needs no lock."""

    def __init__(
        self,
        results: ResultsDB | None,
        snapshot: Callable[[], dict[str, Any]],
        stopping: Callable[[], bool],
        *,
        max_streams: int = MAX_STREAMS,
        poll_interval_s: float = POLL_INTERVAL_S,
        status_interval_s: float = STATUS_INTERVAL_S,
    ) -> None:
        self.results = results
        self.snapshot = snapshot
        self.stopping = stopping
        self.max_streams = max_streams
        self.poll_interval_s = poll_interval_s
        self.status_interval_s = status_interval_s
        self.status_computations = 0  # how many status events were computed (tests count them)
        self._streams: set[asyncio.Queue[str | None]] = set()
        self._producer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_status: str | None = None
        self._baseline = asyncio.Event()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def open(self) -> asyncio.Queue[str | None]:
        """A new stream's queue; starts the producer if it is the first. Raises StreamLimitError.

        Returns once the producer has its baseline of the tables: the client fetches the tables
        when its stream opens, so every later write is reported and none is missed in between."""
        self._follow_loop()
        if len(self._streams) >= self.max_streams:
            raise StreamLimitError(
                f"too many open event streams ({self.max_streams}): close some dashboard tabs, or "
                "poll /api/status instead; the REST API still answers"
            )
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_EVENTS)
        if self._last_status is not None:
            queue.put_nowait(self._last_status)
        self._streams.add(queue)
        if self._producer is None or self._producer.done():
            self._baseline = asyncio.Event()
            self._producer = asyncio.get_running_loop().create_task(self._produce(self._baseline))
        try:
            await self._baseline.wait()
        except BaseException:  # the client left while the baseline was read
            self.close(queue)
            raise
        return queue

    def close(self, queue: asyncio.Queue[str | None]) -> None:
        self._streams.discard(queue)

    def _follow_loop(self) -> None:
        # A server stopped and started again runs a new event loop: the old producer died with it.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._producer, self._last_status = loop, None, None
            self._streams.clear()

    async def stream(self, queue: asyncio.Queue[str | None]) -> AsyncIterator[str]:
        """The body of one `/api/events` response."""
        try:
            yield "retry: 2000\n\n"  # reconnect quickly if the server restarts
            while not self.stopping():
                try:
                    event = await asyncio.wait_for(queue.get(), IDLE_CHECK_S)
                except TimeoutError:
                    continue
                if event is None:
                    return
                yield event
        finally:
            self.close(queue)

    async def _produce(self, baseline: asyncio.Event) -> None:
        watcher = ChangeWatcher(self.results) if self.results is not None else None
        loop = asyncio.get_running_loop()
        try:
            if watcher is not None:
                await asyncio.to_thread(watcher.poll)  # the baseline: streams hear of later changes
            baseline.set()
            next_status = loop.time()
            while self._streams and not self.stopping():
                if watcher is not None:
                    changed = await asyncio.to_thread(watcher.poll)
                    if changed:
                        self._publish(sse("change", {"tables": changed}))
                if loop.time() >= next_status:
                    next_status = loop.time() + self.status_interval_s
                    await self._publish_status()
                await asyncio.sleep(self.poll_interval_s)
        except Exception:  # the streams end, their browsers reconnect and start a new producer
            log.exception("the event producer failed")
        finally:
            baseline.set()  # a failed producer lets its waiting streams go (they end at once)
            if watcher is not None:
                watcher.close()
            self._last_status = None
            self._end_all()

    async def _publish_status(self) -> None:
        self.status_computations += 1
        body = await asyncio.to_thread(self.snapshot)
        self._last_status = sse("status", body)
        self._publish(self._last_status)

    def _publish(self, event: str) -> None:
        for queue in list(self._streams):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._end(queue)

    def _end(self, queue: asyncio.Queue[str | None]) -> None:
        self._streams.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    def _end_all(self) -> None:
        for queue in list(self._streams):
            self._end(queue)
