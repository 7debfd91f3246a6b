"""Match (MATCH_RECOGNIZE), as Flink's CepOperator runs it.

On event time, rows wait in a DuckDB table until the watermark passes them; a row whose time is
not after the watermark in force when it arrived is late and dropped (Flink's rule). Ordered by a
processing-time attribute, rows go through the automaton as they arrive. When the watermark moves,
the rows it passed leave the table in time order per partition (then the further ORDER BY keys,
then arrival) and go through the partition's automaton (`match_nfa`): before each row's time and at
the watermark itself, WITHIN drops partial matches that are too old.

The automaton is stepped one row per partition at a time over all partitions together. A DEFINE
that reads only the tested row is evaluated once for all released rows (one DuckDB query per
variable and watermark); the others read values computed from each partial match's rows
(`A.price`, `LAST(A.price, 1)`, `SUM(A.price)`, ...: the node's PatternRefs), evaluated in Python
when the condition is plain comparisons and logic (`match_conditions`), else by one DuckDB query
per variable and step over all partitions. Completed matches get their MEASURES the same way, in
one query per batch of matches. The partial matches stay in memory (bounded by WITHIN and by the
skip strategy, as in Flink); the rows still waiting for the watermark stay in DuckDB.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from sqlglot import exp

from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.operators.match_conditions import python_condition
from clickstream.runtime.operators.match_nfa import (
    Condition,
    Matcher,
    Partial,
    PartitionRun,
    Row,
    compile_pattern,
)
from clickstream.runtime.state import JobState
from clickstream.sql import render
from clickstream.sql.plan import MatchNode, PatternRef

_TIME = "__t"  # epoch ms of the rowtime, beside the buffered rows
_REF = re.compile(r"^\$r(\d+)$")

Key = tuple[Any, ...]


class MatchRecognizeOperator(BaseOperator):
    name = "Match"
    wiring = BaseOperator.wiring | {"in_python"}  # DEFINE conditions compiled to functions

    def __init__(self, node: MatchNode, state: JobState) -> None:
        super().__init__()
        self.node, self.state = node, state
        self.p = state.new_prefix("match")
        self.matcher = Matcher(compile_pattern(node.pattern), node.skip, node.skip_target, node.within_ms)
        self.runs: dict[Key, PartitionRun] = {}
        self.rows_seen = 0  # numbers the rows in processing order (Flink's EventId)
        self.columns = [c.name for c in node.input.columns]
        self.types: dict[str, pa.DataType] = {}
        self.define_refs = {v: _refs_of(e) for v, e in node.defines.items()}
        self.define_sql = {v: self._select(e, self.define_refs[v], "refs") for v, e in node.defines.items()}
        # conditions on the tested row alone are evaluated once per released row, not per partial match
        self.row_local = [
            v for v, refs in self.define_refs.items() if all(_own_row(node.refs[i], v) for i in refs)
        ]
        types = {f"$r{i}": ref.duck_type for i, ref in enumerate(node.refs)}
        self.in_python = {v: python_condition(e, types) for v, e in node.defines.items()}
        self.measure_refs = sorted({i for e in node.measures for i in _refs_of(e)})
        time = quote(node.time_column)
        self.order = ", ".join(
            [*(f"{quote(k)} NULLS FIRST" for k in node.partition)]
            + ([] if node.proctime else [f"epoch_ms({time})"])
            + [f"{quote(c)} {'DESC NULLS LAST' if d else 'ASC NULLS FIRST'}" for c, d in node.order]
            + [quote(SEQ)]
        )
        self._created = False

    # --- input -----------------------------------------------------------------------------

    def process(self, batch: pa.Table) -> list[pa.Table]:
        if not self.types:
            self.types = {c: batch.schema.field(c).type for c in self.columns}
        self.metrics.records_in += batch.num_rows
        if self.node.proctime:
            return self._match_arrived(batch)
        p, time = self.p, quote(self.node.time_column)
        columns = ", ".join([*(quote(c) for c in self.columns), quote(SEQ)])
        if not self._created:
            self.state.execute(
                f"CREATE TABLE {p}_rows AS SELECT {columns}, 0::BIGINT AS {_TIME} FROM batch LIMIT 0",
                batch=batch,
            )
            self._created = True
        on_time = f"{time} IS NOT NULL AND ({quote(WM)} = {MIN_WATERMARK} OR epoch_ms({time}) > {quote(WM)})"
        kept = self.state.scalar(f"SELECT count(*) FROM batch WHERE {on_time}", batch=batch) or 0
        self.state.execute(
            f"INSERT INTO {p}_rows SELECT {columns}, epoch_ms({time}) FROM batch WHERE {on_time}", batch=batch
        )
        self.metrics.late_dropped += batch.num_rows - kept
        return []

    def _match_arrived(self, batch: pa.Table) -> list[pa.Table]:
        """ORDER BY a processing-time attribute: Flink matches each row as it arrives."""
        time = quote(self.node.time_column)
        arrived = self.state.query(
            f"SELECT *, epoch_ms({time}) AS {_TIME} FROM batch ORDER BY {self.order}", batch=batch
        )
        watermark = self.input_watermarks[0] if self.input_watermarks else MIN_WATERMARK
        return self._match(arrived, None, watermark)

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        if not self._created:
            return []
        p = self.p
        released = self.state.query(
            f"SELECT * FROM {p}_rows WHERE {_TIME} <= {watermark} ORDER BY {self.order}"
        )
        self.state.execute(f"DELETE FROM {p}_rows WHERE {_TIME} <= {watermark}")
        return self._match(released, watermark, watermark)

    def _match(self, released: pa.Table, until: int | None, watermark: int) -> list[pa.Table]:
        """`released` (in order) through the automata, then time advanced to `until`; the
        matches' rows, stamped with `watermark`."""
        rows = released.to_pylist()
        for variable in self.row_local:
            holds = self._row_local(variable, released)
            for values, value in zip(rows, holds, strict=True):
                values[_holds(variable)] = value is True
        matches = self._run(_by_partition(rows, self.node.partition), until)
        self.runs = {k: r for k, r in self.runs.items() if not r.idle}
        waiting = (self.state.scalar(f"SELECT count(*) FROM {self.p}_rows") or 0) if self._created else 0
        self.metrics.state_rows = waiting + sum(len(pt.rows) for r in self.runs.values() for pt in r.partials)
        return self._released(self._measures(matches), watermark) if matches else []

    # --- matching ------------------------------------------------------------------------------

    def _run(
        self, partitions: dict[Key, list[dict[str, Any]]], until: int | None
    ) -> list[tuple[Key, Partial]]:
        """Every partition's rows through its automaton, one row per partition per step; then
        time advanced to `until` (the watermark) if given."""
        matches: list[tuple[Key, Partial]] = []
        queues = {key: list(reversed(rows)) for key, rows in partitions.items()}
        while queues:
            step = []
            for key, queue in queues.items():
                values = queue.pop()
                run = self.runs.setdefault(key, self.matcher.new_run())
                row = Row(self.rows_seen, values[_TIME], values)
                self.rows_seen += 1
                matches += [(key, m) for m in self.matcher.advance_time(run, row.time_ms)]
                step.append((key, run, row))
            holds = self._conditions(step)
            for key, run, row in step:
                matches += [(key, m) for m in self.matcher.offer(run, row, holds)]
            queues = {k: q for k, q in queues.items() if q}
        if until is not None:
            for key, run in self.runs.items():
                matches += [(key, m) for m in self.matcher.advance_time(run, until)]
        return matches

    def _conditions(self, step: Sequence[tuple[Key, PartitionRun, Row]]) -> dict[Condition, bool]:
        """Every DEFINE a step may need, one DuckDB query per variable over all partitions."""
        asked: dict[str, list[tuple[Partial, Row]]] = {}
        for _, run, row in step:
            for partial, variable in self.matcher.wanted(run):
                asked.setdefault(variable, []).append((partial, row))
        holds: dict[Condition, bool] = {}
        for variable, requests in asked.items():
            if variable not in self.node.defines:  # no DEFINE: any row
                holds.update({(id(partial), variable): True for partial, _ in requests})
            elif variable in self.row_local:
                holds.update({(id(p), variable): row.values[_holds(variable)] for p, row in requests})
            elif (evaluate := self.in_python[variable]) is not None:
                refs = [(f"$r{i}", self.node.refs[i]) for i in self.define_refs[variable]]
                for partial, row in requests:
                    rows = partial.rows + ((row, variable),)
                    holds[(id(partial), variable)] = (
                        evaluate({n: _ref_value(r, rows) for n, r in refs}) is True
                    )
            else:
                contexts = [partial.rows + ((row, variable),) for partial, row in requests]
                table = self._ref_table(self.define_refs[variable], contexts)
                values = self.state.query(self.define_sql[variable], refs=table).column("v").to_pylist()
                holds.update(
                    {(id(p), variable): v is True for (p, _), v in zip(requests, values, strict=True)}
                )
        return holds

    def _row_local(self, variable: str, released: pa.Table) -> list[Any]:
        """A condition on the tested row alone, for every released row at once."""
        refs = self.define_refs[variable]
        columns = {f"$r{i}": released.column(self.node.refs[i].column) for i in refs}
        table = pa.table(columns or {"$one": released.column(0)})
        return self.state.query(self.define_sql[variable], refs=table).column("v").to_pylist()

    def _select(self, expression: exp.Expression, refs: list[int], table: str) -> str:
        """SQL evaluating `expression` over a table of its `$r<i>` columns (cast to their types)."""
        cast = ", ".join(
            f"CAST({quote(f'$r{i}')} AS {self.node.refs[i].duck_type}) AS {quote(f'$r{i}')}" for i in refs
        )
        return f"SELECT {render.to_sql(expression)} AS v FROM (SELECT {cast or '1'} FROM {table})"

    def _ref_table(self, refs: list[int], contexts: list[tuple[tuple[Row, str], ...]]) -> pa.Table:
        columns = {f"$r{i}": self._ref_array(self.node.refs[i], contexts) for i in refs}
        if not columns:
            return pa.table({"$one": pa.array([1] * len(contexts), pa.int8())})
        return pa.table(columns)

    def _ref_array(self, ref: PatternRef, contexts: list[tuple[tuple[Row, str], ...]]) -> pa.Array:
        values = [_ref_value(ref, rows) for rows in contexts]
        if ref.kind in ("last", "first", "min", "max") and ref.column is not None:
            return pa.array(values, self.types[ref.column])
        return pa.array(values)

    # --- output --------------------------------------------------------------------------------

    def _measures(self, matches: list[tuple[Key, Partial]]) -> pa.Table:
        node = self.node
        contexts = [m.rows for _, m in matches]
        refs = self._ref_table(self.measure_refs, contexts)
        partition = {
            f"$k{i}": pa.array([key[i] for key, _ in matches], self.types[k])
            for i, k in enumerate(node.partition)
        }
        for name, array in partition.items():
            refs = refs.append_column(name, array)
        cast = [
            f"CAST({quote(f'$r{i}')} AS {node.refs[i].duck_type}) AS {quote(f'$r{i}')}"
            for i in self.measure_refs
        ]
        keys = [quote(n) for n in partition]
        select = [
            f"{quote(f'$k{i}')} AS {quote(c.name)}" for i, c in enumerate(node.columns[: len(node.partition)])
        ]
        select += [
            f"CAST({render.to_sql(e)} AS {c.duck_type}) AS {quote(c.name)}"
            for e, c in zip(node.measures, node.columns[len(node.partition) :], strict=True)
        ]
        inner = ", ".join(cast + keys) or "1"
        return self.state.query(f"SELECT {', '.join(select)} FROM (SELECT {inner} FROM refs)", refs=refs)


def _own_row(ref: PatternRef, variable: str) -> bool:
    """Does `ref`, in the DEFINE of `variable`, read the tested row itself?"""
    return ref.kind == "last" and ref.offset == 0 and ref.variable == variable


def _holds(variable: str) -> str:
    """The key under which a released row carries its row-local condition of `variable`."""
    return f"$holds:{variable}"


def _by_partition(rows: list[dict[str, Any]], partition: list[str]) -> dict[Key, list[dict[str, Any]]]:
    grouped: dict[Key, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(tuple(row[k] for k in partition), []).append(row)
    return grouped


def _refs_of(expression: exp.Expression) -> list[int]:
    """The PatternRef indexes an expression reads (its `$r<i>` columns)."""
    found = {int(m.group(1)) for c in expression.find_all(exp.Column) if (m := _REF.match(c.name))}
    return sorted(found)


def _ref_value(ref: PatternRef, rows: tuple[tuple[Row, str], ...]) -> Any:
    """A PatternRef's value over the rows of a (partial) match."""
    selected = [row.values for row, variable in rows if ref.variable is None or variable == ref.variable]
    if ref.kind == "last":
        return selected[-1 - ref.offset][ref.column] if ref.offset < len(selected) else None  # type: ignore[index]
    if ref.kind == "first":
        return selected[ref.offset][ref.column] if ref.offset < len(selected) else None  # type: ignore[index]
    if ref.column is None:
        return len(selected)  # COUNT(*)
    values = [v[ref.column] for v in selected if v[ref.column] is not None]
    if ref.kind == "count":
        return len(values)
    if not values:
        return None
    if ref.kind == "min":
        return min(values)
    if ref.kind == "max":
        return max(values)
    total = _wrapped(sum(values), ref.duck_type)
    if ref.kind == "sum":
        return total
    if isinstance(total, int):  # AVG of integers: their wrapped sum over the count, truncated toward zero
        quotient = abs(total) // len(values)
        return quotient if total >= 0 else -quotient
    return total / len(values)


_INTEGER_BITS = {"TINYINT": 8, "SMALLINT": 16, "INTEGER": 32, "BIGINT": 64}


def _wrapped(total: Any, duck_type: str) -> Any:
    """SUM (and AVG's sum) of integers wraps around at its type's width, as in Flink (Java
    arithmetic)."""
    bits = _INTEGER_BITS.get(duck_type)
    if bits is None or not isinstance(total, int):
        return total
    half = 1 << (bits - 1)
    return (total + half) % (1 << bits) - half
