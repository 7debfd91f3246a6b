"""REST API and Server-Sent Events: result tables, job status with rates, live change notices.

Routes (all JSON unless noted):
- `GET /api/tables`: `{"tables": [{"name", "kind", "columns": [{"name", "type"}], "rows", "rows_exact"}]}`
- `GET /api/tables/{name}?limit=1000&order_by=a,-b`: `{"name", "columns", "rows": [{col: value}], "total",
  "total_exact", "limit"}`; 404 for a name that is not a table or view of the results file, 400 for an
  unknown column.
- `GET /api/status`: the job status (see `status.py`) plus `attached`, `now`, `uptime_s`, per query
  `records_in_per_s`, `records_out_per_s` and `watermark_utc`, per demo simulation `event_time_utc`
  (the simulated time its scenario's job has reached), and `results` (row count per table;
  tables over `results.COUNT_EXACT_MAX` rows are estimated and listed in `results_estimated`).
- `GET /api/events` (text/event-stream): `event: change` with `{"tables": [...]}` when result tables
  changed (polled every 0.5 s), and `event: status` with the `/api/status` body every second, from one
  producer for all streams (see `events.py`); 503 past `max_streams` open streams.

Every route is behind `access.py`'s checks (403 for a Host header that does not name this server, 401
without the token where one is required). A results file that cannot be read now (locked, a hot
journal, corrupt) answers 503 with a sentence saying why; the next request tries again. A server
without a results file (`clickstream run --serve` of a job that writes no SQLite results) lists no
tables.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from clickstream.serve.events import EventHub, StreamLimitError
from clickstream.serve.results import BadOrderByError, ResultsDB, ResultsUnavailable, UnknownTableError
from clickstream.serve.status import JobStatusDict, RateTracker, watermark_seconds

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000


@dataclass
class ServeContext:
    """What the routes share: the results file, the job's status callable and the rate history."""

    results: ResultsDB | None
    status: Callable[[], JobStatusDict] | None = None
    rates: RateTracker = field(default_factory=RateTracker)
    # Set on shutdown so open SSE streams end at once instead of holding the server up.
    stopping: threading.Event = field(default_factory=threading.Event)
    hub: EventHub = field(init=False)

    def __post_init__(self) -> None:
        self.hub = EventHub(self.results, self.snapshot, self.stopping.is_set)

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
        if self.results is None:
            out["results"] = {}
            return out
        try:
            out["results"] = self.results.row_counts()
            out["results_estimated"] = self.results.estimated_counts()
        except ResultsUnavailable as e:
            out["results"], out["results_error"] = {}, str(e)
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
        # and the simulated time each scenario's job has reached (its tab's header shows it)
        "simulations": {
            name: {**simulation, "event_time_utc": _utc(simulation.get("event_time"))}
            for name, simulation in status.get("simulations", {}).items()
        },
    }


def _utc(watermark_ms: int | None) -> str | None:
    seconds = None if watermark_ms is None else watermark_seconds(watermark_ms)
    if seconds is None:
        return None
    if seconds == float("inf"):
        return "end of input"
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/tables")
    def list_tables() -> dict[str, Any]:
        if ctx.results is None:
            return {"tables": []}
        return {"tables": [t.to_json() for t in ctx.results.tables()]}

    @router.get("/tables/{name}")
    def table_rows(
        name: str,
        limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        order_by: str | None = Query(None, description="comma-separated columns, '-' prefix = descending"),
    ) -> dict[str, Any]:
        if ctx.results is None:
            raise HTTPException(404, "this server has no results file (the job writes no SQLite results)")
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
        try:
            queue = await ctx.hub.open()
        except StreamLimitError as e:
            raise HTTPException(503, str(e), headers={"Retry-After": "10"}) from None
        return StreamingResponse(
            ctx.hub.stream(queue),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router
