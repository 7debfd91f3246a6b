"""WindowAggregate: TUMBLE, HOP and CUMULATE aggregation on event time, by slices.

Rows are aggregated into slices (the window size for TUMBLE, gcd(size, slide) for HOP, the step for
CUMULATE); partial results are appended to a state table and merged when a window fires, i.e. when
the watermark passes its end. A row is late, dropped and counted, when the last window containing
it has fired, judged against the watermark just before that row, so results do not depend on how
the input is cut into batches. Late-but-not-too-late rows still count in the windows that are open.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

from clickstream.runtime.batch import MAX_WATERMARK, MIN_WATERMARK, SEQ, WM, quote
from clickstream.runtime.operators.aggregates import (
    DISTINCT_VALUE,
    accumulators,
    distinct_accumulators,
    final,
)
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.schema import window_time_sql
from clickstream.sql.plan import WindowAggregateNode


def _floor(value: str, unit: int) -> str:
    return f"({value} - ((({value}) % {unit}) + {unit}) % {unit})"


def _pyfloor(value: int, unit: int) -> int:
    return value - value % unit


class WindowAggregateOperator(BaseOperator):
    name = "WindowAggregate"

    def __init__(self, node: WindowAggregateNode, state: JobState, time_zone: str) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.time_zone = time_zone
        self.zone = ZoneInfo(time_zone) if node.time_is_ltz and time_zone != "UTC" else None
        spec = node.window
        self.kind, self.size, self.slide = spec.kind, spec.size_ms, spec.slide_ms
        # Windows with an offset are windows without one on times shifted back by it.
        self.offset = spec.offset_ms
        self.slice = self.size if self.kind == "TUMBLE" else math.gcd(self.size, self.slide)
        self.prefix = state.new_prefix("window")
        self.keys = [quote(k) for k in node.keys]
        # a DISTINCT aggregate is computed from its distinct values when the window fires
        self.accs = [
            a for i, call in enumerate(node.aggregates) if not call.distinct for a in accumulators(i, call)
        ]
        self.distinct = [(i, call) for i, call in enumerate(node.aggregates) if call.distinct]
        self.open_slices: set[int] = set()
        self.fired_upto = MIN_WATERMARK
        self.emitted = 0
        self._created = False
        self._rows_since_compaction = 0
        self.partials_appended = 0  # partial rows and distinct values put in the state

    # --- input ---------------------------------------------------------------------------------

    def process(self, batch: pa.Table) -> list[pa.Table]:
        time_column = self.node.input.column(self.node.window.time_column)
        t = window_time_sql(time_column, self.time_zone)
        wm = quote(WM)
        if time_column.is_ltz and self.zone is not None:
            shift = f"({t} - epoch_ms({quote(time_column.name)}))"
            wm = f"CASE WHEN {quote(WM)} = {MIN_WATERMARK} THEN {MIN_WATERMARK} ELSE {wm} + {shift} END"
        if self.offset:
            t = f"({t} - {self.offset})"
            shifted = f"({wm}) - {self.offset}"
            wm = f"CASE WHEN {quote(WM)} = {MIN_WATERMARK} THEN {MIN_WATERMARK} ELSE {shifted} END"
        slice_end = f"{_floor('__t', self.slice)} + {self.slice}"
        last_end = {
            "TUMBLE": slice_end,
            "HOP": f"{_floor('__t', self.slide)} + {self.size}",
            "CUMULATE": f"{_floor('__t', self.size)} + {self.size}",
        }[self.kind]
        first_end = {
            "TUMBLE": "__last",
            "HOP": f"__last - ((__last - __t - 1) // {self.slide}) * {self.slide}",
            "CUMULATE": "__slice",
        }[self.kind]
        step = self.slide
        # The first window end the row may still count in: windows that fired before the row
        # arrived (end - 1 <= its watermark) never see it, whatever the batch boundaries.
        min_end = (
            f"CASE WHEN __w = {MIN_WATERMARK} OR __e0 - 1 > __w THEN __e0 ELSE __e0 + "
            f"((__w + 2 - __e0 + {step - 1}) // {step}) * {step} END"
        )
        p = self.prefix
        names = (  # with the arrival order, for FIRST_VALUE, LAST_VALUE and LISTAGG
            self.keys
            + [quote(c.name) for c in self.node.input.columns if c.name not in self.node.keys]
            + [quote(SEQ)]
        )
        columns = ", ".join(names + self._row_extras(batch))
        kept = ", ".join(names + [f"{quote(n)}" for n in self._extra_names()])
        # only what the partials need: the time columns worked out on the way are not stored
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_rows AS SELECT {kept}, __slice, __min_end, "
            "__min_end > __last AS __late "
            f"FROM (SELECT *, {min_end} AS __min_end FROM (SELECT *, {first_end} AS __e0 FROM "
            f"(SELECT *, {slice_end} AS __slice, {last_end} AS __last FROM (SELECT {columns}, "
            f"{t} AS __t, {wm} AS __w FROM batch WHERE {quote(time_column.name)} IS NOT NULL))))",
            batch=batch,
        )
        late = self.state.scalar(f"SELECT count(*) FILTER (WHERE __late) FROM {p}_rows") or 0
        self.metrics.late_dropped += late
        self._append_partials()
        self.metrics.records_in += batch.num_rows
        return []

    def _row_extras(self, batch: pa.Table) -> list[str]:
        """More columns each row of a batch brings into `<p>_rows` (none here), as SQL ... AS name."""
        return []

    def _extra_names(self) -> list[str]:
        """The names of `_row_extras`' columns."""
        return []

    def _append_partials(self) -> None:
        p = self.prefix
        group = ", ".join(["__slice", "__min_end"] + self.keys)
        partials = "".join(f", {sql} AS {name}" for name, sql, _ in self.accs)
        select = f"SELECT {group}{partials} FROM {p}_rows WHERE NOT __late GROUP BY {group}"
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_acc AS {select} LIMIT 0")
            for i, call in self.distinct:
                self.state.execute(
                    f"CREATE TABLE {p}_d{i} AS SELECT {group}, "
                    f"{quote(call.argument)} AS {DISTINCT_VALUE} FROM {p}_rows LIMIT 0"
                )
            self._created = True
        appended = self.state.scalar(f"INSERT INTO {p}_acc {select}") or 0
        self._rows_since_compaction += appended
        for i, call in self.distinct:
            appended += (
                self.state.scalar(
                    f"INSERT INTO {p}_d{i} SELECT DISTINCT {group}, {quote(call.argument)} FROM "
                    f"{p}_rows WHERE NOT __late AND {quote(call.argument)} IS NOT NULL"
                )
                or 0
            )
        self.partials_appended += appended
        slices = self.state.query(f"SELECT DISTINCT __slice FROM {p}_rows WHERE NOT __late")
        self.open_slices.update(slices.column(0).to_pylist())

    # --- firing --------------------------------------------------------------------------------

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        wall = self._wall(watermark)
        if wall not in (MIN_WATERMARK, MAX_WATERMARK):
            wall -= self.offset
        if wall <= self.fired_upto or not self._created:
            self.fired_upto = max(self.fired_upto, wall)
            return []
        windows = self._windows_between(self.fired_upto, wall)
        self.fired_upto = wall
        out = [self._fire(windows, watermark)] if windows else []
        self._purge(wall)
        self._compact()
        self.metrics.records_out += sum(t.num_rows for t in out)
        return [t for t in out if t.num_rows]

    def _windows_between(self, fired_upto: int, wall: int) -> list[tuple[int, int]]:
        """The windows of the open slices that end in (fired_upto, wall], as (start, end)."""
        return sorted(
            {w for s in self.open_slices for w in self._windows_of(s) if fired_upto < w[1] - 1 <= wall}
        )

    def _wall(self, watermark: int) -> int:
        if watermark in (MIN_WATERMARK, MAX_WATERMARK) or self.zone is None:
            return watermark
        offset = self.zone.utcoffset(datetime.fromtimestamp(watermark / 1000, tz=UTC))
        return watermark + int(offset.total_seconds() * 1000)

    def _windows_of(self, slice_end: int) -> list[tuple[int, int]]:
        slice_start = slice_end - self.slice
        if self.kind == "TUMBLE":
            return [(slice_start, slice_end)]
        if self.kind == "HOP":
            windows, start = [], _pyfloor(slice_start, self.slide)
            while start + self.size >= slice_end:
                windows.append((start, start + self.size))
                start -= self.slide
            return windows
        start = _pyfloor(slice_start, self.size)
        return [(start, end) for end in range(slice_end, start + self.size + 1, self.slice)]

    def _last_end(self, slice_end: int) -> int:
        slice_start = slice_end - self.slice
        if self.kind == "TUMBLE":
            return slice_end
        if self.kind == "HOP":
            return _pyfloor(slice_start, self.slide) + self.size
        return _pyfloor(slice_start, self.size) + self.size

    def _fire(self, windows: list[tuple[int, int]], watermark: int) -> pa.Table:
        win = pa.table({"w_start": [w[0] for w in windows], "w_end": [w[1] for w in windows]})
        sql, joins = self._merged()
        values = []
        for i, call in enumerate(self.node.aggregates):
            source = f"d{i}" if call.distinct and joins else "m"
            values.append(f"{final(i, call, source)} AS {quote(call.output.name)}")
        return self._window_rows(values, f"({sql}) m{joins}", ("w_start", "w_end"), watermark, win=win)

    def _window_rows(
        self, aggregates: list[str], source: str, bounds: tuple[str, str], watermark: int, **tables: pa.Table
    ) -> pa.Table:
        """The fired windows' rows: keys, `aggregates`, the window columns from `m`'s `bounds`
        (start and end columns, in shifted epoch ms), numbered in window-end order."""
        start, end = (f"m.{b}" for b in bounds)
        values = [f"m.{k}" for k in self.keys] + aggregates
        start_column, end_column, time_column = (quote(c) for c in self.node.window_columns)
        values += [
            f"make_timestamp(({start} + {self.offset}) * 1000) AS {start_column}",
            f"make_timestamp(({end} + {self.offset}) * 1000) AS {end_column}",
            f"{self._window_time(f'{end} + {self.offset}')} AS {time_column}",
        ]
        order = ", ".join([end, start] + [f"m.{k}" for k in self.keys])
        result = self.state.query(
            f"SELECT {', '.join(values)}, {self.emitted} + row_number() OVER (ORDER BY {order}) "
            f"AS {quote(SEQ)}, CAST({watermark} AS BIGINT) AS {quote(WM)} FROM {source} "
            f"ORDER BY {order}",
            **tables,
        )
        self.emitted += result.num_rows
        return result

    def _merged(self) -> tuple[str, str]:
        """The accumulators of each window of `win` and key, merged from the slices' partials (a
        query `m`), and the joins that add each DISTINCT aggregate's (`d<i>`)."""
        p = self.prefix
        group = ", ".join(["w.w_start", "w.w_end"] + [f"a.{k}" for k in self.keys])
        merges = "".join(f", {merge} AS {name}" for name, _, merge in self.accs)
        sql = (
            f"SELECT {group}{merges} FROM win w JOIN {p}_acc a "
            f"ON a.__slice > w.w_start AND a.__slice <= w.w_end AND a.__min_end <= w.w_end "
            f"GROUP BY {group}"
        )
        joins = ""
        for i, call in self.distinct:
            distinct = ", ".join(distinct_accumulators(i, call, f"a.{DISTINCT_VALUE}"))
            joins += (
                f" LEFT JOIN (SELECT {group}, {distinct} FROM win w JOIN "
                f"{p}_d{i} a ON a.__slice > w.w_start AND a.__slice <= w.w_end AND "
                f"a.__min_end <= w.w_end GROUP BY "
                f"{group}) d{i} ON d{i}.w_start = m.w_start AND d{i}.w_end = m.w_end"
                + "".join(f" AND d{i}.{k} IS NOT DISTINCT FROM m.{k}" for k in self.keys)
            )
        return sql, joins

    def _window_time(self, end: str) -> str:
        wall = f"make_timestamp(({end} - 1) * 1000)"
        if self.node.time_is_ltz:
            return f"timezone('{self.time_zone}', {wall})"
        return wall

    def _purge(self, wall: int) -> None:
        done = [s for s in self.open_slices if self._last_end(s) - 1 <= wall]
        if not done:
            return
        p = self.prefix
        gone = pa.table({"s": pa.array(done, pa.int64())})
        self.state.execute(f"DELETE FROM {p}_acc WHERE __slice IN (SELECT s FROM gone)", gone=gone)
        for i, _ in self.distinct:
            self.state.execute(f"DELETE FROM {p}_d{i} WHERE __slice IN (SELECT s FROM gone)", gone=gone)
        self.open_slices.difference_update(done)

    def _compact(self) -> None:
        """Partials of many batches for one slice and key merge into one row."""
        if self._rows_since_compaction < 200_000:
            return
        p = self.prefix
        group = ", ".join(["__slice", "__min_end"] + self.keys)
        merges = "".join(f", {merge} AS {name}" for name, _, merge in self.accs)
        self.state.execute(
            f"CREATE OR REPLACE TABLE {p}_acc AS SELECT {group}{merges} FROM {p}_acc GROUP BY {group}"
        )
        for i, _ in self.distinct:
            self.state.execute(f"CREATE OR REPLACE TABLE {p}_d{i} AS SELECT DISTINCT * FROM {p}_d{i}")
        self._rows_since_compaction = 0
