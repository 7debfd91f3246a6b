"""Deduplicate, keeping each key's first row on event time: Flink 2's insert-only
RowTimeDeduplicate (`ROW_NUMBER() OVER (PARTITION BY k ORDER BY rowtime) ... WHERE rn = 1`).

Rows wait in the state until the watermark passes them. Then each key's earliest row (of equal
times, the one that arrived first) is emitted, once: every later row of that key is ignored, and a
row behind the watermark on arrival is late (dropped and counted). Since nothing is ever retracted,
the result only appends and keeps its rowtime, so a window can follow.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import RankNode


class RowTimeDeduplicateBase(BaseOperator):
    """What both event-time deduplications share: the input's columns, the partition keys and the
    order time, quoted, and a state-table prefix of their own."""

    name = "Deduplicate"
    prefix = "dedup"

    def __init__(self, node: RankNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix(self.prefix)
        self.data = [quote(c.name) for c in node.input.columns]
        self.keys = [quote(k) for k in node.partition]
        self.time = quote(node.order[0][0])
        self._created = False

    def _same_key(self, a: str, b: str) -> str:
        return " AND ".join(f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in self.keys) or "TRUE"


class FirstRowOperator(RowTimeDeduplicateBase):
    def process(self, batch: pa.Table) -> list[pa.Table]:
        p, columns = self.p, ", ".join(self.data + [quote(SEQ)])
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_rows AS SELECT {columns} FROM batch LIMIT 0", batch=batch)
            keys = ", ".join(self.keys) or "1 AS __all"
            self.state.execute(f"CREATE TABLE {p}_done AS SELECT {keys} FROM batch LIMIT 0", batch=batch)
            self._created = True
        # Flink drops a row whose order time is NULL (a LEFT interval join's unmatched row ordered
        # by the other side's time), as it drops a late one.
        after_watermark = f"{quote(WM)} = {MIN_WATERMARK} OR epoch_ms({self.time}) > {quote(WM)}"
        on_time = f"{self.time} IS NOT NULL AND ({after_watermark})"
        kept = self.state.scalar(f"SELECT count(*) FROM batch WHERE {on_time}", batch=batch) or 0
        self.metrics.late_dropped += batch.num_rows - kept
        # The keys already emitted, restricted first to the batch's by a semi-join that hashes the
        # batch: NOT EXISTS against the whole table would hash every key ever emitted, each batch.
        done = f"SELECT d.* FROM {p}_done d SEMI JOIN batch k ON {self._same_key('d', 'k')}"
        self.state.execute(
            f"INSERT INTO {p}_rows SELECT {columns} FROM batch b WHERE ({on_time}) AND NOT EXISTS "
            f"(SELECT 1 FROM ({done}) d WHERE {self._same_key('b', 'd')})",
            batch=batch,
        )
        self.metrics.records_in += batch.num_rows
        self._count_state()
        return []

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        if not self._created:
            return []
        p = self.p
        partition = f"PARTITION BY {', '.join(self.keys)} " if self.keys else ""
        first = (
            f"SELECT * FROM {p}_rows QUALIFY row_number() OVER ({partition}ORDER BY {self.time}, "
            f"{quote(SEQ)}) = 1"
        )
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_first AS SELECT * FROM ({first}) "
            f"WHERE epoch_ms({self.time}) <= {watermark}"
        )
        out = self.state.query(
            f"SELECT {', '.join(self.data)}, CAST(1 AS BIGINT) AS {quote(self.node.rank_column)} "
            f"FROM {p}_first ORDER BY {self.time}, {quote(SEQ)}"
        )
        if not out.num_rows:
            return []
        self.state.execute(f"INSERT INTO {p}_done SELECT {', '.join(self.keys) or '1'} FROM {p}_first")
        emitted = f"SELECT 1 FROM {p}_first f WHERE {self._same_key('r', 'f')}"
        self.state.execute(f"DELETE FROM {p}_rows r WHERE EXISTS ({emitted})")
        self._count_state()
        return self._released(out, watermark)

    def _count_state(self) -> None:
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {self.p}_rows") or 0
