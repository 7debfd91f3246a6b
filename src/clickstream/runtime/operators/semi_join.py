"""SemiJoin: Flink's semi and anti regular joins, what `IN`/`EXISTS` subqueries (and their `NOT`
forms) become, and the marking join that gives an `IN`/`EXISTS` its value where it is not a
condition of WHERE on its own (under OR, in the SELECT list).

SEMI passes each left row on while it has a match on the right, ANTI while it has none, both with
the left side's columns only. MARK passes every left row on with one more column, the value of
the `IN`/`EXISTS`: TRUE with a match, else NULL when a right row compares as unknown (a NULL on
either side of `x IN (...)`: the `null_condition`), else FALSE.

Both sides' current rows live in state tables; each left row keeps the number of right rows that
match it (and, for MARK, that compare as unknown). A batch is first reduced to its net effect
(inserted minus retracted rows, as multisets). A left batch emits its retracted rows that were
passed on (-D), then its inserted rows that pass (+I). A right batch changes the left rows'
counts: a row whose output changes is deleted as it was (-D), then inserted as it is now (+I),
all deletions before insertions, as Flink's semi/anti join does. Over append-only inputs a SEMI
join therefore only inserts; ANTI and MARK joins update.

`table.exec.state.ttl` drops rows from either state once they are older than the TTL (processing
time), as Flink does; nothing is emitted then, and the left rows keep their counts.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, OP, quote
from clickstream.runtime.clock import Clock, SystemClock
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

    def __init__(
        self, node: SemiJoinNode, state: JobState, ttl_ms: int = 0, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self.node, self.state, self.ttl_ms = node, state, ttl_ms
        self.clock = clock or SystemClock()
        self.p = state.new_prefix("semi")
        self.cols = ([c.name for c in node.left.columns], [c.name for c in node.right.columns])
        self.kind = node.kind
        self.marker = quote(node.columns[-1].name) if node.kind == "MARK" else None
        self._create_state()

    def _create_state(self) -> None:
        for port in (LEFT, RIGHT):
            node = self.node.left if port == LEFT else self.node.right
            columns = [f"{quote(c.name)} {c.duck_type}" for c in node.columns]
            columns += ["__id BIGINT", "__ins BIGINT"]  # __ins: when it entered (for the TTL)
            if port == LEFT:  # the right rows that match, and that compare as unknown
                columns += ["__m BIGINT", "__n BIGINT"]
            self.state.execute(f"CREATE TABLE {self._table(port)} ({', '.join(columns)})")
        self.next_id = 0

    def _table(self, port: int) -> str:
        return f"{self.p}_{'l' if port == LEFT else 'r'}"

    def _names(self, port: int, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + quote(c) for c in self.cols[port])

    def _condition(self, left: str, right: str, unknown: bool = False) -> str:
        """Whether a left row (alias `left`) and a right row match (or, `unknown`, compare as
        unknown)."""
        condition = self.node.null_condition if unknown else self.node.condition
        if condition is None:
            return "FALSE" if unknown else "TRUE"
        sides = {name: left for name in self.cols[LEFT]}
        sides.update({name: right for name in self.cols[RIGHT]})
        return f"({to_sql(qualified(condition, sides))})"

    def _value(self, m: str, n: str) -> str:
        """What a left row with `m` matches and `n` unknown comparisons gives: whether it passes
        (SEMI, ANTI), or the IN/EXISTS value (MARK)."""
        if self.kind == "SEMI":
            return f"{m} > 0"
        if self.kind == "ANTI":
            return f"{m} = 0"
        return f"CASE WHEN {m} > 0 THEN TRUE WHEN {n} > 0 THEN NULL ELSE FALSE END"

    def _emitted(self, m: str, n: str) -> str:
        return "TRUE" if self.kind == "MARK" else self._value(m, n)

    def _output(self, alias: str, m: str, n: str, kind: int) -> str:
        marker = f", {self._value(m, n)} AS {self.marker}" if self.marker else ""
        return f"{self._names(LEFT, alias)}{marker}, CAST({kind} AS TINYINT) AS {quote(OP)}"

    # --- input --------------------------------------------------------------------------------

    def process(self, batch: pa.Table, port: int) -> list[pa.Table]:  # type: ignore[override]
        self._split(batch, port)
        out = self._left_changes() if port == LEFT else self._right_changes()
        self._expire()
        self.metrics.records_in += batch.num_rows
        self.metrics.state_rows = sum(
            self.state.scalar(f"SELECT count(*) FROM {self._table(s)}") or 0 for s in (LEFT, RIGHT)
        )
        if not out.num_rows:
            return []
        if not self.node.updating:  # a SEMI join of append-only inputs only inserts
            out = out.drop_columns([OP])
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
            f"OVER () AS __id, {self.clock.now_ms()} AS __ins FROM (SELECT {names}, "
            f"unnest(range({COPIES})) FROM {p}_net WHERE {COPIES} > 0)"
        )
        self.next_id += self.state.scalar(f"SELECT count(*) FROM {p}_ins") or 0
        same = " AND ".join(f"s.{quote(c)} IS NOT DISTINCT FROM d.{quote(c)}" for c in self.cols[port])
        # Only the state rows equal to a retracted row are numbered, not the whole state.
        retracted = f"EXISTS (SELECT 1 FROM {p}_net d WHERE d.{COPIES} < 0 AND {same})"
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_del AS SELECT s.* EXCLUDE (__k) FROM (SELECT *, "
            f"row_number() OVER (PARTITION BY {names} ORDER BY __id) AS __k FROM {table} s "
            f"WHERE {retracted}) s JOIN "
            f"(SELECT {names}, unnest(range(-{COPIES})) AS __k0 FROM {p}_net WHERE {COPIES} < 0) d "
            f"ON {same} AND s.__k = d.__k0 + 1"
        )
        self.state.execute(f"DELETE FROM {table} WHERE __id IN (SELECT __id FROM {p}_del)")

    # --- output -------------------------------------------------------------------------------

    def _left_changes(self) -> pa.Table:
        """Retracted left rows that were passed on (-D), then inserted ones that pass (+I)."""
        p, right = self.p, self._table(RIGHT)
        unknown = "0"
        if self.kind == "MARK":
            unknown = f"(SELECT count(*) FROM {right} r WHERE {self._condition('i', 'r', unknown=True)})"
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_ins_m AS SELECT i.*, (SELECT count(*) FROM {right} r "
            f"WHERE {self._condition('i', 'r')}) AS __m, {unknown} AS __n FROM {p}_ins i"
        )
        parts = [
            f"SELECT * FROM (SELECT {self._output('x', 'x.__m', 'x.__n', kind)} FROM {source} x "
            f"WHERE {self._emitted('x.__m', 'x.__n')} ORDER BY x.__id)"
            for kind, source in ((DELETE, f"{p}_del"), (INSERT, f"{p}_ins_m"))
        ]
        out = self.state.query(" UNION ALL ".join(parts))
        self.state.execute(f"INSERT INTO {self._table(LEFT)} SELECT * FROM {p}_ins_m")
        return out

    def _right_changes(self) -> pa.Table:
        """Left rows whose output changes: as they were (-D), then as they are now (+I)."""
        p, left = self.p, self._table(LEFT)
        names = self._names(RIGHT)
        match, unknown = self._condition("l", "x"), self._condition("l", "x", unknown=True)
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_cnt AS SELECT l.__id, "
            f"l.__m + coalesce(sum(x.{SIGN}) FILTER (WHERE {match}), 0) AS m, "
            f"l.__n + coalesce(sum(x.{SIGN}) FILTER (WHERE {unknown}), 0) AS n "
            f"FROM {left} l JOIN (SELECT {names}, 1 AS {SIGN} FROM {p}_ins UNION ALL SELECT {names}, -1 "
            f"FROM {p}_del) x ON {match} OR {unknown} GROUP BY l.__id, l.__m, l.__n"
        )
        before, after = ("l.__m", "l.__n"), ("c.m", "c.n")
        changed = f"({self._value(*before)}) IS DISTINCT FROM ({self._value(*after)})"
        parts = [
            f"SELECT {self._output('l', *counts, kind)}, {rank} AS __k, l.__id FROM {left} l "
            f"JOIN {p}_cnt c USING (__id) WHERE {self._emitted(*counts)} AND {changed}"
            for rank, (kind, counts) in enumerate(((DELETE, before), (INSERT, after)))
        ]
        out = self.state.query(
            f"SELECT * EXCLUDE (__k, __id) FROM ({' UNION ALL '.join(parts)}) ORDER BY __k, __id"
        )
        self.state.execute(
            f"UPDATE {left} SET __m = c.m, __n = c.n FROM {p}_cnt c WHERE {left}.__id = c.__id"
        )
        self.state.execute(f"INSERT INTO {self._table(RIGHT)} SELECT * FROM {p}_ins")
        return out

    def _expire(self) -> None:
        if not self.ttl_ms:
            return
        cutoff = self.clock.now_ms() - self.ttl_ms
        for port in (LEFT, RIGHT):
            self.state.execute(f"DELETE FROM {self._table(port)} WHERE __ins < {cutoff}")
