"""Many open event streams share one producer: the status is computed once per interval for all of
them, every stream gets every status event, and past the cap a new stream is refused with 503."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clickstream.serve import ServerHandle, create_app, start_in_thread
from clickstream.serve.status import JobStatusDict
from tests.serve.conftest import FakeJob, write

STREAMS = 50
STATUS_EVENTS = 6  # per stream
INTERVAL_S = 0.2
WAIT_S = 30.0


class CountingJob(FakeJob):
    """A fake job that counts how often its status is computed, and moves at each computation."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def status(self) -> JobStatusDict:
        self.calls += 1
        self.queries["buy_cnt_per_hour"]["records_in"] = 100 + self.calls
        return super().status()


@pytest.fixture
def job() -> CountingJob:
    return CountingJob()


@pytest.fixture
def server(results_db: Path, job: CountingJob) -> Iterator[ServerHandle]:
    app = create_app(results_db, status=job.status, max_streams=STREAMS)
    hub = app.state.serve_context.hub
    hub.status_interval_s = hub.poll_interval_s = INTERVAL_S
    handle = start_in_thread(app, port=0)
    yield handle
    handle.stop()


async def _status_events(client: httpx.AsyncClient, url: str, count: int) -> list[int]:
    """`records_in` of the first `count` status events of one stream."""
    seen: list[int] = []
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "status":
                seen.append(
                    json.loads(line.removeprefix("data: "))["queries"]["buy_cnt_per_hour"]["records_in"]
                )
                if len(seen) == count:
                    return seen
    raise AssertionError(f"the stream ended after {len(seen)} status events")


async def _many_streams(url: str) -> list[list[int]]:
    limits = httpx.Limits(max_connections=STREAMS + 5)
    async with httpx.AsyncClient(timeout=WAIT_S, limits=limits) as client:
        streams = [_status_events(client, f"{url}/api/events", STATUS_EVENTS) for _ in range(STREAMS)]
        return await asyncio.wait_for(asyncio.gather(*streams), WAIT_S)


def test_fifty_streams_share_one_status_computation_per_interval(
    server: ServerHandle, job: CountingJob
) -> None:
    received = asyncio.run(_many_streams(server.url))
    assert all(len(events) == STATUS_EVENTS for events in received)
    # Every event any stream got was one computation, handed to all: the streams see the same
    # sequence of figures (each its own stretch of it: they opened at slightly different times).
    # One computation per stream would make 300 distinct figures; shared, there are as many as
    # intervals passed while the streams ran: 6, plus the few it took to open all 50 (fewer than
    # 50 even on a loaded machine: that would be 10 s to open them).
    distinct = {n for events in received for n in events}
    assert len(distinct) < STREAMS, sorted(distinct)
    hub = server.server.config.app.state.serve_context.hub  # type: ignore[attr-defined]
    assert job.calls == hub.status_computations
    assert job.calls <= len(distinct) + 2  # + the one computed as the last streams closed
    for events in received:
        assert events == sorted(events) and len(set(events)) == len(events)


def test_streams_past_the_cap_get_503(results_db: Path, job: CountingJob) -> None:
    app = create_app(results_db, status=job.status, max_streams=2)
    with start_in_thread(app, port=0) as handle:
        client = httpx.Client(timeout=WAIT_S)
        with (
            client.stream("GET", f"{handle.url}/api/events") as first,
            client.stream("GET", f"{handle.url}/api/events") as second,
        ):
            assert first.status_code == second.status_code == 200
            refused = client.get(f"{handle.url}/api/events")
            assert refused.status_code == 503
            assert "too many open event streams (2)" in refused.json()["detail"]
            assert refused.headers["retry-after"]
            assert client.get(f"{handle.url}/api/status").status_code == 200  # the API still answers
        # closed streams free their places
        _wait_open_streams(app, 0)
        with client.stream("GET", f"{handle.url}/api/events") as again:
            assert again.status_code == 200


def _wait_open_streams(app: object, count: int) -> None:
    hub = app.state.serve_context.hub  # type: ignore[attr-defined]
    deadline = time.monotonic() + WAIT_S
    while hub.open_streams != count:
        assert time.monotonic() < deadline, f"{hub.open_streams} streams still open"
        time.sleep(0.05)


def test_change_events_reach_every_stream(server: ServerHandle, results_db: Path) -> None:
    async def changes(client: httpx.AsyncClient, opened: asyncio.Event) -> list[str]:
        async with client.stream("GET", f"{server.url}/api/events") as response:
            opened.set()
            event = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "change":
                    return json.loads(line.removeprefix("data: "))["tables"]
        raise AssertionError("the stream ended")

    async def main() -> list[list[str]]:
        async with httpx.AsyncClient(timeout=WAIT_S, limits=httpx.Limits(max_connections=20)) as client:
            opened = [asyncio.Event() for _ in range(10)]
            tasks = [asyncio.create_task(changes(client, e)) for e in opened]
            await asyncio.gather(*(e.wait() for e in opened))
            await asyncio.to_thread(write, results_db, "INSERT INTO top_category VALUES ('toys', 3)")
            return await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)

    assert asyncio.run(main()) == [["top_category"]] * 10
