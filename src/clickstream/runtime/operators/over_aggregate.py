"""OverAggregate on event time: rows wait until the watermark passes them, then leave in time
order with their aggregates over the frame that ends at them (RANGE: rows of the partition within
the interval before, peers included; ROWS: the n rows before). Rows behind the watermark when they
arrive are late: dropped and counted, as Flink does. Emitted rows stay in the state only as long as
a future row's frame can reach them.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, quote, stamp
from clickstream.runtime.operators.aggregates import wrapped_integer
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import OverAggregateNode


class OverAggregateOperator(BaseOperator):
    name = "OverAggregate"

    def __init__(self, node: OverAggregateNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("over")
        self.columns = [c.name for c in node.input.columns]
        self._created = False
        self.emitted = 0

    def process(self, batch: pa.Table) -> list[pa.Table]:
        p, time = self.p, quote(self.node.time_column)
        cols = ", ".join(quote(c) for c in self.columns)
        rows = (
            f"SELECT {cols}, epoch_ms({time}) AS __t, {quote(SEQ)} AS __s FROM batch WHERE {time} IS NOT NULL"
        )
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_wait AS {rows} LIMIT 0", batch=batch)
            self.state.execute(f"CREATE TABLE {p}_done AS {rows} LIMIT 0", batch=batch)
            self._created = True
        late = f"{quote(WM)} <> {MIN_WATERMARK} AND epoch_ms({time}) <= {quote(WM)}"
        self.metrics.late_dropped += (
            self.state.scalar(f"SELECT count(*) FROM batch WHERE {late}", batch=batch) or 0
        )
        self.state.execute(f"INSERT INTO {p}_wait {rows} AND NOT ({late})", batch=batch)
        self.metrics.records_in += batch.num_rows
        return []

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        if not self._created:
            return []
        p = self.p
        ready = self.state.scalar(f"SELECT count(*) FROM {p}_wait WHERE __t <= {watermark}")
        if not ready:
            return []
        out = self.state.query(self._emit_sql(watermark))
        self.state.execute(f"INSERT INTO {p}_done SELECT * FROM {p}_wait WHERE __t <= {watermark}")
        self.state.execute(f"DELETE FROM {p}_wait WHERE __t <= {watermark}")
        self._expire(watermark)
        self.metrics.state_rows = sum(
            self.state.scalar(f"SELECT count(*) FROM {p}_{t}") or 0 for t in ("wait", "done")
        )
        out = stamp(out, self.emitted, watermark)
        self.emitted += out.num_rows
        self.metrics.records_out += out.num_rows
        return [out]

    def _frame(self) -> str:
        node = self.node
        partition = f"PARTITION BY {', '.join(quote(k) for k in node.partition)} " if node.partition else ""
        if node.frame == "RANGE":
            start = "UNBOUNDED PRECEDING" if node.preceding is None else f"{node.preceding} PRECEDING"
            return f"OVER ({partition}ORDER BY __t RANGE BETWEEN {start} AND CURRENT ROW)"
        start = "UNBOUNDED PRECEDING" if node.preceding is None else f"{node.preceding} PRECEDING"
        return f"OVER ({partition}ORDER BY __t, __s ROWS BETWEEN {start} AND CURRENT ROW)"

    def _emit_sql(self, watermark: int) -> str:
        p, frame = self.p, self._frame()
        aggregates = []
        for call in self.node.calls:
            arg = "*" if call.argument is None else quote(call.argument)
            value = f"{call.function.lower()}({arg}) {frame}"
            aggregates.append(f"{wrapped_integer(value, call.output.duck_type)} AS {quote(call.output.name)}")
        cols = ", ".join(quote(c) for c in self.columns)
        return (
            f"SELECT {cols}, {', '.join(aggregates)} FROM (SELECT *, FALSE AS __new FROM "
            f"{p}_done UNION ALL SELECT *, TRUE FROM {p}_wait WHERE __t <= {watermark}) "
            f"QUALIFY __new ORDER BY __t, __s"
        )

    def _expire(self, watermark: int) -> None:
        """Keep only what a later row's frame can still reach (later rows have time > W)."""
        node, p = self.node, self.p
        if node.preceding is None:
            return  # UNBOUNDED PRECEDING: every row stays in the frame
        if node.frame == "RANGE":
            self.state.execute(f"DELETE FROM {p}_done WHERE __t < {watermark} - {node.preceding}")
            return
        partition = ", ".join(quote(k) for k in node.partition)
        by = f"PARTITION BY {partition} " if partition else ""
        self.state.execute(
            f"DELETE FROM {p}_done WHERE __s IN (SELECT __s FROM (SELECT __s, row_number() OVER "
            f"({by}ORDER BY __t DESC, __s DESC) AS __r FROM {p}_done) WHERE __r > "
            f"{node.preceding})"
        )
