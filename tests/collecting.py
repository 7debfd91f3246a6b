"""Collect a query's changes from an unbounded source until the test has what it waits for.

A fixed `collect(timeout_s=...)` is a guess at how long a job needs: too short on a busy
machine (the test fails), too long everywhere else (it waits for nothing). Stopping the job once
enough rows are in, with a deadline far beyond that, is neither."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pyarrow as pa

from clickstream.connectors.base import OP_COLUMN, OP_SHORT
from clickstream.engine import Engine
from clickstream.runtime.executor import Job

DEADLINE_S = 90.0


def collect_until(
    engine: Engine,
    query: str,
    enough: Callable[[list[tuple[str, tuple]], Job], bool],
    deadline_s: float = DEADLINE_S,
) -> list[tuple[str, tuple]]:
    """The changelog of `query`, `[("+I", row), ...]`, as `Engine.collect` gives it, the job
    stopped once `enough(changes, job)` is true (asked every 50 ms, so it may look at more than the
    changes), or at `deadline_s`."""
    changes: list[tuple[str, tuple]] = []
    done = threading.Event()

    def keep(batch: pa.Table) -> None:
        kinds = batch.column(OP_COLUMN).to_pylist()
        rows = batch.drop_columns([OP_COLUMN]).to_pylist()
        changes.extend((OP_SHORT[k], tuple(r.values())) for k, r in zip(kinds, rows, strict=True))

    def stop_when_enough() -> None:
        while not done.wait(0.05):
            job = engine.current_job
            if job is not None and enough(changes, job):
                job.stop()
                return

    watcher = threading.Thread(target=stop_when_enough, daemon=True)
    watcher.start()
    try:
        engine.collect(query, on_rows=keep, timeout_s=deadline_s)
    finally:
        done.set()
        watcher.join()
    return changes
