"""ChangelogNormalize: an upsert source's changes made complete, as Flink's operator of that name.

An upsert source (the `log` connector with a PRIMARY KEY) sends each key's new row (+U) and
deletions (-D, possibly holding only the key). The operator keeps the last row of each key (table
`<p>_rows`) and emits what changed: +I for a new key, -U of the old row and +U of the new one for
a changed row (nothing for an identical one), and -D of the stored row for a delete (nothing for a
key without a row). Within a batch only the last change of a key counts, as in a mini-batch.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import OP, SEQ, quote, stamp
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import ChangelogNormalizeNode

UPDATE_BEFORE, DELETE = 1, 3


class ChangelogNormalizeOperator(BaseOperator):
    name = "ChangelogNormalize"

    def __init__(self, node: ChangelogNormalizeNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("normalize")
        self.data = [quote(c.name) for c in node.input.columns]
        self.keys = [quote(k) for k in node.keys]
        self.emitted = 0
        self._created = False

    def _match(self, a: str, b: str, columns: list[str]) -> str:
        return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in columns)

    def process(self, batch: pa.Table) -> list[pa.Table]:
        p, data = self.p, ", ".join(self.data)
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_rows AS SELECT {data} FROM batch LIMIT 0", batch=batch)
            self._created = True
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_chg AS SELECT {data}, {quote(OP)} AS __op FROM batch "
            f"WHERE {quote(OP)} <> {UPDATE_BEFORE} QUALIFY row_number() OVER (PARTITION BY "
            f"{', '.join(self.keys)} ORDER BY {quote(SEQ)} DESC) = 1",
            batch=batch,
        )
        out = self.state.query(self._changes_sql())
        self.state.execute(f"DELETE FROM {p}_rows o USING {p}_chg c WHERE {self._match('o', 'c', self.keys)}")
        self.state.execute(f"INSERT INTO {p}_rows SELECT {data} FROM {p}_chg WHERE __op <> {DELETE}")
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {p}_rows") or 0
        result = stamp(out, self.emitted, 0)
        self.emitted += out.num_rows
        return self._count(batch, [result] if out.num_rows else [])

    def _changes_sql(self) -> str:
        """Retractions (-U, -D of the stored rows) first, then +I and +U."""
        p = self.p
        old = ", ".join(f"o.{c}" for c in self.data)
        new = ", ".join(f"c.{c}" for c in self.data)
        joined = f"{p}_chg c LEFT JOIN {p}_rows o ON {self._match('o', 'c', self.keys)}"
        found = f"o.{self.keys[0]} IS NOT NULL"
        changed = f"NOT ({self._match('o', 'c', self.data)})"
        kind = f"CAST({{}} AS TINYINT) AS {quote(OP)}"
        return (
            f"SELECT * EXCLUDE (__k) FROM ("
            f"SELECT {old}, {kind.format(1)}, 0 AS __k FROM {joined} "
            f"WHERE c.__op <> {DELETE} AND {found} AND {changed} "
            f"UNION ALL SELECT {old}, {kind.format(3)}, 0 FROM {joined} WHERE c.__op = {DELETE} AND {found} "
            f"UNION ALL SELECT {new}, {kind.format(0)}, 1 FROM {joined} "
            f"WHERE c.__op <> {DELETE} AND NOT {found} "
            f"UNION ALL SELECT {new}, {kind.format(2)}, 1 FROM {joined} "
            f"WHERE c.__op <> {DELETE} AND {found} AND {changed}) ORDER BY __k"
        )
