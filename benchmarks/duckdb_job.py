"""The batch oracle: ``python -m benchmarks.duckdb_job EVENTS DIM_CSV OUT``.

Runs one DuckDB query per analysis over ``read_json`` of the events file and writes the result
rows of each (JSON) to ``OUT``, with the seconds each query took.

``--cumulate`` (first): also the tianchi workload's CUMULATE analysis (`workload.duckdb_cumulate_query`).

``python -m benchmarks.duckdb_job join CLICKS CHECKOUTS OUT``: the join workload's LEFT interval
join as one query over both files; ``OUT`` gets its summary row (`join_workload.SUMMARY_KEYS`).
"""

from __future__ import annotations

import json
import sys
import time

import duckdb

from benchmarks.join_workload import SUMMARY_KEYS, duckdb_query
from benchmarks.workload import duckdb_queries


def join(clicks: str, checkouts: str, out: str) -> int:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    started = time.monotonic()
    row = conn.execute(duckdb_query(clicks, checkouts)).fetchone()
    assert row is not None
    summary: dict[str, object] = {key: int(value or 0) for key, value in zip(SUMMARY_KEYS, row, strict=True)}
    summary["seconds"] = round(time.monotonic() - started, 3)
    with open(out, "w") as f:
        json.dump(summary, f)
    return 0


def main(argv: list[str]) -> int:
    cumulate = "--cumulate" in argv
    argv = [a for a in argv if a != "--cumulate"]
    if len(argv) == 5 and argv[1] == "join":
        return join(*argv[2:])
    if len(argv) != 4:
        print(f"usage: python -m benchmarks.duckdb_job EVENTS DIM_CSV OUT (got {argv[1:]})", file=sys.stderr)
        return 2
    _, events, dim_csv, out = argv
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    results: dict[str, dict[str, object]] = {}
    for name, sql in duckdb_queries(events, dim_csv, cumulate).items():
        started = time.monotonic()
        rows = conn.execute(sql).fetchall()
        results[name] = {"rows": [list(r) for r in rows], "seconds": round(time.monotonic() - started, 3)}
    with open(out, "w") as f:
        json.dump(results, f, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
