"""GroupAggregate: unbounded GROUP BY over an append-only input, emitting a changelog.

State is one row of accumulators per key (plus the distinct values of each COUNT(DISTINCT)).
Two ways to emit:
- per batch (default): each key changed by the batch emits `-U old, +U new` (or `+I`), as Flink's
  mini-batch aggregation folds a batch's changes of one key;
- per record (`node.per_record`): every input row emits the key's result after that row (`+U`),
  so an upsert sink keyed by something other than the group key (the seed's cumulative UV, keyed by
  date and MAX(time)) sees every value Flink would show it, whatever the batch size.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.runtime.batch import OP, SEQ, WM, quote, stamp
from clickstream.runtime.clock import Clock, SystemClock
from clickstream.runtime.operators import running
from clickstream.runtime.operators.aggregates import (
    DISTINCT_VALUE,
    accumulators,
    combine,
    final,
)
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.operators.state_ttl import KeyedStateTtl
from clickstream.runtime.state import JobState
from clickstream.sql.plan import AggCall, GroupAggregateNode


class GroupAggregateOperator(BaseOperator):
    name = "GroupAggregate"

    def __init__(
        self, node: GroupAggregateNode, state: JobState, ttl_ms: int = 0, clock: Clock | None = None
    ) -> None:
        super().__init__()
        if node.input.updating:
            raise NotImplementedError("GROUP BY over an updating input")
        self.node, self.state = node, state
        self.p = state.new_prefix("group")
        self.keys = [quote(k) for k in node.keys]
        # A DISTINCT aggregate takes each value once: only from the first row that brings it.
        self.accs = [
            a
            for i, call in enumerate(node.aggregates)
            for a in accumulators(i, call, _first_of_value(i, call))
        ]
        self.distinct = [(i, call) for i, call in enumerate(node.aggregates) if call.distinct]
        self.emitted = 0
        self._created = False
        self.ttl = KeyedStateTtl(state, self.p, self.keys, ttl_ms, clock or SystemClock()) if ttl_ms else None

    def _on(self, left: str, right: str, extra: list[str] | None = None) -> str:
        conditions = [f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in self.keys]
        conditions += extra or []
        return " AND ".join(conditions) or "TRUE"

    def _create_distinct_state(self, empty: pa.Table) -> None:
        for i, call in self.distinct:
            cols = ", ".join(self.keys + [f"{quote(call.argument)} AS {DISTINCT_VALUE}"])
            self.state.execute(f"CREATE TABLE {self.p}_d{i} AS SELECT {cols} FROM batch LIMIT 0", batch=empty)

    def _create_state(self, empty: pa.Table) -> None:
        """The accumulator table, shaped by the partials over `empty` (a batch with its flags)."""
        group = ", ".join(self.keys)
        partials = [f"{sql} AS {name}" for name, sql, _ in self.accs]
        columns = ", ".join(c for c in (group, ", ".join(partials)) if c)
        group_by = f" GROUP BY {group}" if group else ""
        self.state.execute(
            f"CREATE TABLE {self.p}_acc AS SELECT {columns} FROM batch{group_by} LIMIT 0", batch=empty
        )
        self._created = True

    def process(self, batch: pa.Table) -> list[pa.Table]:
        if not self._created:
            self._create_distinct_state(batch.slice(0, 0))
        elif self.ttl:
            self._expire_idle_keys(self.ttl)
        # Value codes of this batch's columns, computed once. A local, not an attribute: every
        # attribute is checkpointed, and these are as large as the batch (1.6 MB of a 2.6 MB
        # checkpoint in the seed's cumulative UV) yet worthless after it.
        codes: running.Codes = {}
        rows = self._with_new_distinct_flags(batch, codes)
        if not self._created:
            self._create_state(rows.slice(0, 0))
        out = self._per_record(rows, codes) if self.node.per_record else self._per_batch(rows)
        for i, call in self.distinct:
            cols = ", ".join(self.keys + [quote(call.argument)])
            self.state.execute(f"INSERT INTO {self.p}_d{i} SELECT {cols} FROM rows WHERE __new{i}", rows=rows)
        if self.ttl:
            self.ttl.touch("batch", batch=batch)
        self.emitted += out.num_rows
        return self._count(batch, [out] if out.num_rows else [])

    def _expire_idle_keys(self, ttl: KeyedStateTtl) -> None:
        ttl.expire([f"{self.p}_acc"] + [f"{self.p}_d{i}" for i, _ in self.distinct])
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {self.p}_acc") or 0

    # --- COUNT(DISTINCT): which rows bring a value the key has not seen -------------------------

    def _with_new_distinct_flags(self, batch: pa.Table, codes: running.Codes) -> pa.Table:
        """Adds `__new<i>` per COUNT(DISTINCT): the row is the first in the batch with its
        (key, value) and the state has not seen that pair."""
        for i, call in self.distinct:
            first = running.first_occurrences(batch, self.node.keys + [call.argument], codes)
            candidates = batch.select(self.node.keys + [call.argument]).take(pa.array(first))
            candidates = candidates.append_column("__row", pa.array(first, pa.int64()))
            v = quote(call.argument)
            # The pairs already seen, by an inner join: DuckDB builds its hash table on the
            # batch's candidates and only scans the state (pruning row groups by the candidates'
            # key range). NOT EXISTS against the state would hash the whole state every batch.
            seen = f"SELECT c.__row FROM candidates c JOIN {self.p}_d{i} d ON " + self._on(
                "d", "c", [f"d.{DISTINCT_VALUE} = c.{v}"]
            )
            new_rows = self.state.query(
                f"SELECT __row FROM candidates WHERE {v} IS NOT NULL AND __row NOT IN ({seen})",
                candidates=candidates,
            )
            flags = np.zeros(batch.num_rows, dtype=bool)
            flags[new_rows.column(0).to_numpy()] = True
            batch = batch.append_column(f"__new{i}", pa.array(flags))
        return batch

    # --- one change per key and batch --------------------------------------------------------

    def _per_batch(self, rows: pa.Table) -> pa.Table:
        p, keys = self.p, self.keys
        group = ", ".join(keys)
        partials = [f"{sql} AS {name}" for name, sql, _ in self.accs]
        group_by = f" GROUP BY {group}" if group else ""
        select = ", ".join(c for c in (group, ", ".join(partials)) if c) or "1 AS __unit"
        merged = self._merged()
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_chg AS SELECT {', '.join(merged)} FROM "
            # groups in the order of their first record in the batch, as one record a batch gives them
            f"(SELECT {select}, row_number() OVER (ORDER BY min({quote(SEQ)})) AS __ord "
            f"FROM rows{group_by}) n LEFT JOIN (SELECT *, TRUE AS __present FROM {p}_acc) o "
            f"ON {self._on('o', 'n')} ORDER BY n.__ord",
            rows=rows,
        )
        # Old results come from the state rows (o), new ones from the merged rows (c).
        old, new = self._result_exprs("o"), self._result_exprs("c")
        differs = " OR ".join(f"({a}) IS DISTINCT FROM ({b})" for a, b in zip(old, new, strict=True))
        names = [quote(c.name) for c in self.node.columns]
        key_names, value_names = names[: len(keys)], names[len(keys) :]
        pairs = [f"c.{k} AS {n}" for k, n in zip(keys, key_names, strict=True)]
        pairs += [f"{e} AS __o{j}" for j, e in enumerate(old)]
        pairs += [f"{e} AS __n{j}" for j, e in enumerate(new)]
        olds = ", ".join(key_names + [f"__o{j} AS {n}" for j, n in enumerate(value_names)])
        news = ", ".join(key_names + [f"__n{j} AS {n}" for j, n in enumerate(value_names)])
        out = self.state.query(
            f"WITH x AS (SELECT {', '.join(pairs)}, o.__present, row_number() OVER "
            f"(ORDER BY c.rowid) AS __i FROM {p}_chg c LEFT JOIN (SELECT *, TRUE AS __present "
            f"FROM {p}_acc) o ON {self._on('o', 'c')} WHERE o.__present IS NULL OR "
            f"{differs or 'FALSE'}) "
            f"SELECT * EXCLUDE (__k) FROM ("
            f"SELECT {olds}, CAST(1 AS TINYINT) AS {quote(OP)}, 2 * __i AS __k FROM x "
            f"WHERE __present UNION ALL "
            f"SELECT {news}, CAST(CASE WHEN __present THEN 2 ELSE 0 END AS TINYINT), "
            f"2 * __i + 1 FROM x) ORDER BY __k"
        )
        self._replace_state(f"{p}_chg")
        return self._with_seq(out)

    # --- one change per record ---------------------------------------------------------------

    def _per_record(self, rows: pa.Table, codes: running.Codes) -> pa.Table:
        p = self.p
        merged = self._merged()
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_chg AS SELECT {', '.join(merged)}, n.{quote(SEQ)}, "
            f"n.{quote(WM)}, n.__last, CAST(CASE WHEN o.__present OR NOT n.__first THEN 2 ELSE 0 "
            f"END AS TINYINT) AS {quote(OP)} FROM running n LEFT JOIN (SELECT *, TRUE AS "
            f"__present FROM {p}_acc) o ON {self._on('o', 'n')}",
            running=self._running(rows, codes),
        )
        out = self.state.query(
            f"SELECT {self._results('c')}, {quote(OP)}, {quote(SEQ)}, "
            f"{quote(WM)} FROM {p}_chg c ORDER BY {quote(SEQ)}"
        )
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_last AS SELECT * EXCLUDE "
            f"({quote(SEQ)}, {quote(WM)}, {quote(OP)}, __last) FROM {p}_chg "
            "WHERE __last"
        )
        self._replace_state(f"{p}_last")
        return out

    def _running(self, rows: pa.Table, codes: running.Codes) -> pa.Table:
        """Batch-local running accumulators per row (rows in arrival order), with
        `__first`/`__last` per group."""
        calls = self.node.aggregates
        if running.supported(calls):
            table, keep = running.running_accumulators(
                rows, self.node.keys, calls, {i: f"__new{i}" for i, _ in self.distinct}, codes
            )
            table = table.append_column(SEQ, rows.column(SEQ)).append_column(WM, rows.column(WM))
            return table.take(pa.array(keep))
        # Window functions for what numpy cannot add exactly (DECIMAL sums).
        partition = f"PARTITION BY {', '.join(self.keys)} " if self.keys else ""
        frame = f"OVER ({partition}ORDER BY {quote(SEQ)} ROWS UNBOUNDED PRECEDING)"
        columns = [f"{sql} {frame} AS {name}" for name, sql, _ in self.accs]
        columns += [
            f"row_number() {frame} = 1 AS __first",
            f"row_number() OVER ({partition}ORDER BY {quote(SEQ)} DESC) = 1 AS __last",
        ]
        select = ", ".join(self.keys + columns + [quote(SEQ), quote(WM)])
        return self.state.query(f"SELECT {select} FROM rows ORDER BY {quote(SEQ)}", rows=rows)

    # --- helpers --------------------------------------------------------------------------------

    def _merged(self) -> list[str]:
        """Accumulators of the state row (o) combined with the batch's (n), per key."""
        merged = [f"n.{k}" for k in self.keys]
        merged += [
            f"{sql} AS {name}"
            for i, call in enumerate(self.node.aggregates)
            for name, sql in combine(i, call, "o", "n")
        ]
        return merged

    def _result_exprs(self, source: str) -> list[str]:
        exprs = []
        for i, call in enumerate(self.node.aggregates):
            exprs.append(final(i, call, source))
        return exprs

    def _results(self, source: str) -> str:
        names = [quote(c.name) for c in self.node.columns]
        values = [f"{source}.{k}" for k in self.keys] + self._result_exprs(source)
        return ", ".join(f"{v} AS {n}" for v, n in zip(values, names, strict=True))

    def _replace_state(self, changes: str) -> None:
        p = self.p
        state_columns = [k for k in self.keys] + [name for name, _, _ in self.accs]
        if self.keys:
            deleted = self.state.scalar(
                f"DELETE FROM {p}_acc o USING {changes} c WHERE " + self._on("o", "c")
            )
        else:
            deleted = self.state.scalar(f"DELETE FROM {p}_acc")
        cols = ", ".join(state_columns)
        inserted = self.state.scalar(f"INSERT INTO {p}_acc ({cols}) SELECT {cols} FROM {changes}")
        self.metrics.state_rows += (inserted or 0) - (deleted or 0)  # (statements give counts)

    def _with_seq(self, out: pa.Table) -> pa.Table:
        return stamp(out, self.emitted, 0)


def _first_of_value(index: int, call: AggCall) -> str | None:
    """A DISTINCT aggregate's argument, NULL (ignored) but on the rows flagged `__new<index>`.
    CASE, not FILTER: DuckDB runs a FILTERed window aggregate in quadratic time."""
    if not call.distinct:
        return None
    return f"CASE WHEN __new{index} THEN {quote(call.argument or '')} END"
