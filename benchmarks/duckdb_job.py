"""The batch oracle: ``python -m benchmarks.duckdb_job EVENTS DIM_CSV OUT``.

Runs one DuckDB query per analysis over ``read_json`` of the events file and writes the result
rows of each (JSON) to ``OUT``, with the seconds each query took.
"""

from __future__ import annotations

import json
import sys
import time

import duckdb

from benchmarks.workload import duckdb_queries


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(f"usage: python -m benchmarks.duckdb_job EVENTS DIM_CSV OUT (got {argv[1:]})", file=sys.stderr)
        return 2
    _, events, dim_csv, out = argv
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    results: dict[str, dict[str, object]] = {}
    for name, sql in duckdb_queries(events, dim_csv).items():
        started = time.monotonic()
        rows = conn.execute(sql).fetchall()
        results[name] = {"rows": [list(r) for r in rows], "seconds": round(time.monotonic() - started, 3)}
    with open(out, "w") as f:
        json.dump(results, f, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
