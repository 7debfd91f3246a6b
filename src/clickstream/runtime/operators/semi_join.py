"""SemiJoin: Flink's semi and anti regular joins, what `IN`/`EXISTS` subqueries (and their `NOT`
forms) become: each left row passes on while it has a match on the right (SEMI) or while it has
none (ANTI), with only the left side's columns.

Both sides' current rows live in state tables; each left row keeps the number of right rows that
match it. A batch is first reduced to its net effect (inserted minus retracted rows, as
multisets). A left batch emits its retracted rows that were passed on (-D), then its inserted rows
that pass (+I). A right batch changes the left rows' match counts: a left row that gains its first
match is inserted (SEMI) or deleted (ANTI), one that loses its last match the other way round, all
deletions before insertions, as Flink's semi/anti join does. Over append-only inputs a SEMI join
therefore only inserts; an ANTI join updates.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, OP, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import SemiJoinNode
from clickstream.sql.render import qualified, to_sql

LEFT, RIGHT = 0, 1
INSERT, DELETE = 0, 3
SIGN, COPIES = quote("$sign"), quote("$copies")


class SemiJoinOperator(BaseOperator):
    name = "SemiJoin"
    arity = 2

    def __init__(self, node: SemiJoinNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("semi")
        self.cols = ([c.name for c in node.left.columns], [c.name for c in node.right.columns])
        self.anti = node.kind == "ANTI"
        self._create_state()

    def _create_state(self) -> None:
        for port in (LEFT, RIGHT):
            node = self.node.left if port == LEFT else self.node.right
            columns = [f"{quote(c.name)} {c.duck_type}" for c in node.columns]
            columns.append("__id BIGINT")
            if port == LEFT:
                columns.append("__m BIGINT")  # the number of right rows that match
            self.state.execute(f"CREATE TABLE {self._table(port)} ({', '.join(columns)})")
        self.next_id = 0

    def _table(self, port: int) -> str:
        return f"{self.p}_{'l' if port == LEFT else 'r'}"

    def _names(self, port: int, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + quote(c) for c in self.cols[port])

    def _on(self, left: str, right: str) -> str:
        """The match condition between a left row (alias `left`) and a right row."""
        if self.node.condition is None:
            return "TRUE"
        sides = {name: left for name in self.cols[LEFT]}
        sides.update({name: right for name in self.cols[RIGHT]})
        return to_sql(qualified(self.node.condition, sides))

    def _passes(self, matches: str) -> str:
        return f"{matches} = 0" if self.anti else f"{matches} > 0"

    # --- input --------------------------------------------------------------------------------

    def process(self, batch: pa.Table, port: int) -> list[pa.Table]:  # type: ignore[override]
        self._split(batch, port)
        out = self._left_changes() if port == LEFT else self._right_changes()
        self.metrics.records_in += batch.num_rows
        self.metrics.state_rows = sum(
            self.state.scalar(f"SELECT count(*) FROM {self._table(s)}") or 0 for s in (LEFT, RIGHT)
        )
        if not out.num_rows:
            return []
        return self._released(out, min(self.input_watermarks, default=MIN_WATERMARK))

    def _split(self, batch: pa.Table, port: int) -> None:
        """The batch's net effect: `<p>_ins` (inserted rows, one per copy, with new ids) and
        `<p>_del` (the state rows the retractions name, taken out of the state)."""
        p, names, table = self.p, self._names(port), self._table(port)
        sign = f"CASE WHEN {quote(OP)} IN (1, 3) THEN -1 ELSE 1 END" if OP in batch.column_names else "1"
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_net AS SELECT * FROM (SELECT {names}, "
            f"CAST(sum({sign}) AS BIGINT) AS {COPIES} FROM batch GROUP BY ALL) WHERE {COPIES} <> 0",
            batch=batch,
        )
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_ins AS SELECT {names}, {self.next_id} + row_number() "
            f"OVER () AS __id FROM (SELECT {names}, unnest(range({COPIES})) FROM {p}_net WHERE {COPIES} > 0)"
        )
        self.next_id += self.state.scalar(f"SELECT count(*) FROM {p}_ins") or 0
        same = " AND ".join(f"s.{quote(c)} IS NOT DISTINCT FROM d.{quote(c)}" for c in self.cols[port])
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_del AS SELECT s.* EXCLUDE (__k) FROM (SELECT *, "
            f"row_number() OVER (PARTITION BY {names} ORDER BY __id) AS __k FROM {table}) s JOIN "
            f"(SELECT {names}, unnest(range(-{COPIES})) AS __k0 FROM {p}_net WHERE {COPIES} < 0) d "
            f"ON {same} AND s.__k = d.__k0 + 1"
        )
        self.state.execute(f"DELETE FROM {table} WHERE __id IN (SELECT __id FROM {p}_del)")

    # --- output -------------------------------------------------------------------------------

    def _left_changes(self) -> pa.Table:
        """Retracted left rows that were passed on (-D), then inserted ones that pass (+I)."""
        p, names = self.p, self._names(LEFT)
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_ins_m AS SELECT i.*, (SELECT count(*) FROM "
            f"{self._table(RIGHT)} r WHERE {self._on('i', 'r')}) AS __m FROM {p}_ins i"
        )
        out = self.state.query(
            f"SELECT {names}, CAST({DELETE} AS TINYINT) AS {quote(OP)} FROM (SELECT * FROM {p}_del "
            f"WHERE {self._passes('__m')} ORDER BY __id) UNION ALL SELECT {names}, CAST({INSERT} AS "
            f"TINYINT) FROM (SELECT * FROM {p}_ins_m WHERE {self._passes('__m')} ORDER BY __id)"
        )
        self.state.execute(f"INSERT INTO {self._table(LEFT)} SELECT * FROM {p}_ins_m")
        return out

    def _right_changes(self) -> pa.Table:
        """Left rows whose match count crosses zero: those that stop passing (-D), then those
        that start (+I)."""
        p, left = self.p, self._table(LEFT)
        names = self._names(RIGHT)
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_cnt AS SELECT l.__id, l.__m AS old, l.__m + "
            f"sum(x.{SIGN}) AS new FROM {left} l JOIN (SELECT {names}, 1 AS {SIGN} FROM {p}_ins "
            f"UNION ALL SELECT {names}, -1 FROM {p}_del) x ON {self._on('l', 'x')} GROUP BY l.__id, l.__m"
        )
        # (kind, the count under which the row passes, the count under which it does not)
        kinds = [(DELETE, "old", "new"), (INSERT, "new", "old")]
        parts = [
            f"SELECT {self._names(LEFT, 'l')}, CAST({kind} AS TINYINT) AS {quote(OP)}, {rank} AS __k, "
            f"l.__id FROM {left} l JOIN {p}_cnt c USING (__id) WHERE {self._passes('c.' + passing)} "
            f"AND NOT ({self._passes('c.' + failing)})"
            for rank, (kind, passing, failing) in enumerate(kinds)
        ]
        out = self.state.query(
            f"SELECT * EXCLUDE (__k, __id) FROM ({' UNION ALL '.join(parts)}) ORDER BY __k, __id"
        )
        self.state.execute(f"UPDATE {left} SET __m = c.new FROM {p}_cnt c WHERE {left}.__id = c.__id")
        self.state.execute(f"INSERT INTO {self._table(RIGHT)} SELECT * FROM {p}_ins")
        return out
