"""REST API and Server-Sent Events: result tables, job status with rates, live change notices.

Routes (all JSON unless noted):
- `GET /api/tables`: `{"tables": [{"name", "kind", "columns": [{"name", "type"}], "rows"}]}`
- `GET /api/tables/{name}?limit=1000&order_by=a,-b`: `{"name", "columns", "rows": [{col: value}], "total",
  "limit"}`; 404 for a name that is not a table or view of the results file, 400 for an unknown column.
- `GET /api/status`: the job status (see `status.py`) plus `attached`, `now`, `uptime_s`, per query
  `records_in_per_s`, `records_out_per_s` and `watermark_utc`, and `results` (row count per table).
- `GET /api/events` (text/event-stream): `event: change` with `{"tables": [...]}` when result tables
  changed (polled every 0.5 s), and `event: status` with the `/api/status` body every second.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from clickstream.serve.results import BadOrderByError, ChangeWatcher, ResultsDB, UnknownTableError
from clickstream.serve.status import JobStatusDict, RateTracker, watermark_seconds

POLL_INTERVAL_S = 0.5
STATUS_INTERVAL_S = 1.0
DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000


@dataclass
class ServeContext:
    """What the routes share: the results file, the job's status callable and the rate history."""

    results: ResultsDB
    status: Callable[[], JobStatusDict] | None = None
    rates: RateTracker = field(default_factory=RateTracker)
    # Set on shutdown so open SSE streams end at once instead of holding the server up.
    stopping: threading.Event = field(default_factory=threading.Event)
    poll_interval_s: float = POLL_INTERVAL_S

    def snapshot(self) -> dict[str, Any]:
        """The `/api/status` body."""
        out: dict[str, Any] = {
            "attached": self.status is not None,
            "now": time.time(),
            "queries": {},
            "sources": {},
        }
        if self.status is not None:
            try:
                out.update(_with_rates(self.status(), self.rates))
            except Exception as e:  # a failing status callable must not take the page down
                out["error"] = f"status() failed: {type(e).__name__}: {e}"
        try:
            out["results"] = self.results.row_counts()
        except Exception as e:
            out["results"], out["results_error"] = {}, f"{type(e).__name__}: {e}"
        return out


def _with_rates(status: JobStatusDict, rates: RateTracker) -> dict[str, Any]:
    per_query = rates.observe(status["queries"])
    queries = {
        name: {**q, **per_query[name], "watermark_utc": _utc(int(q["watermark"]))}
        for name, q in status["queries"].items()
    }
    started = float(status["started"])
    return {
        "started": started,
        "uptime_s": max(0.0, time.time() - started),
        "queries": queries,
        "sources": dict(status.get("sources", {})),
        # the demo's simulators: whether each still writes (the page says when input has ended)
        "simulations": dict(status.get("simulations", {})),
    }


def _utc(watermark_ms: int) -> str | None:
    seconds = watermark_seconds(watermark_ms)
    if seconds is None:
        return None
    if seconds == float("inf"):
        return "end of input"
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/tables")
    def list_tables() -> dict[str, Any]:
        return {"tables": [t.to_json() for t in ctx.results.tables()]}

    @router.get("/tables/{name}")
    def table_rows(
        name: str,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        order_by: str | None = Query(None, description="comma-separated columns, '-' prefix = descending"),
    ) -> dict[str, Any]:
        try:
            return ctx.results.rows(name, limit, order_by)
        except UnknownTableError:
            raise HTTPException(404, f"no result table named {name!r}") from None
        except BadOrderByError as e:
            raise HTTPException(400, str(e)) from None

    @router.get("/status")
    def status() -> dict[str, Any]:
        return ctx.snapshot()

    @router.get("/events")
    async def events() -> StreamingResponse:
        watcher = ChangeWatcher(ctx.results)
        # The baseline is taken before the response starts: the client fetches the tables once the
        # stream is open, so every later write is reported and none is missed in between.
        await asyncio.to_thread(watcher.poll)
        return StreamingResponse(
            _event_stream(ctx, watcher),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


async def _event_stream(ctx: ServeContext, watcher: ChangeWatcher) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    try:
        yield "retry: 2000\n\n"  # reconnect quickly if the server restarts
        next_status = loop.time()
        while not ctx.stopping.is_set():
            changed = await asyncio.to_thread(watcher.poll)
            if changed:
                yield _sse("change", {"tables": changed})
            if loop.time() >= next_status:
                yield _sse("status", await asyncio.to_thread(ctx.snapshot))
                next_status = loop.time() + STATUS_INTERVAL_S
            await asyncio.sleep(ctx.poll_interval_s)
    finally:
        watcher.close()


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"
