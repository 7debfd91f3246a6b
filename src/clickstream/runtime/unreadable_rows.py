"""Rows a source reader cannot place in the stream: a computed column that fails on them (an
epoch far out of range overflows `TO_TIMESTAMP_LTZ`), or a rowtime outside Flink's TIMESTAMP
range (years 0001 to 9999 here, see `connectors.formats`). They go to the dead letters; the
batch's other rows go on, so one such record cannot stop the job at every restart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def query_rows(
    run: Callable[[pa.Table], pa.Table], batch: pa.Table
) -> tuple[pa.Table, np.ndarray | None, list[str]]:
    """`run(batch)`; if it fails, the rows it fails on are found by halving the batch and left
    out. Returns the result for the rows kept, which rows were kept (None: all) and, per row
    left out, DuckDB's reason."""
    try:
        return run(batch), None, []
    except duckdb.Error:
        pass
    kept = np.ones(batch.num_rows, dtype=bool)
    reasons: list[str] = []
    parts = [run(batch.slice(0, 0))]  # an empty part: the result's columns even if no row is kept
    _halve(run, batch, 0, kept, reasons, parts)
    return pa.concat_tables(parts), kept, reasons


def _halve(
    run: Callable[[pa.Table], pa.Table],
    batch: pa.Table,
    start: int,
    kept: np.ndarray,
    reasons: list[str],
    parts: list[pa.Table],
) -> None:
    try:
        parts.append(run(batch))
        return
    except duckdb.Error as error:
        if batch.num_rows == 1:
            kept[start] = False
            reasons.append(str(error))
            return
    half = batch.num_rows // 2
    _halve(run, batch.slice(0, half), start, kept, reasons, parts)
    _halve(run, batch.slice(half), start + half, kept, reasons, parts)


_FIRST, _LAST = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)


def outside_time_range(times: pa.ChunkedArray) -> pa.ChunkedArray:
    """True for the times outside years 0001 to 9999 (False for NULL)."""
    zone = times.type.tz
    low = pa.scalar(_FIRST.replace(tzinfo=dt.UTC) if zone else _FIRST, times.type)
    high = pa.scalar(_LAST.replace(tzinfo=dt.UTC) if zone else _LAST, times.type)
    outside = pc.or_(pc.less(times, low), pc.greater(times, high))
    return pc.fill_null(outside, False)
