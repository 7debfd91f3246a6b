"""Rank: Top-N per partition, and deduplication (N = 1), over an append-only or updating input.

State: the candidate rows (table `<p>_rows`) and the top N last emitted (`<p>_top`). Per batch the
rows are applied (appended; or, for an updating input, upserted/deleted by the input's unique
key, or, without one, inserted and retracted by value as a multiset, as Flink's retract rank
does), the top N of the partitions the batch touched are recomputed with one window query, and
compared with what was emitted: a position whose row changed emits `-D` for the old row and `+I`
for the new one, all deletions before all insertions, so a sink keyed either by position or by
row ends up right. For an append-only input, rows that fall out of the top N can never come
back and are dropped from the state.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, OP, SEQ, WM, quote, stamp
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import RankNode


class RankOperator(BaseOperator):
    name = "Rank"

    def __init__(self, node: RankNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("rank")
        self.data = [c.name for c in node.input.columns]
        self.part = [quote(c) for c in node.partition]
        keep_last = node.deduplicate and node.order[0][1]
        # ties are broken by arrival: the earlier row first, as Flink's Top-N keeps it, except that
        # deduplication ordered by time DESC keeps the later one ("keep last row")
        self.order = ", ".join(
            # NULL is the lowest value, as in Flink: first ascending, last descending
            [f"{quote(c)} {'DESC NULLS LAST' if d else 'ASC NULLS FIRST'}" for c, d in node.order]
            + [f"{quote(SEQ)} {'DESC' if keep_last else 'ASC'}"]
        )
        self.emitted = 0
        self._created = False

    def _on(self, a: str, b: str, columns: list[str]) -> str:
        return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in columns) or "TRUE"

    def process(self, batch: pa.Table) -> list[pa.Table]:
        p = self.p
        cols = ", ".join(quote(c) for c in self.data + [SEQ])
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_rows AS SELECT {cols} FROM batch LIMIT 0", batch=batch)
            self.state.execute(
                f"CREATE TABLE {p}_top AS SELECT {cols}, CAST(0 AS BIGINT) AS __rn FROM batch LIMIT 0",
                batch=batch,
            )
            self._created = True
        if self.node.drop_late:
            batch = self._drop_late(batch)
            if batch.num_rows == 0:
                return []
        self._apply(batch, cols)
        out = self._rerank(batch, cols)
        self.emitted += out.num_rows
        return self._count(batch, [out] if out.num_rows else [])

    def _drop_late(self, batch: pa.Table) -> pa.Table:
        """Event-time deduplication ignores a row whose time is behind the watermark, as Flink's
        RowTimeDeduplicate does: the first row of its key was already decided."""
        time = quote(self.node.order[0][0])
        kept = self.state.query(
            f"SELECT * FROM batch WHERE {quote(WM)} = {MIN_WATERMARK} OR epoch_ms({time}) > {quote(WM)}",
            batch=batch,
        )
        self.metrics.late_dropped += batch.num_rows - kept.num_rows
        return kept

    def _apply(self, batch: pa.Table, cols: str) -> None:
        p = self.p
        if OP not in batch.column_names:
            self.state.execute(f"INSERT INTO {p}_rows SELECT {cols} FROM batch", batch=batch)
            return
        if not self.node.row_key:
            self._apply_by_value(batch, cols)
            return
        key = [quote(k) for k in self.node.row_key]
        # the last change of each key in the batch decides: -D deletes, +I/+U upserts
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_chg AS SELECT * FROM batch WHERE {quote(OP)} <> 1 "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY {quote(SEQ)} "
            "DESC) = 1",
            batch=batch,
        )
        self.state.execute(f"DELETE FROM {p}_rows r USING {p}_chg c WHERE " + self._on("r", "c", key))
        self.state.execute(f"INSERT INTO {p}_rows SELECT {cols} FROM {p}_chg WHERE {quote(OP)} <> 3")

    def _apply_by_value(self, batch: pa.Table, cols: str) -> None:
        """A keyless updating input (a join, say): +I/+U add a row, -U/-D take away one equal
        row (the earliest), so the state is the input's current multiset of rows."""
        p, data = self.p, ", ".join(quote(c) for c in self.data)
        sign = f"CASE WHEN {quote(OP)} IN (1, 3) THEN -1 ELSE 1 END"
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_net AS SELECT {data}, max({quote(SEQ)}) AS {quote(SEQ)}, "
            f"CAST(sum({sign}) AS BIGINT) AS __n FROM batch GROUP BY ALL HAVING sum({sign}) <> 0",
            batch=batch,
        )
        self.state.execute(
            f"INSERT INTO {p}_rows SELECT {cols} FROM (SELECT *, unnest(range(__n)) FROM {p}_net "
            "WHERE __n > 0)"
        )
        same = " AND ".join(f"r.{quote(c)} IS NOT DISTINCT FROM d.{quote(c)}" for c in self.data)
        # Only the rows equal to a retracted one are numbered, not the whole state.
        retracted = f"EXISTS (SELECT 1 FROM {p}_net d WHERE d.__n < 0 AND {same})"
        self.state.execute(
            f"DELETE FROM {p}_rows WHERE rowid IN (SELECT r.__r FROM (SELECT {data}, rowid AS __r, "
            f"row_number() OVER (PARTITION BY {data} ORDER BY {quote(SEQ)}) AS __i FROM {p}_rows r "
            f"WHERE {retracted}) r "
            f"JOIN (SELECT {data}, unnest(range(-__n)) + 1 AS __i FROM {p}_net WHERE __n < 0) d "
            f"ON {same} AND r.__i = d.__i)"
        )

    def _rerank(self, batch: pa.Table, cols: str) -> pa.Table:
        p, part = self.p, self.part
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_touched AS SELECT DISTINCT "
            f"{', '.join(part) or '1 AS __all'} FROM batch",
            batch=batch,
        )
        touched = f"EXISTS (SELECT 1 FROM {p}_touched t WHERE {self._on('x', 't', part)})"
        partition = f"PARTITION BY {', '.join(part)} " if part else ""
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_new AS SELECT {cols}, row_number() OVER "
            f"({partition}ORDER BY {self.order}) AS __rn FROM {p}_rows x WHERE {touched} "
            f"QUALIFY __rn <= {self.node.limit}"
        )
        self.state.execute(f"CREATE OR REPLACE TEMP TABLE {p}_old AS SELECT * FROM {p}_top x WHERE {touched}")
        same = self._on("o", "n", part + ["__rn", quote(SEQ)])
        shown = f"__rn >= {self.node.start}"  # ranks before the range are kept but not emitted
        rank = quote(self.node.rank_column)
        data = ", ".join(quote(c) for c in self.data)
        order = ", ".join(["__k"] + part + [rank])
        out = self.state.query(
            f"SELECT * EXCLUDE (__k) FROM (SELECT {data}, __rn AS {rank}, CAST(3 AS TINYINT) AS "
            f"{quote(OP)}, 0 AS __k FROM {p}_old o WHERE {shown} AND NOT EXISTS (SELECT 1 FROM "
            f"{p}_new n WHERE {same}) UNION ALL SELECT {data}, __rn, CAST(0 AS TINYINT), 1 FROM "
            f"{p}_new n WHERE {shown} AND NOT EXISTS (SELECT 1 FROM {p}_old o WHERE {same})) "
            f"ORDER BY {order}"
        )
        self.state.execute(f"DELETE FROM {p}_top x WHERE {touched}")
        self.state.execute(f"INSERT INTO {p}_top SELECT * FROM {p}_new")
        if OP not in batch.column_names:
            # append-only input: what left the top N can never come back
            self.state.execute(
                f"DELETE FROM {p}_rows x WHERE {touched} AND NOT EXISTS (SELECT 1 "
                f"FROM {p}_new n WHERE n.{quote(SEQ)} = x.{quote(SEQ)})"
            )
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {p}_rows") or 0
        return stamp(out, self.emitted, 0)
