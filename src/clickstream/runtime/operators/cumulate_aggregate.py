"""WindowAggregate for CUMULATE windows: each slice is merged once into its window's running
accumulator, as Flink's cumulative slice assigner merges a slice into the window's first slice.

Rows are assigned to slices (the step) and judged late as in `WindowAggregateOperator`, and their
partials wait in `<p>_acc` (and their distinct values in `<p>_d<i>`). When windows fire, each
waiting partial goes into the first firing window it counts in (its bucket: the first end at or
after its `__min_end`), every firing window of a key is its running accumulator (`<p>_cum`) merged
with the buckets up to its end, and the last of them becomes the new running accumulator. A
DISTINCT aggregate keeps the values the window has seen (`<p>_cumd<i>`): a value counts in the
bucket where it is first seen, and only new values reach the running accumulator.

So a firing costs the rows that arrived since the last one plus the keys it emits (Flink emits
every key of the window at each step), instead of every slice of the window so far: at one-day
windows with 10-minute steps that is 1 merge of each slice instead of up to 144.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import quote
from clickstream.runtime.operators.aggregates import DISTINCT_VALUE, accumulators, final
from clickstream.runtime.operators.window_aggregate import WindowAggregateOperator, _floor, _pyfloor
from clickstream.runtime.state import JobState
from clickstream.sql.plan import WindowAggregateNode


def supports(node: WindowAggregateNode) -> bool:
    """Every CUMULATE window (the planner refuses DISTINCT aggregates that need arrival order)."""
    return node.window.kind == "CUMULATE"


class CumulateWindowAggregateOperator(WindowAggregateOperator):
    name = "WindowAggregate"

    def __init__(self, node: WindowAggregateNode, state: JobState, time_zone: str) -> None:
        super().__init__(node, state, time_zone)
        self._running_created = False  # `<p>_cum`, made from the first firing's accumulators
        # state rows the firings read: waiting partials and values (each once) and running
        # accumulators (one per key and window start fired), for tests that keep this linear
        self.state_rows_read = 0

    # --- which windows fire ----------------------------------------------------------------------

    def _windows_between(self, fired_upto: int, wall: int) -> list[tuple[int, int]]:
        """Every step end in (fired_upto, wall] of each window start with an open slice: one pass
        over the starts, not over each slice's windows."""
        windows = []
        for start in {_pyfloor(s - self.slice, self.size) for s in self.open_slices}:
            first = max(start + self.slice, _pyfloor(fired_upto + 1, self.slice) + self.slice)
            last = min(start + self.size, _pyfloor(wall + 1, self.slice))
            windows += [(start, end) for end in range(first, last + 1, self.slice)]
        return sorted(windows, key=lambda w: (w[1], w[0]))

    # --- firing ----------------------------------------------------------------------------------

    def _fire(self, windows: list[tuple[int, int]], watermark: int) -> pa.Table:
        fired = pa.table({"w_start": [w[0] for w in windows], "w_end": [w[1] for w in windows]})
        p = self.prefix
        spans = _spans(windows)
        self._bucket_partials(spans)
        self._bucket_distinct_values(spans)
        self._run_accumulators(fired)
        result = self._emit(watermark)
        self._keep_running_accumulators(fired)
        self.state.execute(f"DROP TABLE {p}_running")
        return result

    def _window_start(self, slice_end: str) -> str:
        return _floor(f"({slice_end} - {self.slice})", self.size)

    def _bucketed(self, table: str, more: str = "") -> str:
        """The rows of `table` whose first window is among those firing now (`spans`), with that
        window's end as `__b` (the firing ends of a start are consecutive steps: a hash join, not
        an ASOF join, finds it)."""
        return (
            f"(SELECT t.*, greatest(t.__min_end, s.first_end) AS __b FROM (SELECT *, "
            f"{self._window_start('__slice')} AS __ws{more} FROM {table}) t JOIN spans s "
            "ON t.__ws = s.w_start AND t.__min_end <= s.last_end)"
        )

    def _bucket_partials(self, spans: pa.Table) -> None:
        """`<p>_parts`: the waiting partials merged per window start, key and bucket; those
        bucketed leave `<p>_acc`."""
        p, keys = self.prefix, self._key_list()
        merges = "".join(f", {merge} AS {name}" for name, merge in self._merges("__order", distinct=False))
        # Flink merges a row that came late for its slice straight into the window's accumulator:
        # its text goes before the slices still open (LISTAGG's order)
        order = f"greatest(__slice, __min_end - {self.slice})"
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_parts AS SELECT __ws, {keys}__b{merges} "
            f"FROM {self._bucketed(f'{p}_acc', f', {order} AS __order')} GROUP BY __ws, {keys}__b",
            spans=spans,
        )
        self._drop_bucketed(f"{p}_acc", spans)

    def _bucket_distinct_values(self, spans: pa.Table) -> None:
        """`<p>_new<i>`: each waiting distinct value the window has not seen, with the first bucket
        it is in; they join the window's seen values, and the bucketed ones leave `<p>_d<i>`."""
        p, keys = self.prefix, self._key_list()
        value = DISTINCT_VALUE
        for i, _ in self.distinct:
            self.state.execute(
                f"CREATE OR REPLACE TEMP TABLE {p}_new{i} AS SELECT b.* FROM (SELECT __ws, {keys}"
                f"{value}, min(__b) AS __b FROM {self._bucketed(f'{p}_d{i}')} "
                f"GROUP BY __ws, {keys}{value}) b "
                f"ANTI JOIN {p}_cumd{i} c ON c.__ws = b.__ws AND c.{value} = b.{value}"
                + self._same_keys("c", "b"),
                spans=spans,
            )
            self.state.execute(f"INSERT INTO {p}_cumd{i} SELECT * EXCLUDE (__b) FROM {p}_new{i}")
            self._drop_bucketed(f"{p}_d{i}", spans)

    def _drop_bucketed(self, table: str, spans: pa.Table) -> None:
        self.state_rows_read += (
            self.state.scalar(
                f"DELETE FROM {table} USING spans s WHERE s.w_start = "
                f"{self._window_start(f'{table}.__slice')} AND {table}.__min_end <= s.last_end",
                spans=spans,
            )
            or 0
        )

    def _run_accumulators(self, fired: pa.Table) -> None:
        """`<p>_running`: per window start, key and firing end, the accumulators over the window
        so far: the running accumulator (as the start's bucket) merged with the buckets up to
        the end, by a running window frame over the ends."""
        p, keys = self.prefix, self._key_list()
        parts = [f"SELECT * FROM {p}_parts"]
        for i, call in self.distinct:
            partials = ", ".join(f"{sql} AS {name}" for name, sql, _ in accumulators(i, call, DISTINCT_VALUE))
            parts.append(f"SELECT __ws, {keys}__b, {partials} FROM {p}_new{i} GROUP BY __ws, {keys}__b")
        starts = "(SELECT DISTINCT w_start FROM fired)"
        if self._running_created:
            parts.append(f"SELECT *, __ws AS __b FROM {p}_cum WHERE __ws IN {starts}")
        merges = ", ".join(f"{merge} AS {name}" for name, merge in self._merges())
        buckets = (
            f"SELECT __ws, {keys}__b, {merges} FROM ({' UNION ALL BY NAME '.join(parts)}) "
            f"GROUP BY __ws, {keys}__b"
        )
        # every firing end from the key's first bucket on, with the bucket merged at that end if any
        grid = (
            f"SELECT k.__ws, {self._key_list('k')}f.w_end AS __b FROM (SELECT __ws, {keys}"
            f"min(__b) AS __first FROM buckets GROUP BY __ws, {keys}) k JOIN fired f ON "
            f"f.w_start = k.__ws AND f.w_end >= k.__first"
        )
        framed = ", ".join(f"{merge} OVER w AS {name}" for name, merge in self._merges("__b"))
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_running AS WITH buckets AS ({buckets}) "
            f"SELECT __ws, {keys}__b, {framed} FROM (SELECT g.*, b.* EXCLUDE (__ws, {keys}__b) "
            f"FROM ({grid}) g LEFT JOIN buckets b ON b.__ws = g.__ws AND b.__b = g.__b"
            + self._same_keys("b", "g")
            + f" UNION ALL BY NAME SELECT * FROM buckets WHERE __b = __ws) "
            f"WINDOW w AS (PARTITION BY __ws, {keys}ORDER BY __b ROWS UNBOUNDED PRECEDING)",
            fired=fired,
        )

    def _emit(self, watermark: int) -> pa.Table:
        calls = enumerate(self.node.aggregates)
        values = [f"{final(i, call, 'm')} AS {quote(call.output.name)}" for i, call in calls]
        source = f"(SELECT * FROM {self.prefix}_running WHERE __b > __ws) m"  # not the running accumulators
        return self._window_rows(values, source, ("__ws", "__b"), watermark)

    def _keep_running_accumulators(self, fired: pa.Table) -> None:
        """Each key's accumulators at the last firing end become its running accumulator."""
        p = self.prefix
        if not self._running_created:
            self.state.execute(f"CREATE TABLE {p}_cum AS SELECT * EXCLUDE (__b) FROM {p}_running LIMIT 0")
            self._running_created = True
        starts = "(SELECT DISTINCT w_start FROM fired)"
        read = self.state.scalar(f"DELETE FROM {p}_cum WHERE __ws IN {starts}", fired=fired)
        self.state_rows_read += read or 0
        self.state.execute(
            f"INSERT INTO {p}_cum BY NAME SELECT * EXCLUDE (__b) FROM {p}_running "
            f"QUALIFY row_number() OVER (PARTITION BY __ws, {self._key_list()}ORDER BY __b DESC) = 1"
        )

    # --- state -----------------------------------------------------------------------------------

    def _append_partials(self) -> None:
        first = not self._created
        super()._append_partials()
        if first:  # the values each window has seen, per DISTINCT aggregate
            for i, _ in self.distinct:
                self.state.execute(
                    f"CREATE TABLE {self.prefix}_cumd{i} AS SELECT __slice AS __ws, "
                    f"{self._key_list()}{DISTINCT_VALUE} FROM {self.prefix}_d{i} LIMIT 0"
                )

    def _purge(self, wall: int) -> None:
        super()._purge(wall)
        if not self._running_created:
            return
        done = f"__ws + {self.size} - 1 <= {wall}"
        self.state.execute(f"DELETE FROM {self.prefix}_cum WHERE {done}")
        for i, _ in self.distinct:
            self.state.execute(f"DELETE FROM {self.prefix}_cumd{i} WHERE {done}")

    # --- helpers ---------------------------------------------------------------------------------

    def _merges(self, order: str | None = None, distinct: bool = True) -> list[tuple[str, str]]:
        """(accumulator column, merge SQL) of every aggregate (DISTINCT ones too, if `distinct`):
        texts (LISTAGG) are joined by `order` first, as Flink joins a slice's after the window's."""
        return [
            (name, merge)
            for i, call in enumerate(self.node.aggregates)
            if distinct or not call.distinct
            for name, _, merge in accumulators(i, call, merge_order=order)
        ]

    def _key_list(self, table: str = "") -> str:
        """The group keys as a select-list prefix ("k1, k2, "), qualified by `table` if given."""
        prefix = f"{table}." if table else ""
        return "".join(f"{prefix}{k}, " for k in self.keys)

    def _same_keys(self, a: str, b: str) -> str:
        return "".join(f" AND {a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in self.keys)


def _spans(windows: list[tuple[int, int]]) -> pa.Table:
    """The first and last end firing now of each window start."""
    ends: dict[int, list[int]] = {}
    for start, end in windows:
        ends.setdefault(start, []).append(end)
    return pa.table(
        {
            "w_start": list(ends),
            "first_end": [min(e) for e in ends.values()],
            "last_end": [max(e) for e in ends.values()],
        }
    )
