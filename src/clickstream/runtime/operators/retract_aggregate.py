"""GroupAggregate over an updating input: every input change adds (+I, +U) or retracts (-U, -D)
a row of its group, as Flink's GroupAggFunction with retraction does.

State per group: the number of rows it holds (`__n`: when it drops to 0 the group is deleted, -D),
and signed sums for COUNT, SUM and AVG. MIN, MAX and the DISTINCT aggregates cannot be undone from
a sum: for each of them the group's values are kept as a multiset (value -> number of rows holding
it), and the result is recomputed from it, so retracting the current extreme finds the next one.
FIRST_VALUE, LAST_VALUE, LISTAGG and the JSON aggregates keep the values in arrival order
(`ordered_values.py`): a retraction removes the oldest equal value, as Flink's functions do.

Per batch, the groups the batch touches are computed before and after applying it, and the
difference is emitted: `-U old, +U new` for a changed group, `+I` for a new one, `-D` for one that
lost its last row; all retractions of a batch before its additions. A group whose result did not
change emits nothing, as in Flink.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.runtime.batch import OP, quote, stamp
from clickstream.runtime.clock import Clock, SystemClock
from clickstream.runtime.operators.aggregates import (
    DISTINCT_COUNT,
    DISTINCT_VALUE,
    ORDERED,
    SPREAD,
    accumulators,
    final,
    spread_type,
)
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.operators.ordered_values import OrderedValues
from clickstream.runtime.operators.state_ttl import KeyedStateTtl
from clickstream.runtime.state import JobState
from clickstream.sql.plan import AggCall, GroupAggregateNode

_ALL = quote("$all")  # the one group of an aggregate without GROUP BY
_ROWS = "__n"


class RetractGroupAggregateOperator(BaseOperator):
    name = "GroupAggregate"

    def __init__(
        self, node: GroupAggregateNode, state: JobState, ttl_ms: int = 0, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("retract")
        self.keys = [quote(k) for k in node.keys] or [_ALL]
        self.ttl = KeyedStateTtl(state, self.p, self.keys, ttl_ms, clock or SystemClock()) if ttl_ms else None
        calls = list(enumerate(node.aggregates))
        self.summed = [(i, c) for i, c in calls if not _needs_values(c) and c.function not in ORDERED]
        self.valued = [(i, c) for i, c in calls if _needs_values(c)]
        self.listed = [
            OrderedValues(state, self.p, i, c, self.keys) for i, c in calls if c.function in ORDERED
        ]
        self.emitted = 0
        self._created = False

    def _on(self, a: str, b: str, extra: list[str] | None = None) -> str:
        return " AND ".join([f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in self.keys] + (extra or []))

    def process(self, batch: pa.Table) -> list[pa.Table]:
        self._load(batch)
        if not self._created:
            self._create_state()
        elif self.ttl:
            # An expired key starts empty: a retraction of its old rows then changes nothing.
            tables = [f"{self.p}_acc"] + [f"{self.p}_m{i}" for i, _ in self.valued]
            self.ttl.expire(tables + [values.table for values in self.listed])
        old = self._results()
        self._apply_sums()
        for i, call in self.valued:
            self._apply_values(i, call)
        for values in self.listed:
            values.apply(f"{self.p}_in")
        new = self._results()
        out = self._changes(old, new)
        self.state.execute(f"DELETE FROM {self.p}_acc WHERE {_ROWS} <= 0")
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {self.p}_acc") or 0
        if self.ttl:
            self.ttl.touch(f"{self.p}_keys")
        stamped = stamp(out, self.emitted, 0)
        self.emitted += out.num_rows
        return self._count(batch, [stamped] if out.num_rows else [])

    # --- input ----------------------------------------------------------------------------------

    def _load(self, batch: pa.Table) -> None:
        """The batch's rows as (keys, arguments, sign), and the groups it touches."""
        p = self.p
        keys = [quote(k) for k in self.node.keys] or [f"CAST(0 AS TINYINT) AS {_ALL}"]
        arguments = {quote(c.argument) for c in self.node.aggregates if c.argument}
        sign = f"CASE WHEN {quote(OP)} IN (1, 3) THEN -1 ELSE 1 END" if OP in batch.column_names else "1"
        # each row's position: the arrival order of FIRST_VALUE's, LAST_VALUE's and LISTAGG's values
        batch = batch.append_column("__row", pa.array(np.arange(1, batch.num_rows + 1)))
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_in AS SELECT {', '.join(keys + sorted(arguments))}, "
            f"{sign} AS __sign, __row FROM batch",
            batch=batch,
        )
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_keys AS SELECT DISTINCT {', '.join(self.keys)} FROM {p}_in"
        )

    def _create_state(self) -> None:
        p = self.p
        self.state.execute(f"CREATE TABLE {p}_acc AS {self._deltas()} LIMIT 0")
        for i, call in self.valued:
            self.state.execute(f"CREATE TABLE {p}_m{i} AS {self._value_deltas(call)} LIMIT 0")
        for values in self.listed:
            values.create(f"{p}_in")
        self._created = True

    # --- signed sums ------------------------------------------------------------------------------

    def _sum_columns(self) -> list[tuple[str, str]]:
        """(state column, SQL over the batch's rows: added minus retracted) of each sum."""
        rows = "CAST(sum(__sign) AS BIGINT)"
        columns = [(_ROWS, rows)]
        for i, call in self.summed:
            arg = quote(call.argument) if call.argument else None
            valued = f"sum(CASE WHEN {arg} IS NULL THEN 0 ELSE __sign END)"
            count = rows if arg is None else f"CAST({valued} AS BIGINT)"
            total = _signed(arg or "NULL")
            names = [name for name, _, _ in accumulators(i, call)]
            if call.function in SPREAD:  # sums of values and of their squares, and their number
                value = f"CAST({arg} AS {spread_type(call)})"
                columns += [(names[0], _signed(value)), (names[1], _signed(f"{value} * {value}"))]
                columns.append((names[2], count))
            elif call.function == "COUNT":
                columns.append((names[0], count))
            elif call.function == "SUM":  # with its number of values: a sum of none is NULL
                columns += [(names[0], total), (f"{names[0]}_c", count)]
            else:  # AVG
                columns += [(names[0], total), (names[1], count)]
        return columns

    def _deltas(self) -> str:
        """Per group of the batch: what its rows add to each sum."""
        columns = [f"{sql} AS {name}" for name, sql in self._sum_columns()]
        keys = ", ".join(self.keys)
        return f"SELECT {keys}, {', '.join(columns)} FROM {self.p}_in GROUP BY {keys}"

    def _apply_sums(self) -> None:
        p = self.p
        self.state.execute(f"CREATE OR REPLACE TEMP TABLE {p}_d AS {self._deltas()}")
        names = [name for name, _ in self._sum_columns()]
        merged = [f"d.{k}" for k in self.keys] + [f"coalesce(o.{c}, 0) + d.{c} AS {c}" for c in names]
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_d AS SELECT {', '.join(merged)} FROM {p}_d d "
            f"LEFT JOIN {p}_acc o ON {self._on('o', 'd')}"
        )
        self.state.execute(f"DELETE FROM {p}_acc o USING {p}_d d WHERE {self._on('o', 'd')}")
        self.state.execute(f"INSERT INTO {p}_acc SELECT * FROM {p}_d")

    # --- multisets of values --------------------------------------------------------------------

    def _value_deltas(self, call: AggCall) -> str:
        keys, arg = ", ".join(self.keys), quote(call.argument or "")
        return (
            f"SELECT {keys}, {arg} AS {DISTINCT_VALUE}, CAST(sum(__sign) AS BIGINT) AS {DISTINCT_COUNT} "
            f"FROM {self.p}_in WHERE {arg} IS NOT NULL GROUP BY {keys}, {arg}"
        )

    def _apply_values(self, i: int, call: AggCall) -> None:
        p, table = self.p, f"{self.p}_m{i}"
        same = self._on("o", "d", [f"o.{DISTINCT_VALUE} = d.{DISTINCT_VALUE}"])
        self.state.execute(
            f"CREATE OR REPLACE TEMP TABLE {p}_vd AS SELECT d.* EXCLUDE ({DISTINCT_COUNT}), "
            f"coalesce(o.{DISTINCT_COUNT}, 0) + d.{DISTINCT_COUNT} AS {DISTINCT_COUNT} FROM "
            f"({self._value_deltas(call)}) d LEFT JOIN {table} o ON {same}"
        )
        self.state.execute(f"DELETE FROM {table} o USING {p}_vd d WHERE {same}")
        self.state.execute(f"INSERT INTO {table} SELECT * FROM {p}_vd WHERE {DISTINCT_COUNT} > 0")

    # --- results and changes --------------------------------------------------------------------

    def _results(self) -> pa.Table:
        """The current result of each group the batch touches (groups with rows only)."""
        p = self.p
        accs = [f"a.{k}" for k in self.keys]
        for i, call in self.summed:
            names = [name for name, _, _ in accumulators(i, call)]
            if call.function == "SUM":  # a sum of no values is NULL
                accs.append(f"CASE WHEN a.{names[0]}_c > 0 THEN a.{names[0]} END AS {names[0]}")
            else:
                accs += [f"a.{n}" for n in names]
        joins = ""
        for i, call in self.valued:
            values = [f"{sql} AS {name}" for name, sql, _ in accumulators(i, call, DISTINCT_VALUE)]
            accs += [f"m{i}.{name}" for name, _, _ in accumulators(i, call)]
            keys = ", ".join(self.keys)
            joins += (
                f" LEFT JOIN (SELECT {keys}, {', '.join(values)} FROM {p}_m{i} m WHERE EXISTS "
                f"(SELECT 1 FROM {p}_keys t WHERE {self._on('m', 't')}) GROUP BY {keys}) m{i} "
                f"ON {self._on(f'm{i}', 'a')}"
            )
        for listed in self.listed:
            columns, join = listed.results(f"{p}_keys", self._on)
            accs += columns
            joins += join
        names = [quote(c.name) for c in self.node.columns]
        values = [f"a.{k}" for k in self.keys[: len(self.node.keys)]]
        values += [final(i, call, "a") for i, call in enumerate(self.node.aggregates)]
        select = ", ".join(f"{v} AS {n}" for v, n in zip(values, names, strict=True))
        return self.state.query(
            f"SELECT {select}, {', '.join(f'a.{k} AS __k{j}' for j, k in enumerate(self.keys))} "
            f"FROM (SELECT {', '.join(accs)} FROM {p}_acc a JOIN {p}_keys t ON {self._on('a', 't')}"
            f"{joins} WHERE a.{_ROWS} > 0) a"
        )

    def _changes(self, old: pa.Table, new: pa.Table) -> pa.Table:
        """-U/-D for old rows that are gone, then +U/+I for new rows that were not there."""
        group = [f"__k{j}" for j in range(len(self.keys))]
        same_key = " AND ".join(f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in group)
        same_row = " AND ".join(
            f"a.{c} IS NOT DISTINCT FROM b.{c}" for c in [quote(c) for c in old.column_names]
        )
        names = ", ".join(quote(c.name) for c in self.node.columns)

        def side(this: str, other: str, kinds: tuple[int, int], part: int) -> str:
            return (
                f"SELECT {names}, CAST(CASE WHEN EXISTS (SELECT 1 FROM {other} b WHERE {same_key}) "
                f"THEN {kinds[0]} ELSE {kinds[1]} END AS TINYINT) AS {quote(OP)}, {part} AS __part, "
                f"{', '.join(group)} FROM {this} a WHERE NOT EXISTS (SELECT 1 FROM {other} b "
                f"WHERE {same_row})"
            )

        return self.state.query(
            f"SELECT * EXCLUDE (__part, {', '.join(group)}) FROM ({side('old', 'new', (1, 3), 0)} "
            f"UNION ALL {side('new', 'old', (2, 0), 1)}) ORDER BY __part, {', '.join(group)}",
            old=old,
            new=new,
        )


def _signed(value: str) -> str:
    """The sum of `value` over added rows minus that over retracted ones (multiplying by the
    sign could overflow: -1 * the smallest INT)."""
    return (
        f"coalesce(sum({value}) FILTER (WHERE __sign > 0), 0) - "
        f"coalesce(sum({value}) FILTER (WHERE __sign < 0), 0)"
    )


def _needs_values(call: AggCall) -> bool:
    """MIN, MAX and DISTINCT aggregates keep their values: a retraction cannot be subtracted."""
    return call.distinct or call.function in ("MIN", "MAX")
