"""The tianchi workload's analyses on Pathway, in Pathway's venv:
``python -m benchmarks.pathway_job EVENTS DIM_CSV EXPECTED_EVENTS OUT [--static] [--collect]``.

Pathway runs in its own venv (`benchmarks/pathway-venv.sh`); this module imports only the
standard library and Pathway. The events file is read with ``pw.io.jsonlines.read`` in
**streaming** mode (Pathway's default: it commits what it has read every
``autocommit_duration_ms``, 1,500 ms by default, and the dataflow updates its results commit by
commit). Streaming mode never ends by itself (it waits for the file to grow), so this job
watches the count of rows read and, once all ``EXPECTED_EVENTS`` are in and every result
table has been computed through the commit that completed the input (`_probe`), writes its
report and exits.
``--static`` reads the file in one commit instead (Pathway's static mode; ``pw.run`` returns).

The same analyses as the SQL of `workload.py` (seed 000's three, plus the cumulative UV as a
CUMULATE window), written with Pathway's table API, each into ``pw.io.null`` (or, with ``--collect``,
kept by key and written into ``OUT`` at the end, for the check):

* hourly buys: ``windowby`` a one-hour ``pw.temporal.tumbling`` window on ts, ``count()``;
* cumulative UV per date: ``groupby(date_str)`` with ``max(time_str)`` and
  ``count_distinct(user_id)`` (the seed's unbounded GROUP BY);
* top categories: ``join_left`` of the buys with the category dimension (a static table from
  the same csv), ``groupby(category_name).reduce(count())``;
* UV per 10-minute step of each day (Flink's ``CUMULATE(ts, 10 min, 1 day)`` with
  ``COUNT(DISTINCT user_id)``): Pathway has no cumulative window, so the equivalent is computed in
  three incremental steps: each (day, user)'s first 10-minute step (``min``), the new users per
  (day, step), and for every step from the day's first non-empty one the sum of the new users
  up to it (each (day, step, n) row flattened to the steps at and after it: at most 144 per day).
  It gives exactly the windows Flink fires and their values.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import threading
import time
from functools import partial

_STARTED = time.monotonic()

TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
STEPS_PER_DAY = 144


def _tables(pw, events: str, dim_csv: str, static: bool):  # type: ignore[no-untyped-def]
    """(input table, {name: result table})."""
    import datetime

    class Event(pw.Schema):
        user_id: int
        item_id: int
        category_id: int
        behavior: str
        ts: str

    class Category(pw.Schema):
        sub_category_id: int
        parent_category_name: str

    raw = pw.io.jsonlines.read(events, schema=Event, mode="static" if static else "streaming")
    t = raw.with_columns(ts=pw.this.ts.dt.strptime(TS_FORMAT))
    buys = t.filter(pw.this.behavior == "buy")

    hourly = buys.windowby(
        pw.this.ts, window=pw.temporal.tumbling(duration=datetime.timedelta(hours=1))
    ).reduce(hour_of_day=pw.this._pw_window_start.dt.hour(), buy_cnt=pw.reducers.count())

    stamped = t.select(
        pw.this.user_id,
        date_str=pw.this.ts.dt.strftime("%Y-%m-%d"),
        time_str=pw.this.ts.dt.strftime("%H:%M").str.slice(0, 4) + "0",
        step=(pw.this.ts.dt.hour() * 6 + pw.this.ts.dt.minute() // 10),
    )
    uv = stamped.groupby(pw.this.date_str).reduce(
        pw.this.date_str,
        time_str=pw.reducers.max(pw.this.time_str),
        uv=pw.reducers.count_distinct(pw.this.user_id),
    )

    with open(dim_csv, newline="") as f:
        rows = [(int(sub), name) for sub, name in csv.reader(f)]
    dim = pw.debug.table_from_rows(Category, rows)
    top = (
        buys.join_left(dim, pw.left.category_id == pw.right.sub_category_id)
        .select(category_name=pw.right.parent_category_name)
        .groupby(pw.this.category_name)
        .reduce(pw.this.category_name, buy_cnt=pw.reducers.count())
    )

    firsts = stamped.groupby(pw.this.date_str, pw.this.user_id).reduce(
        pw.this.date_str, first=pw.reducers.min(pw.this.step)
    )
    new_users = firsts.groupby(pw.this.date_str, pw.this.first).reduce(
        pw.this.date_str, pw.this.first, n=pw.reducers.count()
    )
    steps = new_users.select(
        pw.this.date_str,
        pw.this.n,
        step=pw.apply_with_type(
            lambda first: tuple(range(first, STEPS_PER_DAY)), tuple[int, ...], pw.this.first
        ),
    ).flatten(pw.this.step)
    uv_steps = steps.groupby(pw.this.date_str, pw.this.step).reduce(
        pw.this.date_str, pw.this.step, uv=pw.reducers.sum(pw.this.n)
    )
    results = {"buy_cnt_per_hour": hourly, "cumulative_uv": uv, "top_category": top, "uv_per_10min": uv_steps}
    return raw, results


class _Finish:
    """Streaming mode's end: every event read, and every result table closed past that commit."""

    def __init__(self, expected: int, sinks: list[str], report) -> None:  # type: ignore[no-untyped-def]
        self.expected = expected
        self.closed = dict.fromkeys(sinks, -1)
        self.complete_at: int | None = None
        self.report = report
        self.lock = threading.Lock()

    def on_count(self, key, row, time, is_addition) -> None:  # type: ignore[no-untyped-def]
        if is_addition and row["n"] >= self.expected:
            with self.lock:
                self.complete_at = time
            self._maybe_done()

    def on_time_end(self, sink: str, time: int) -> None:
        with self.lock:
            self.closed[sink] = max(self.closed[sink], time)
        self._maybe_done()

    def _maybe_done(self) -> None:
        with self.lock:
            done = self.complete_at is not None and all(t >= self.complete_at for t in self.closed.values())
        if done:
            self.report()
            sys.stdout.flush()
            os._exit(0)  # streaming mode would otherwise wait for the file to grow, forever


def _probe(pw, count, table):  # type: ignore[no-untyped-def]
    """A one-row table that changes at every commit (with the input's count) and is computed from
    `table` too: a subscription to `table` itself is told nothing at a commit that did not change
    it (or ever, if it stays empty), but a join's time closes only once both its inputs' have."""
    rows = table.reduce(rows=pw.reducers.count())
    return count.join_left(rows, id=pw.left.id).select(pw.left.n, rows=pw.right.rows)


def _apply(rows, key, row, time, is_addition) -> None:  # type: ignore[no-untyped-def]
    if is_addition:
        rows[key] = row
    elif rows.get(key) == row:
        del rows[key]


def main(argv: list[str]) -> int:
    static = "--static" in argv
    collect = "--collect" in argv
    argv = [a for a in argv if a not in ("--static", "--collect")]
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    _, events, dim_csv, expected, out = argv
    import pathway as pw

    imported = time.monotonic()
    raw, results = _tables(pw, events, dim_csv, static)

    collected: dict[str, dict[object, dict[str, object]]] = {name: {} for name in results}

    def report() -> None:
        finished = time.monotonic()
        summary: dict[str, object] = {
            "pathway": pw.__version__,
            "mode": "static" if static else "streaming",
            "threads": os.environ.get("PATHWAY_THREADS", "1"),
            "import_s": round(imported - _STARTED, 3),
            "run_s": round(finished - imported, 3),
        }
        if collect:
            summary["results"] = {name: list(rows.values()) for name, rows in collected.items()}
        with open(out, "w") as f:
            json.dump(summary, f)

    for name, table in results.items():
        if collect:  # the final rows, kept by key as the changes come (a check, not the measured run)
            pw.io.subscribe(table, on_change=partial(_apply, collected[name]))
        else:
            pw.io.null.write(table)
    if static:
        pw.run(monitoring_level=pw.MonitoringLevel.NONE)
        report()
        return 0
    finish = _Finish(int(expected), list(results), report)
    count = raw.reduce(n=pw.reducers.count())
    pw.io.subscribe(count, on_change=finish.on_count)
    for name, table in results.items():
        probe = _probe(pw, count, table)
        pw.io.subscribe(
            probe, on_change=lambda *a, **k: None, on_time_end=lambda t, n=name: finish.on_time_end(n, t)
        )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    return 1  # not reached: the input is complete before streaming mode would end


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
