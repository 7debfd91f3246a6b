"""Deduplicate keeping each key's last row on event time, record by record: Flink's
RowTimeDeduplicate with keepLastRow (`ROW_NUMBER() OVER (PARTITION BY k ORDER BY rowtime DESC)
... WHERE rn = 1`) as an event-time operator downstream reads it.

A row replaces its key's current row when its time is not before the current row's (of equal
times the later arrival wins); a row with an earlier time changes nothing. Each replacement is
emitted as it happens, `-U` of the replaced row then `+U` of the new one (`+I` for a key's first
row), both stamped with the new row's watermark and nothing folded within a batch: a window
aggregate downstream judges each change against the watermark it arrived under (a retraction
of a row whose window already fired is late there), so results do not depend on batch size.
The rows keep their rowtime; nothing waits for the watermark.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import OP, SEQ, WM, quote
from clickstream.runtime.operators.deduplicate import RowTimeDeduplicateBase

INSERT, UPDATE_BEFORE, UPDATE_AFTER = 0, 1, 2


class LastRowOperator(RowTimeDeduplicateBase):
    prefix = "lastrow"

    def process(self, batch: pa.Table) -> list[pa.Table]:
        p, data, seq = self.p, ", ".join(self.data), quote(SEQ)
        if not self._created:
            self.state.execute(
                f"CREATE TABLE {p}_cur AS SELECT {data}, {seq} FROM batch LIMIT 0", batch=batch
            )
            self._created = True
        self._chain(batch)
        out = self._changes()
        self._keep_last()
        self.emitted += out.num_rows
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {p}_cur") or 0
        return self._count(batch, [out] if out.num_rows else [])

    def _chain(self, batch: pa.Table) -> None:
        """`<p>_chain`: per key of the batch, its current row (`__v` = 1, not new) then the batch's
        rows that replace one another in arrival order (`__v` 2, 3, ...)."""
        p, data, seq, wm = self.p, ", ".join(self.data), quote(SEQ), quote(WM)
        partition = f"PARTITION BY {', '.join(self.keys)} " if self.keys else ""
        order = f"{partition}ORDER BY __new, {seq}"
        touched = f"EXISTS (SELECT 1 FROM batch b WHERE {self._same_key('c', 'b')})"
        rows = (
            f"SELECT {data}, {seq}, CAST(NULL AS BIGINT) AS {wm}, false AS __new FROM {p}_cur c "
            f"WHERE {touched} UNION ALL SELECT {data}, {seq}, {wm}, true FROM batch"
        )
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_chain AS SELECT *, row_number() OVER ({order}) AS __v "
            f"FROM (SELECT *, max({self.time}) OVER ({order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 "
            f"PRECEDING) AS __before FROM ({rows})) "
            f"WHERE NOT __new OR __before IS NULL OR {self.time} >= __before",
            batch=batch,
        )

    def _changes(self) -> pa.Table:
        p, seq, wm, op = self.p, quote(SEQ), quote(WM), quote(OP)
        rank = quote(self.node.rank_column)
        old = ", ".join(f"o.{c}" for c in self.data)
        new = ", ".join(f"n.{c}" for c in self.data)
        pairs = (
            f"FROM {p}_chain n LEFT JOIN {p}_chain o ON {self._same_key('o', 'n')} AND o.__v = n.__v - 1 "
            "WHERE n.__new"
        )
        changes = (
            f"SELECT {old}, {UPDATE_BEFORE} AS __op, n.{seq} AS __s, 0 AS __k, n.{wm} AS __w {pairs} "
            f"AND o.__v IS NOT NULL UNION ALL SELECT {new}, CASE WHEN o.__v IS NULL THEN {INSERT} ELSE "
            f"{UPDATE_AFTER} END, n.{seq}, 1, n.{wm} {pairs}"
        )
        return self.state.query(
            f"SELECT {', '.join(self.data)}, CAST(1 AS BIGINT) AS {rank}, CAST(__op AS TINYINT) AS {op}, "
            f"{self.emitted} + row_number() OVER (ORDER BY __s, __k) AS {seq}, __w AS {wm} "
            f"FROM ({changes}) ORDER BY __s, __k"
        )

    def _keep_last(self) -> None:
        """Each key's last row of the chain becomes its current row."""
        p, data, seq = self.p, ", ".join(self.data), quote(SEQ)
        partition = f"PARTITION BY {', '.join(self.keys)} " if self.keys else ""
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_last AS SELECT {data}, {seq} FROM {p}_chain "
            f"QUALIFY row_number() OVER ({partition}ORDER BY __v DESC) = 1"
        )
        self.state.execute(
            f"DELETE FROM {p}_cur c WHERE EXISTS (SELECT 1 FROM {p}_last l WHERE {self._same_key('c', 'l')})"
        )
        self.state.execute(f"INSERT INTO {p}_cur SELECT * FROM {p}_last")
