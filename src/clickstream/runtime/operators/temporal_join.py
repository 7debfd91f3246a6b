"""TemporalJoin on event time: each left row with the version of its key that was valid at the
left row's time, i.e. the latest right row of that key whose time is not after it.

Left rows wait until the watermark (the minimum of both inputs) passes them, so every version
that could apply has arrived; then one DuckDB ASOF join answers them all. Versions older than the
latest one at or before the watermark can never be chosen again and leave the state.

A versioned side that updates (an upsert or CDC source, a deduplication keeping the last row) is
read as Flink reads it, as upserts: +I/+U start a version at their rowtime, -D ends the key's
validity at its rowtime (a left row then finds no version: no row, or NULLs for a LEFT join), -U
says nothing (the +U after it does). Of two changes of a key at the same time, the later one
counts, as Flink's state keyed by time keeps it. (A versioned view, a deduplication keeping the
last row, reaches this operator as the rows it deduplicates: see `join_planner._versions_of`.)
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import OP, SEQ, quote, stamp
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import TemporalJoinNode

LEFT, RIGHT = 0, 1
UPDATE_BEFORE, DELETE = 1, 3


class TemporalJoinOperator(BaseOperator):
    name = "TemporalJoin"
    arity = 2

    def __init__(self, node: TemporalJoinNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("tjoin")
        self.left_cols = [c.name for c in node.left.columns]
        self._created = [False, False]
        self.emitted = 0

    def _select(self, port: int, batch: pa.Table) -> str:
        if port == LEFT:
            cols = [quote(c) for c in self.left_cols]
            time = quote(self.node.left.rowtime)
            return (
                f"SELECT {', '.join(cols)}, epoch_ms({time}) AS __t, {quote(SEQ)} AS __s "
                f"FROM batch WHERE {time} IS NOT NULL"
            )
        cols = [f"b.{quote(r)} AS {quote(o)}" for r, o in self.node.right_columns]
        time = f"b.{quote(self.node.right.rowtime)}"
        changes = f"b.{quote(OP)} <> {UPDATE_BEFORE}"
        updating = OP in batch.column_names
        return (
            f"SELECT {', '.join(cols)}, epoch_ms({time}) AS __t, b.{quote(SEQ)} AS __s, "
            f"{f'b.{quote(OP)} = {DELETE}' if updating else 'FALSE'} AS __del FROM batch b "
            f"WHERE {time} IS NOT NULL{f' AND {changes}' if updating else ''}"
        )

    def process(self, batch: pa.Table, port: int) -> list[pa.Table]:
        table = f"{self.p}_{'l' if port == LEFT else 'r'}"
        if not self._created[port]:
            self.state.execute(f"CREATE TABLE {table} AS {self._select(port, batch)} LIMIT 0", batch=batch)
            self._created[port] = True
        self.state.execute(f"INSERT INTO {table} {self._select(port, batch)}", batch=batch)
        if port == RIGHT and OP in batch.column_names:
            self._keep_last_at_each_time()
        self.metrics.records_in += batch.num_rows
        return []

    def _keep_last_at_each_time(self) -> None:
        keys = [quote(dict(self.node.right_columns)[k]) for k in self.node.right_keys]
        same = " AND ".join([f"v.{k} IS NOT DISTINCT FROM r.{k}" for k in keys] + ["v.__t = r.__t"])
        later = f"SELECT 1 FROM {self.p}_r v WHERE {same} AND v.__s > r.__s"
        self.state.execute(f"DELETE FROM {self.p}_r r WHERE EXISTS ({later})")

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        if not self._created[LEFT]:
            return []
        p = self.p
        if not self.state.scalar(f"SELECT count(*) FROM {p}_l WHERE __t <= {watermark}"):
            return []
        out = self.state.query(self._join_sql(watermark))
        self.state.execute(f"DELETE FROM {p}_l WHERE __t <= {watermark}")
        self._expire_versions(watermark)
        stamped = stamp(out, self.emitted, watermark)
        self.emitted += out.num_rows
        self.metrics.records_out += out.num_rows
        self.metrics.state_rows = sum(
            self.state.scalar(f"SELECT count(*) FROM {p}_{s}") or 0
            for s in "lr"
            if self._created["lr".index(s)]
        )
        if not out.num_rows:
            return []
        return [stamped]

    def _join_sql(self, watermark: int) -> str:
        p, node = self.p, self.node
        right_out = dict(node.right_columns)
        left_cols = [f"l.{quote(c)}" for c in self.left_cols]
        right_cols = [f"r.{quote(o)}" for _, o in node.right_columns]
        if not self._created[RIGHT]:  # no version yet: an inner join yields nothing
            if node.join_type != "LEFT":
                return f"SELECT {', '.join(left_cols)} FROM {p}_l l WHERE FALSE"
            types = {c.name: c.duck_type for c in node.columns}
            right_cols = [f"CAST(NULL AS {types[o]}) AS {quote(o)}" for _, o in node.right_columns]
            return (
                f"SELECT {', '.join(left_cols + right_cols)} FROM {p}_l l WHERE __t <= "
                f"{watermark} ORDER BY l.__t, l.__s"
            )
        on = [
            f"l.{quote(a)} = r.{quote(right_out[b])}"
            for a, b in zip(node.left_keys, node.right_keys, strict=True)
        ]
        join = "ASOF LEFT JOIN" if node.join_type == "LEFT" else "ASOF JOIN"
        if node.join_type == "LEFT":  # a deleted key's columns are NULL
            right_cols = [
                f"CASE WHEN r.__del THEN NULL ELSE r.{quote(o)} END AS {quote(o)}"
                for _, o in node.right_columns
            ]
        live = "" if node.join_type == "LEFT" else "WHERE NOT r.__del "
        return (
            f"SELECT {', '.join(left_cols + right_cols)} FROM (SELECT * FROM {p}_l WHERE "
            f"__t <= {watermark}) l {join} {p}_r r ON {' AND '.join(on)} AND l.__t >= r.__t "
            f"{live}ORDER BY l.__t, l.__s"
        )

    def _expire_versions(self, watermark: int) -> None:
        if not self._created[RIGHT]:
            return
        right_out = dict(self.node.right_columns)
        keys = [quote(right_out[k]) for k in self.node.right_keys]
        same = " AND ".join(f"v.{k} IS NOT DISTINCT FROM r.{k}" for k in keys)
        self.state.execute(
            f"DELETE FROM {self.p}_r r WHERE r.__t < (SELECT max(v.__t) FROM {self.p}_r v WHERE "
            f"{same} AND v.__t <= {watermark})"
        )
