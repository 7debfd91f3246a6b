"""Join: a regular (unbounded) join of two changelog streams on equal keys, INNER, LEFT, RIGHT or
FULL.

Each side's current rows live in a state table. A batch from one side is first reduced to its
net effect (rows inserted minus rows retracted, as multisets); the retracted rows leave the state
and their join results are retracted (-D), the inserted rows are joined with the other side and
emitted (+I), all retractions of a batch before its insertions. On an outer side (left of a LEFT
join, right of a RIGHT join, both of a FULL one) every row counts its matches: it is emitted
padded with NULLs while it has none, and that padded row is retracted when a first match arrives
(and emitted again when the last one goes).

`table.exec.state.ttl` drops rows from the state once they are older than the TTL (processing
time), as Flink does; nothing is emitted then, so later changes of those rows are not reflected.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import OP, quote, stamp
from clickstream.runtime.clock import Clock, SystemClock
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import JoinNode
from clickstream.sql.render import qualified, to_sql

LEFT, RIGHT = 0, 1
DELETE, INSERT = 3, 0
# Internal columns, quoted and `$`-prefixed so they never meet a user's column (`s`, `n`, ...).
SIGN, COPIES = quote("$sign"), quote("$copies")


class JoinOperator(BaseOperator):
    name = "Join"
    arity = 2

    def __init__(self, node: JoinNode, state: JobState, ttl_ms: int = 0, clock: Clock | None = None) -> None:
        super().__init__()
        self.node, self.state, self.ttl_ms = node, state, ttl_ms
        self.clock = clock or SystemClock()
        self.p = state.new_prefix("join")
        self.left_cols = [c.name for c in node.left.columns]
        self.right_cols = [o for _, o in node.right_columns]
        # which sides keep their rows, padded with NULLs, while they have no match
        self.outer = (node.join_type in ("LEFT", "FULL"), node.join_type in ("RIGHT", "FULL"))
        self.types = {c.name: c.duck_type for c in node.columns}
        self._created = [False, False]
        self.next_id = 0
        self.emitted = 0

    # --- helpers --------------------------------------------------------------------------------

    def _cols(self, port: int) -> list[str]:
        return self.left_cols if port == LEFT else self.right_cols

    def _table(self, port: int) -> str:
        return f"{self.p}_{'l' if port == LEFT else 'r'}"

    def _on(self, port: int, this: str, other: str) -> str:
        """The join condition between rows of `port`'s side (alias `this`) and the other's."""
        left, right = (this, other) if port == LEFT else (other, this)
        out = dict(self.node.right_columns)
        on = [
            f"{left}.{quote(a)} = {right}.{quote(out[b])}"
            for a, b in zip(self.node.left_keys, self.node.right_keys, strict=True)
        ]
        if self.node.condition:
            sides = {name: left for name in self.left_cols}
            sides.update({name: right for name in self.right_cols})
            on.append(f"({to_sql(qualified(self.node.condition, sides))})")
        return " AND ".join(on)

    def _same_row(self, a: str, b: str, port: int) -> str:
        return " AND ".join(f"{a}.{quote(c)} IS NOT DISTINCT FROM {b}.{quote(c)}" for c in self._cols(port))

    def _pairs(self, port: int, this: str, other: str) -> str:
        left, right = (this, other) if port == LEFT else (other, this)
        return ", ".join(
            [f"{left}.{quote(c)}" for c in self.left_cols] + [f"{right}.{quote(c)}" for c in self.right_cols]
        )

    def _padded(self, port: int, alias: str) -> str:
        """`port`'s row (alias `alias`) with NULLs for the other side's columns."""
        return ", ".join(
            f"{alias}.{quote(c)}" if c in self._cols(port) else f"CAST(NULL AS {self.types[c]}) AS {quote(c)}"
            for c in self.left_cols + self.right_cols
        )

    # --- input --------------------------------------------------------------------------------

    def process(self, batch: pa.Table, port: int) -> list[pa.Table]:
        p = self.p
        cols = self._cols(port)
        if port == LEFT:
            select = ", ".join(quote(c) for c in cols)
        else:
            select = ", ".join(f"{quote(r)} AS {quote(o)}" for r, o in self.node.right_columns)
        sign = f"CASE WHEN {quote(OP)} IN (1, 3) THEN -1 ELSE 1 END" if OP in batch.column_names else "1"
        names = ", ".join(quote(c) for c in cols)
        # net effect of the batch, one row per copy: inserted (n > 0) or retracted (n < 0)
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_net AS SELECT {names}, {COPIES} FROM (SELECT {names}, "
            f"CAST(sum({SIGN}) AS BIGINT) AS {COPIES} FROM (SELECT {select}, {sign} AS {SIGN} FROM batch) "
            f"GROUP BY ALL) WHERE {COPIES} <> 0",
            batch=batch,
        )
        self._ensure_state(port)
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_ins AS SELECT {names}, "
            f"{self.next_id} + row_number() OVER () AS __id FROM (SELECT {names}, "
            f"unnest(range({COPIES})) FROM {p}_net WHERE {COPIES} > 0)"
        )
        self.next_id += self.state.scalar(f"SELECT count(*) FROM {p}_ins") or 0
        self._take_retracted(port)
        out = self._changes(port)
        self._expire()
        self.metrics.records_in += batch.num_rows
        self.metrics.records_out += out.num_rows
        self._count_state()
        return [self._stamp(out)] if out.num_rows else []

    def _count_state(self) -> None:
        self.metrics.state_rows = sum(
            self.state.scalar(f"SELECT count(*) FROM {self._table(s)}") or 0
            for s in (LEFT, RIGHT)
            if self._created[s]
        )

    def _ensure_state(self, port: int) -> None:
        if self._created[port]:
            return
        p, names = self.p, ", ".join(quote(c) for c in self._cols(port))
        extra = ", CAST(0 AS BIGINT) AS __m" if self.outer[port] else ""
        self.state.execute(
            f"CREATE TABLE {self._table(port)} AS SELECT {names}, "
            f"CAST(0 AS BIGINT) AS __id, CAST(0 AS BIGINT) AS __ins{extra} "
            f"FROM {p}_net LIMIT 0"
        )
        self._created[port] = True

    def _take_retracted(self, port: int) -> None:
        """Move the state rows a retraction names (one per copy) to `<p>_del`."""
        p, table = self.p, self._table(port)
        names = ", ".join(quote(c) for c in self._cols(port))
        # Only the state rows equal to a retracted row are numbered: a window over the whole
        # table would sort the state every batch (an append-only input retracts nothing).
        retracted = (
            f"EXISTS (SELECT 1 FROM {p}_net n WHERE n.{COPIES} < 0 AND {self._same_row('t', 'n', port)})"
        )
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_del AS SELECT s.* FROM (SELECT *, row_number() "
            f"OVER (PARTITION BY {names} ORDER BY __id) AS __k FROM {table} t WHERE {retracted}) s "
            f"JOIN (SELECT {names}, unnest(range(-{COPIES})) AS __k0 FROM {p}_net WHERE {COPIES} < 0) d "
            f"ON {self._same_row('s', 'd', port)} AND s.__k = d.__k0 + 1"
        )
        self.state.execute(f"DELETE FROM {table} WHERE __id IN (SELECT __id FROM {p}_del)")

    # --- output -------------------------------------------------------------------------------

    def _changes(self, port: int) -> pa.Table:
        parts = self._change_parts(port)
        union = " UNION ALL ".join(f"SELECT * FROM ({sql}) AS part{i}" for i, sql in enumerate(parts))
        now = self.clock.now_ms()
        out = self.state.query(f"SELECT * EXCLUDE (__k) FROM ({union}) ORDER BY __k")
        # the inserted rows enter the state after the join, so they never meet themselves
        self._store_inserted(port, now)
        return out

    def _change_parts(self, port: int) -> list[str]:
        """The changes a batch on `port` makes, as queries ordered by `__k`: retracted pairs (0),
        the other side's padded rows that gain a first match (-D, 1), inserted pairs (2), and the
        other side's rows that lose their last match, padded again (+I, 3). A side's own rows are
        padded (outer joins) while they have no match."""
        p, other = self.p, 1 - port
        ready, table = self._created[other], self._table(other)
        delete, insert = (
            f"CAST({DELETE} AS TINYINT) AS {quote(OP)}",
            f"CAST({INSERT} AS TINYINT) AS {quote(OP)}",
        )
        parts = [f"SELECT {self._padded_empty()}, {insert}, 2 AS __k WHERE FALSE"]
        if ready:
            parts.append(
                f"SELECT {self._pairs(port, 'd', 'o')}, {delete}, 0 AS __k FROM {p}_del d "
                f"JOIN {table} o ON {self._on(port, 'd', 'o')}"
            )
            parts.append(
                f"SELECT {self._pairs(port, 'i', 'o')}, {insert}, 2 AS __k FROM {p}_ins i "
                f"JOIN {table} o ON {self._on(port, 'i', 'o')}"
            )
        if self.outer[port]:
            parts.append(
                f"SELECT {self._padded(port, 'd')}, {delete}, 0 AS __k FROM {p}_del d WHERE d.__m = 0"
            )
            no_match = (
                f"NOT EXISTS (SELECT 1 FROM {table} o WHERE {self._on(port, 'i', 'o')})" if ready else "TRUE"
            )
            parts.append(
                f"SELECT {self._padded(port, 'i')}, {insert}, 2 AS __k FROM {p}_ins i WHERE {no_match}"
            )
        if self.outer[other] and ready:
            self._count_matches(port)
            parts.append(
                f"SELECT {self._padded(other, 'o')}, {delete}, 1 AS __k FROM {table} o "
                f"JOIN {p}_cnt c USING (__id) WHERE o.__m = 0 AND c.gained > 0"
            )
            parts.append(
                f"SELECT {self._padded(other, 'o')}, {insert}, 3 AS __k FROM {table} o "
                f"JOIN {p}_cnt c USING (__id) WHERE o.__m > 0 AND o.__m - c.lost + c.gained = 0"
            )
        return parts

    def _count_matches(self, port: int) -> None:
        """`<p>_cnt`: the matches each row of the other side gains and loses from this batch."""
        p, other = self.p, 1 - port
        names = ", ".join(quote(c) for c in self._cols(port))
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_cnt AS SELECT o.__id, "
            f"count(*) FILTER (WHERE x.{SIGN} > 0) AS gained, count(*) FILTER (WHERE x.{SIGN} < 0) AS lost "
            f"FROM {self._table(other)} o JOIN (SELECT {names}, 1 AS {SIGN} FROM {p}_ins UNION ALL "
            f"SELECT {names}, -1 FROM {p}_del) x ON {self._on(port, 'x', 'o')} GROUP BY o.__id"
        )

    def _padded_empty(self) -> str:
        return ", ".join(
            f"CAST(NULL AS {self.types[c]}) AS {quote(c)}" for c in self.left_cols + self.right_cols
        )

    def _store_inserted(self, port: int, now: int) -> None:
        p, other = self.p, 1 - port
        table, other_table = self._table(port), self._table(other)
        matches = ""
        if self.outer[port]:
            count = f"(SELECT count(*) FROM {other_table} o WHERE {self._on(port, 'i', 'o')})"
            matches = f", {count if self._created[other] else '0'}"
        self.state.execute(f"INSERT INTO {table} SELECT i.*, {now}{matches} FROM {p}_ins i")
        if self.outer[other] and self._created[other]:
            self.state.execute(
                f"UPDATE {other_table} SET __m = __m + c.gained - c.lost FROM {p}_cnt c "
                f"WHERE {other_table}.__id = c.__id"
            )

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        """A window join: once both sides' watermark passed a window's end, both sides have
        emitted that window's rows, so they can leave the state."""
        ends = self.node.window_ends
        if ends is None:
            return []
        for port, column in ((LEFT, ends[0]), (RIGHT, dict(self.node.right_columns)[ends[1]])):
            if self._created[port]:
                self.state.execute(
                    f"DELETE FROM {self._table(port)} WHERE epoch_ms({quote(column)}) - 1 <= {watermark}"
                )
        self._count_state()
        return []

    def _expire(self) -> None:
        if not self.ttl_ms:
            return
        cutoff = self.clock.now_ms() - self.ttl_ms
        for port in (LEFT, RIGHT):
            if self._created[port]:
                self.state.execute(f"DELETE FROM {self._table(port)} WHERE __ins < {cutoff}")

    def _stamp(self, table: pa.Table) -> pa.Table:
        out = stamp(table, self.emitted, 0)
        self.emitted += table.num_rows
        return out
