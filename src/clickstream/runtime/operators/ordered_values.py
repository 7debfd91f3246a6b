"""FIRST_VALUE, LAST_VALUE, LISTAGG and the JSON aggregates over an updating input: each group's
values in arrival order, a retraction removing the oldest equal value, as Flink's
`*WithRetractAggFunction`s keep them (a list for LISTAGG and JSON_ARRAYAGG, values by arrival for
FIRST_VALUE and LAST_VALUE, a map by key for JSON_OBJECTAGG, whose members are `key value` texts).

Per (group, value) the values form a queue: additions join at the back, retractions leave from the
front. The queue's content after a batch does not depend on how additions and retractions
interleave within it (as long as no retraction finds it empty, which a changelog guarantees), so
a batch is applied at once: its additions are appended, numbered after every stored value, then
the oldest values are removed, as many per (group, value) as the batch retracts.
"""

from __future__ import annotations

from collections.abc import Callable

from clickstream.runtime.batch import SEQ, quote
from clickstream.runtime.operators.aggregates import DISTINCT_VALUE, accumulators
from clickstream.runtime.state import JobState
from clickstream.sql.plan import AggCall


class OrderedValues:
    """The stored values of one aggregate call, in table `{prefix}_l{index}`."""

    def __init__(self, state: JobState, prefix: str, index: int, call: AggCall, keys: list[str]) -> None:
        self.state, self.index, self.call, self.keys = state, index, call, keys
        self.table = f"{prefix}_l{index}"
        self.batch = f"{prefix}_lb"  # the batch's non-NULL values, numbered

    def _on(self, a: str, b: str) -> str:
        same = [f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in self.keys]
        return " AND ".join(same + [f"{a}.{DISTINCT_VALUE} = {b}.{DISTINCT_VALUE}"])

    def create(self, rows: str) -> None:
        """`rows`: the batch table (keys, arguments, `__sign`, `__row` its arrival position)."""
        self.state.execute(f"CREATE TABLE {self.table} AS {self._values(rows, 0)} LIMIT 0")

    def _values(self, rows: str, base: int, extra: str = "") -> str:
        arg = quote(self.call.argument or "")
        keys = ", ".join(self.keys)
        return (
            f"SELECT {keys}, {arg} AS {DISTINCT_VALUE}, {base} + __row AS {quote(SEQ)}{extra} "
            f"FROM {rows} WHERE {arg} IS NOT NULL"
        )

    def apply(self, rows: str) -> None:
        table, batch, seq = self.table, self.batch, quote(SEQ)
        base = self.state.scalar(f"SELECT coalesce(max({seq}), 0) FROM {table}") or 0
        self.state.execute(f"CREATE OR REPLACE TEMP TABLE {batch} AS {self._values(rows, base, ', __sign')}")
        self.state.execute(f"INSERT INTO {table} SELECT * EXCLUDE (__sign) FROM {batch} WHERE __sign > 0")
        keys = ", ".join(self.keys)
        retracted = (
            f"SELECT {keys}, {DISTINCT_VALUE}, count(*) AS __n FROM {batch} WHERE __sign < 0 "
            f"GROUP BY {keys}, {DISTINCT_VALUE}"
        )
        oldest = (
            f"SELECT l.* FROM (SELECT l.*, row_number() OVER (PARTITION BY {keys}, {DISTINCT_VALUE} "
            f"ORDER BY {seq}) AS __rank FROM {table} l WHERE EXISTS (SELECT 1 FROM ({retracted}) r "
            f"WHERE {self._on('l', 'r')})) l JOIN ({retracted}) r ON {self._on('l', 'r')} "
            "WHERE l.__rank <= r.__n"
        )
        same = " AND ".join([f"t.{k} IS NOT DISTINCT FROM o.{k}" for k in self.keys] + [f"t.{seq} = o.{seq}"])
        self.state.execute(f"DELETE FROM {table} t USING ({oldest}) o WHERE {same}")

    def results(self, touched: str, on: Callable[[str, str], str]) -> tuple[list[str], str]:
        """The accumulator columns (`l<i>.acc<i>...`) and the join that brings them, per group of
        `touched` (a table of group keys); `on(a, b)` matches the groups of tables a and b."""
        i, keys = self.index, ", ".join(self.keys)
        partials = [f"{sql} AS {name}" for name, sql, _ in accumulators(i, self.call, DISTINCT_VALUE)]
        columns = [f"l{i}.{name}" for name, _, _ in accumulators(i, self.call)]
        join = (
            f" LEFT JOIN (SELECT {keys}, {', '.join(partials)} FROM {self.table} m WHERE EXISTS "
            f"(SELECT 1 FROM {touched} t WHERE {on('m', 't')}) GROUP BY {keys}) l{i} "
            f"ON {on(f'l{i}', 'a')}"
        )
        return columns, join
