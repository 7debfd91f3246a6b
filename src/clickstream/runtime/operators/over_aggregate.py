"""OverAggregate on event time: rows wait until the watermark passes them, then leave in time
order with their aggregates over the frame that ends at them (RANGE: rows of the partition within
the interval before, peers included; ROWS: the n rows before). Emitted rows stay in the state only
as long as a future row's frame can reach them.

Which rows are late follows Flink, whose two kinds of OVER functions differ here:
- UNBOUNDED PRECEDING: a row behind the watermark when it arrives is late;
- a bounded frame (`RowTime{Range,Rows}BoundedPrecedingFunction`): a row is late only if its
  partition has already emitted a row at its time or later. A row behind the watermark whose
  partition has not got that far still counts and leaves at the next watermark.
Late rows are dropped and counted. For the bounded rule each row is judged by what its partition
had emitted just before it arrived (under the watermark just before it), so results do not depend
on how the input is cut into batches.

Ordered by a processing-time attribute, a row takes the job clock's time when it is processed and
nothing is late. ROWS frames (and RANGE UNBOUNDED, which Flink processes row by row) emit each row
at once; a bounded RANGE frame emits a millisecond's rows together once the clock has passed it
(Flink's timer at that time + 1). Flink does not fire pending processing-time timers at the end of
a bounded input, so neither do we: those rows are never emitted.

Functions follow Flink's accumulators: FIRST_VALUE and LAST_VALUE skip NULLs; AVG of an integer
type is an integer (the quotient truncated); in a RANGE frame, rows at the same time (peers) are
accumulated together before any of them is emitted, so LAG gives every peer the value the last of
them gets.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, quote, stamp
from clickstream.runtime.clock import Clock
from clickstream.runtime.operators.aggregates import wrapped_integer
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import OverAggregateNode, OverCall

_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT")


class OverAggregateOperator(BaseOperator):
    name = "OverAggregate"

    def __init__(self, node: OverAggregateNode, state: JobState, clock: Clock) -> None:
        super().__init__()
        self.node, self.state, self.clock = node, state, clock
        # processing time: ROWS frames emit each row as it comes, RANGE ones on the clock
        self.immediate = node.proctime and node.frame == "ROWS"
        self.timed = node.proctime and not self.immediate
        self.p = state.new_prefix("over")
        self.columns = [c.name for c in node.input.columns]
        self.partition_names = list(node.partition)
        self.partition = [quote(k) for k in node.partition]
        self._created = False
        self.emitted = 0

    def process(self, batch: pa.Table) -> list[pa.Table]:
        p, time = self.p, quote(self.node.time_column)
        cols = ", ".join(quote(c) for c in self.columns)
        now = self.clock.now_ms() if self.node.proctime else None
        rows = (
            f"SELECT {cols}, CAST({now} AS BIGINT) AS __t, {quote(SEQ)} AS __s FROM batch WHERE TRUE"
            if now is not None
            else f"SELECT {cols}, epoch_ms({time}) AS __t, {quote(SEQ)} AS __s FROM batch "
            f"WHERE {time} IS NOT NULL"
        )
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_wait AS {rows} LIMIT 0", batch=batch)
            self.state.execute(f"CREATE TABLE {p}_done AS {rows} LIMIT 0", batch=batch)
            keys = "".join(f"{k}, " for k in self.partition)
            self.state.execute(f"CREATE TABLE {p}_last AS SELECT {keys}__t FROM {p}_wait LIMIT 0")
            self._created = True
        self.metrics.records_in += batch.num_rows
        if now is not None:  # processing time: nothing is late
            self.state.execute(f"INSERT INTO {p}_wait {rows}", batch=batch)
            return self._release(now, self._input_watermark()) if self.immediate else []
        if self.node.preceding is None:
            late = f"{quote(WM)} <> {MIN_WATERMARK} AND epoch_ms({time}) <= {quote(WM)}"
            self.metrics.late_dropped += (
                self.state.scalar(f"SELECT count(*) FROM batch WHERE {late}", batch=batch) or 0
            )
            self.state.execute(f"INSERT INTO {p}_wait {rows} AND NOT ({late})", batch=batch)
            return []
        arrived = self.state.query(f"{rows} ORDER BY __s", batch=batch)
        marks = self.state.query(
            f"SELECT {quote(WM)} AS w FROM batch WHERE {time} IS NOT NULL ORDER BY {quote(SEQ)}", batch=batch
        )
        kept = arrived.filter(pc.invert(self._late_in_partition(arrived, marks.column("w"))))
        self.metrics.late_dropped += arrived.num_rows - kept.num_rows
        self.state.execute(f"INSERT INTO {p}_wait SELECT * FROM kept", kept=kept)
        return []

    def _late_in_partition(self, arrived: pa.Table, marks: pa.ChunkedArray) -> pa.Array:
        """Per arrived row (in arrival order): has its partition emitted a row at its time or later
        before it arrived? Emitted by then: the partition's rows emitted in earlier batches, and the
        waiting or earlier rows of this batch that the watermark before it had passed."""
        p, n = self.p, arrived.num_rows
        # The watermark before row i is nondecreasing; a row at time t counts as emitted from the
        # first row whose watermark has reached t on (never before the row after itself).
        before = np.maximum.accumulate(marks.to_numpy(zero_copy_only=False).astype(np.int64))
        times = arrived.column("__t").to_numpy(zero_copy_only=False).astype(np.int64)
        reached = np.searchsorted(before, times, side="left")
        own = np.maximum(reached, np.arange(1, n + 1))
        waiting = self.state.query(f"SELECT {self._keys_and('__t')} FROM {p}_wait")
        waiting_reached = np.searchsorted(before, waiting.column("__t").to_numpy(), side="left")
        events = pa.table(
            {
                **{k: arrived.column(k) for k in self.partition_names},
                "pos": pa.array(own, pa.int64()),
                "t": arrived.column("__t"),
                "i": pa.array(np.arange(n), pa.int64()),
            }
        )
        waits = waiting.append_column("pos", pa.array(waiting_reached, pa.int64()))
        keys = self._keys_and("")
        late = self.state.query(
            f"SELECT i, t <= max(e) OVER (PARTITION BY {keys or '1'} ORDER BY pos, kind "
            f"ROWS UNBOUNDED PRECEDING) AS late FROM ("
            f"SELECT {keys}-1 AS pos, 0 AS kind, __t AS e, NULL AS t, NULL AS i FROM {p}_last "
            f"UNION ALL SELECT {keys}pos, 0, __t, NULL, NULL FROM waits "
            f"UNION ALL SELECT {keys}pos, 0, t, NULL, NULL FROM events "
            f"UNION ALL SELECT {keys}i, 1, NULL, t, i FROM events) "
            "QUALIFY kind = 1 ORDER BY i",
            events=events,
            waits=waits,
        )
        return pc.fill_null(late.column("late"), False).combine_chunks()

    def _keys_and(self, column: str) -> str:
        """The partition keys, then `column`: a select list (`"k", __t`) or a prefix (`"k", `)."""
        return ", ".join([*self.partition, column]) if column else "".join(f"{k}, " for k in self.partition)

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        if self.node.proctime:
            return []  # event time does not move processing-time frames, nor does end of input
        return self._release(watermark, watermark)

    def on_processing_time(self, now_ms: int) -> list[pa.Table]:
        """A bounded RANGE frame on processing time: the rows of every millisecond before now."""
        return self._release(now_ms - 1, self._input_watermark())

    def _input_watermark(self) -> int:
        return min(self.input_watermarks, default=MIN_WATERMARK)

    def _release(self, upto: int, watermark: int) -> list[pa.Table]:
        """Emit the waiting rows at times up to `upto`, stamped with `watermark`."""
        if not self._created:
            return []
        p = self.p
        ready = self.state.scalar(f"SELECT count(*) FROM {p}_wait WHERE __t <= {upto}")
        if not ready:
            return []
        out = self.state.query(self._emit_sql(upto))
        self._note_last_emitted(upto)
        self.state.execute(f"INSERT INTO {p}_done SELECT * FROM {p}_wait WHERE __t <= {upto}")
        self.state.execute(f"DELETE FROM {p}_wait WHERE __t <= {upto}")
        self._expire()
        self.metrics.state_rows = sum(
            self.state.scalar(f"SELECT count(*) FROM {p}_{t}") or 0 for t in ("wait", "done")
        )
        out = stamp(out, self.emitted, watermark)
        self.emitted += out.num_rows
        self.metrics.records_out += out.num_rows
        return [out]

    def _frame(self) -> str:
        node = self.node
        start = "UNBOUNDED PRECEDING" if node.preceding is None else f"{node.preceding} PRECEDING"
        order = "__t" if node.frame == "RANGE" else "__t, __s"
        return f"OVER ({self._partition_by()}ORDER BY {order} {node.frame} BETWEEN {start} AND CURRENT ROW)"

    def _partition_by(self, *more: str) -> str:
        keys = [*self.partition, *more]
        return f"PARTITION BY {', '.join(keys)} " if keys else ""

    def _emit_sql(self, upto: int) -> str:
        """The rows at times up to `upto` with their values: the row-wise functions (LAG,
        ROW_NUMBER) in an inner query, over the partition in time and arrival order, the frame
        aggregates in the outer one, which keeps the new rows."""
        p = self.p
        inner, outer = [], []
        for i, call in enumerate(self.node.calls):
            if call.function in ("LAG", "ROW_NUMBER"):
                inner.append(f"{self._row_wise(call)} AS __v{i}")
                value = f"__v{i}"
                if self.node.frame == "RANGE" and call.function == "LAG":
                    # peers are accumulated together: each gets what the last of them gets
                    value = (
                        f"last_value(__v{i}) OVER ({self._partition_by('__t')}ORDER BY __s ROWS "
                        "BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
                    )
            else:
                value = self._aggregate(call)
            outer.append(f"{value} AS {quote(call.output.name)}")
        cols = ", ".join(quote(c) for c in self.columns)
        rows = (
            f"SELECT *, FALSE AS __new FROM {p}_done UNION ALL SELECT *, TRUE FROM {p}_wait "
            f"WHERE __t <= {upto}"
        )
        if inner:
            rows = f"SELECT *, {', '.join(inner)} FROM ({rows})"
        return (
            f"SELECT {cols}, {', '.join(quote(c.output.name) for c in self.node.calls)} FROM (SELECT "
            f"{cols}, {', '.join(outer)}, __new, __t, __s FROM ({rows})) WHERE __new ORDER BY __t, __s"
        )

    def _row_wise(self, call: OverCall) -> str:
        order = f"OVER ({self._partition_by()}ORDER BY __t, __s)"
        if call.function == "ROW_NUMBER":
            return f"row_number() {order}"
        default = f", {quote(call.default)}" if call.default else ""
        return f"lag({quote(call.argument or '')}, {call.offset}{default}) {order}"

    def _aggregate(self, call: OverCall) -> str:
        frame, duck_type = self._frame(), call.output.duck_type
        arg = "*" if call.argument is None else quote(call.argument)
        if call.function in ("FIRST_VALUE", "LAST_VALUE"):
            # the first/last non-NULL value in time and arrival order (Flink's accumulators)
            pick = "arg_min" if call.function == "FIRST_VALUE" else "arg_max"
            return f"{pick}({arg}, (__t, __s)) {frame}"
        if call.function == "AVG" and duck_type in _INTEGERS:
            return f"CAST(trunc(avg({arg}) {frame}) AS {duck_type})"
        if call.function == "AVG" and duck_type.startswith("DECIMAL"):  # as GROUP BY's AVG computes it
            return f"CAST((sum({arg}) {frame}) / nullif(count({arg}) {frame}, 0) AS {duck_type})"
        return wrapped_integer(f"{call.function.lower()}({arg}) {frame}", duck_type)

    def _note_last_emitted(self, watermark: int) -> None:
        """Per partition, the latest time emitted so far (the bounded frames' lateness)."""
        p, keys = self.p, self._keys_and("")
        group = f" GROUP BY {', '.join(self.partition)}" if self.partition else ""
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_emitted AS SELECT {keys}max(__t) AS __t FROM {p}_wait "
            f"WHERE __t <= {watermark}{group}"
        )
        same = " AND ".join(f"l.{k} IS NOT DISTINCT FROM e.{k}" for k in self.partition) or "TRUE"
        self.state.execute(f"DELETE FROM {p}_last l USING {p}_emitted e WHERE {same}")
        self.state.execute(f"INSERT INTO {p}_last SELECT * FROM {p}_emitted WHERE __t IS NOT NULL")

    def _expire(self) -> None:
        """Keep only what a later row's frame can still reach: a later row of a partition has a
        time after the partition's last emitted one. (LAG and ROW_NUMBER take no frame: theirs
        is unbounded.)"""
        node, p = self.node, self.p
        if node.preceding is None:
            return  # UNBOUNDED PRECEDING: every row stays in the frame
        if node.frame == "RANGE":
            same = " AND ".join(f"d.{k} IS NOT DISTINCT FROM l.{k}" for k in self.partition) or "TRUE"
            self.state.execute(
                f"DELETE FROM {p}_done d USING {p}_last l WHERE {same} AND d.__t < l.__t - {node.preceding}"
            )
            return
        self.state.execute(
            f"DELETE FROM {p}_done WHERE __s IN (SELECT __s FROM (SELECT __s, row_number() OVER "
            f"({self._partition_by()}ORDER BY __t DESC, __s DESC) AS __r FROM {p}_done) WHERE __r > "
            f"{node.preceding})"
        )
