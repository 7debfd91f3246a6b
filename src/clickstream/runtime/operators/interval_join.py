"""IntervalJoin: two append-only streams joined on keys and a bounded difference of event times.

Each side's rows are kept in a state table. A batch from one side is joined with the other side's
state (one DuckDB join), its matches are emitted, and its rows are stored. When the watermark
passes the point after which a stored row can no longer match (`left.time - lower < watermark`
for a left row, `right.time + upper < watermark` for a right row) the row leaves the state; in an
outer join an expiring row that never matched is emitted padded with NULLs.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, quote, stamp
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import IntervalJoinNode, PlanNode, ScanNode
from clickstream.sql.render import qualified, to_sql

LEFT, RIGHT = 0, 1


class IntervalJoinOperator(BaseOperator):
    name = "IntervalJoin"
    arity = 2

    def __init__(self, node: IntervalJoinNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("ijoin")
        self.left_cols = [c.name for c in node.left.columns]
        self.right_map = node.right_columns  # right input name -> output name
        self.emitted = 0
        self.watermark = -(2**63)
        self._created = [False, False]
        outer = node.join_type
        self.pad_left = outer in ("LEFT", "FULL")  # unmatched left rows are emitted
        self.pad_right = outer in ("RIGHT", "FULL")
        # As Flink's interval join: the output watermark lags the input's by the interval, since a
        # joined row can be that much older than the row that completed it.
        self.output_delay_ms = max(-node.lower_ms, node.upper_ms, 0)
        # A self-join reads one source on both sides: of a matched pair, the row that arrived later
        # has the later watermark, and the pair was complete only from then on.
        self.one_source = _sources(node.left) == _sources(node.right)

    # --- state --------------------------------------------------------------------------------

    def _table(self, port: int) -> str:
        return f"{self.p}_{'l' if port == LEFT else 'r'}"

    def _rows(self, batch: pa.Table, port: int) -> str:
        """SELECT of a batch's rows in state form: output names, time in ms, seq, matched."""
        if port == LEFT:
            cols = [quote(c) for c in self.left_cols]
            time = quote(self.node.left_time)
        else:
            cols = [f"{quote(r)} AS {quote(o)}" for r, o in self.right_map]
            time = quote(self.node.right_time)
        return (
            f"SELECT {', '.join(cols)}, epoch_ms({time}) AS __t, {quote(SEQ)} AS __s, "
            f"{quote(WM)} AS __w, FALSE AS __matched FROM batch WHERE {time} IS NOT NULL"
        )

    def _ensure_state(self, batch: pa.Table, port: int) -> None:
        if not self._created[port]:
            self.state.execute(
                f"CREATE TABLE {self._table(port)} AS {self._rows(batch, port)} LIMIT 0", batch=batch
            )
            self._created[port] = True

    # --- input --------------------------------------------------------------------------------

    def process(self, batch: pa.Table, port: int) -> list[pa.Table]:
        self._ensure_state(batch, port)
        other = RIGHT if port == LEFT else LEFT
        out: list[pa.Table] = []
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {self.p}_in AS {self._rows(batch, port)}", batch=batch
        )
        if self._created[other]:
            out = self._match(port, other)
        self.state.execute(f"INSERT INTO {self._table(port)} SELECT * FROM {self.p}_in")
        return self._count(batch, out)

    def _match(self, port: int, other: int) -> list[pa.Table]:
        p = self.p
        left, right = ("n", "o") if port == LEFT else ("o", "n")
        on = [
            f"{left}.{quote(a)} = {right}.{quote(o)}"
            for a, o in zip(self.node.left_keys, self._right_out(self.node.right_keys), strict=True)
        ]
        on.append(f"{left}.__t - {right}.__t BETWEEN {self.node.lower_ms} AND {self.node.upper_ms}")
        if self.node.condition:
            on.append(f"({self._qualified(self.node.condition, left, right)})")
        if self.one_source:
            on.append(self._both_live(left, right))
        select = [f"{left}.{quote(c)}" for c in self.left_cols]
        select += [f"{right}.{quote(o)}" for _, o in self.right_map]
        completed = "greatest(n.__w, o.__w)" if self.one_source else "n.__w"
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_m AS SELECT {', '.join(select)}, n.__s AS __ns, "
            f"o.__s AS __os, {completed} AS __nw FROM {p}_in n JOIN {self._table(other)} o "
            f"ON {' AND '.join(on)}"
        )
        # remember which rows found a partner: an outer join pads only those that never did
        self.state.execute(f"UPDATE {p}_in SET __matched = TRUE WHERE __s IN (SELECT __ns FROM {p}_m)")
        self.state.execute(
            f"UPDATE {self._table(other)} SET __matched = TRUE WHERE __s IN (SELECT __os FROM {p}_m)"
        )
        names = [quote(c) for c in self.left_cols] + [quote(o) for _, o in self.right_map]
        matches = self.state.query(f"SELECT {', '.join(names)}, __nw FROM {p}_m ORDER BY __ns, __os")
        if not matches.num_rows:
            return []
        # Each match reaches the next operator under the watermark before the row that completed
        # it (per record, so batch sizes do not matter), held back by the interval.
        marks = matches.column("__nw")
        held = pc.max_element_wise(pc.subtract(marks, self.output_delay_ms), MIN_WATERMARK + 1)
        before = pc.if_else(pc.equal(marks, MIN_WATERMARK), marks, held)
        out = stamp(matches.drop_columns(["__nw"]), self.emitted, MIN_WATERMARK)
        out = out.set_column(out.column_names.index(WM), WM, before)
        self.emitted += out.num_rows
        return [out]

    def _both_live(self, left: str, right: str) -> str:
        """In a self-join each row carries the join's own watermark: a pair is made only if the
        earlier row had not expired (see on_watermark) under the watermark the later one saw, as
        if every record were its own batch, so the batch size does not change what matches."""
        lower, upper = self.node.lower_ms, self.node.upper_ms
        return (
            f"(CASE WHEN {left}.__s > {right}.__s THEN NOT ({right}.__t + {upper} < {left}.__w) "
            f"ELSE NOT ({left}.__t - {lower} < {right}.__w) END)"
        )

    def _right_out(self, names: list[str]) -> list[str]:
        mapping = dict(self.right_map)
        return [mapping[n] for n in names]

    def _qualified(self, condition: exp.Expression, left: str, right: str) -> str:
        """The rest of ON is written over output names; point each at its side's alias."""
        sides = {name: left for name in self.left_cols}
        sides.update({out: right for _, out in self.right_map})
        return to_sql(qualified(condition, sides))

    # --- expiry --------------------------------------------------------------------------------

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        self.watermark = watermark
        out: list[pa.Table] = []
        limits = {
            LEFT: f"__t - {self.node.lower_ms} < {watermark}",
            RIGHT: f"__t + {self.node.upper_ms} < {watermark}",
        }
        for port, pad in ((LEFT, self.pad_left), (RIGHT, self.pad_right)):
            if not self._created[port]:
                continue
            table = self._table(port)
            if pad:
                padded = self._padded(port, f"WHERE {limits[port]} AND NOT __matched")
                if padded.num_rows:
                    out.append(self._stamp(padded))
            self.state.execute(f"DELETE FROM {table} WHERE {limits[port]}")
        self.metrics.state_rows = sum(
            self.state.scalar(f"SELECT count(*) FROM {self._table(p)}") or 0
            for p in (LEFT, RIGHT)
            if self._created[p]
        )
        self.metrics.records_out += sum(t.num_rows for t in out)
        return out

    def _padded(self, port: int, where: str) -> pa.Table:
        left_types = {c.name: c.duck_type for c in self.node.left.columns}
        right_types = {c.name: c.duck_type for c in self.node.columns}
        if port == LEFT:
            cols = [quote(c) for c in self.left_cols]
            cols += [f"CAST(NULL AS {right_types[o]}) AS {quote(o)}" for _, o in self.right_map]
        else:
            cols = [f"CAST(NULL AS {left_types[c]}) AS {quote(c)}" for c in self.left_cols]
            cols += [quote(o) for _, o in self.right_map]
        return self.state.query(
            f"SELECT {', '.join(cols)} FROM {self._table(port)} {where} ORDER BY __t, __s"
        )

    def _stamp(self, table: pa.Table) -> pa.Table:
        out = stamp(table, self.emitted, self.watermark)
        self.emitted += table.num_rows
        return out


def _sources(node: PlanNode) -> set[int]:
    """The scans (by identity: a table read by a job is one shared scan) `node` reads."""
    if isinstance(node, ScanNode):
        return {id(node)}
    return set().union(*(_sources(i) for i in node.inputs)) if node.inputs else set()
