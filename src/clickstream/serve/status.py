"""The shape of a running job's status, as the dashboard, the REST API and /metrics read it.

Whoever runs the engine hands `create_app` a `status` callable returning a `JobStatusDict`:

```
{
  "started": 1700000000.0,                 # epoch seconds when the job started
  "queries": {                             # one entry per INSERT, keyed by the job's name for it
    "insert-into_buy_cnt_per_hour": {
      "records_in": 1200,                  # rows that entered the query's first operator
      "records_out": 24,                   # rows the query handed to its sink
      "late_dropped": 3,                   # events dropped because their window had fired
      "malformed": 1,                      # source lines that could not be decoded
      "watermark": 1511740800000,          # epoch ms; -2**63 = no watermark yet, 2**63-1 = end of input
      "state_rows": 57,                    # optional: rows held in operator state
      "waiting": 1,                        # optional: sinks/lookups waiting for their database
      "errors": ["..."],                   # optional: recent error messages
    },
  },
  "sources": {"user_behavior": {"watermark": 1511740800000, "exhausted": False,   # free-form
                                 "lag": {"0": 1200, "1": 0}}},  # log sources: per partition
  "checkpoints": {"last_id": 12, "duration_ms": 41.0, "bytes": 81920,           # optional
                  "restored_from": 7},
}
```

`job_status(job)` builds that from an executor `Job` (anything with `.metrics()`). `RateTracker` turns
successive snapshots into records/s; the API adds those rates, it never asks the job for them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NotRequired, Protocol, TypedDict

NO_WATERMARK = -(2**63)
END_OF_INPUT_WATERMARK = 2**63 - 1
RATE_WINDOW_S = 10.0


class QueryStatus(TypedDict):
    records_in: int
    records_out: int
    late_dropped: int
    malformed: int
    watermark: int
    state_rows: NotRequired[int]
    lag: NotRequired[int]  # records in the source's log not read yet
    waiting: NotRequired[int]  # connectors of the query waiting for their database to come back
    errors: NotRequired[list[str]]


class JobStatusDict(TypedDict):
    started: float
    queries: dict[str, QueryStatus]
    sources: dict[str, dict[str, Any]]
    checkpoints: NotRequired[dict[str, Any]]
    # the demo's, per scenario: {"000": {"title", "dashboard": "seed_000", "bus", "finished": False,
    # "event_time": 1511740800000 (its queries' latest watermark, epoch ms; None before the first)}}
    simulations: NotRequired[dict[str, dict[str, Any]]]


StatusFn = Callable[[], JobStatusDict]


class _HasMetrics(Protocol):
    def metrics(self) -> Mapping[str, Mapping[str, int]]: ...


def job_status(job: _HasMetrics, started: float | None = None) -> StatusFn:
    """A `status` callable over an executor Job; safe to call from the server's threads.

    The job's counters are plain ints that the engine thread bumps, so reading them without a lock
    gives a slightly stale but consistent-enough snapshot for a dashboard.
    """
    started_s = time.time() if started is None else started

    def status() -> JobStatusDict:
        queries: dict[str, QueryStatus] = {}
        for name, m in job.metrics().items():
            query = QueryStatus(
                records_in=int(m.get("records_in", 0)),
                records_out=int(m.get("records_out", 0)),
                late_dropped=int(m.get("late_dropped", 0)),
                malformed=int(m.get("malformed", 0)),
                watermark=int(m.get("watermark", NO_WATERMARK)),
            )
            if "state_rows" in m:
                query["state_rows"] = int(m["state_rows"])
            if "lag" in m:
                query["lag"] = int(m["lag"])
            if "waiting" in m:
                query["waiting"] = int(m["waiting"])
            queries[name] = query
        out = JobStatusDict(started=started_s, queries=queries, sources=_sources_of(job))
        checkpoints = _checkpoints_of(job)
        if checkpoints:
            out["checkpoints"] = checkpoints
        return out

    return status


def _sources_of(job: object) -> dict[str, dict[str, Any]]:
    # Executor internals are read defensively: the status page must not break when they change.
    out: dict[str, dict[str, Any]] = {}
    for reader in getattr(job, "readers", {}).values():
        try:
            name = reader.scan.table.name
            out[name] = {"watermark": int(reader.watermark), "exhausted": bool(reader.exhausted())}
            per_partition = getattr(reader.source, "lag_per_partition", None)
            if per_partition is not None:
                out[name]["lag"] = {str(p): int(n) for p, n in per_partition().items()}
        except Exception:  # a source we cannot describe is left out, not fatal
            continue
    return out


def _checkpoints_of(job: object) -> dict[str, Any]:
    checkpointer = getattr(job, "checkpointer", None)
    if checkpointer is None:
        return {}
    status = getattr(job, "status", None)
    return {
        "last_id": int(checkpointer.last_id),
        "duration_ms": float(checkpointer.last_duration_ms),
        "bytes": int(checkpointer.last_bytes),
        "restored_from": getattr(status, "restored_from", None),
    }


def event_time(queries: Mapping[str, Mapping[str, Any]]) -> int | None:
    """How far a job has got in event time: its queries' latest watermark (epoch ms), None while
    none has one, and the end-of-input mark left out (it says nothing of the simulated time)."""
    marks = [int(q.get("watermark", NO_WATERMARK)) for q in queries.values()]
    known = [m for m in marks if NO_WATERMARK < m < END_OF_INPUT_WATERMARK]
    return max(known) if known else None


def watermark_seconds(watermark_ms: int) -> float | None:
    """Epoch seconds of a watermark; None when there is none yet, +inf at the end of bounded input."""
    if watermark_ms <= NO_WATERMARK:
        return None
    if watermark_ms >= END_OF_INPUT_WATERMARK:
        return float("inf")
    return watermark_ms / 1000.0


class RateTracker:
    """Records/s per query over the last `window_s` seconds, from the snapshots it has been shown."""

    def __init__(self, window_s: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._samples: deque[tuple[float, dict[str, tuple[int, int]]]] = deque()
        self._lock = threading.Lock()  # API requests and SSE streams observe from several threads

    def observe(self, queries: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
        """Add a snapshot; return {query: {"records_in_per_s", "records_out_per_s"}}."""
        now = self._clock()
        counts = {q: (int(m.get("records_in", 0)), int(m.get("records_out", 0))) for q, m in queries.items()}
        with self._lock:
            self._samples.append((now, counts))
            # Keep one sample older than the window so the rate always spans the whole window.
            while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
                self._samples.popleft()
            first_t, first = self._samples[0]
        elapsed = now - first_t
        return {q: _rates(first.get(q), c, elapsed) for q, c in counts.items()}


def _rates(before: tuple[int, int] | None, after: tuple[int, int], elapsed: float) -> dict[str, float]:
    if before is None or elapsed <= 0:
        return {"records_in_per_s": 0.0, "records_out_per_s": 0.0}
    # A restarted job resets its counters; a negative rate would be nonsense, so clamp to zero.
    return {
        "records_in_per_s": max(0.0, (after[0] - before[0]) / elapsed),
        "records_out_per_s": max(0.0, (after[1] - before[1]) / elapsed),
    }
