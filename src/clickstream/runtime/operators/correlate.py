"""Correlate: each row joined with the elements of its ARRAY (or entries of its MAP), one DuckDB
query per batch and no state (Flink's Correlate of UNNEST).

DuckDB's `unnest` in a SELECT list expands the batch in row order, elements in array order; its
`generate_subscripts` beside it numbers them (WITH ORDINALITY). An outer UNNEST unnests a one-NULL
list where the value is NULL or empty, so such a row stays, with NULLs. Every output row keeps its
input row's changelog kind and watermark, and is numbered anew (one input row may become several).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlglot import exp

from clickstream.runtime.batch import SEQ, hidden_columns, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import CorrelateNode
from clickstream.sql.render import substituted, to_sql


class CorrelateOperator(BaseOperator):
    name = "Correlate"

    def __init__(self, node: CorrelateNode, state: JobState) -> None:
        super().__init__()
        self.node = node
        self.state = state
        self._sql: str | None = None

    def process(self, batch: pa.Table) -> list[pa.Table]:
        if self._sql is None:
            self._sql = self._query(hidden_columns(batch))
        out = self.state.query(self._sql, batch=batch)
        if not out.num_rows:
            return self._count(batch, [])
        if SEQ in out.column_names:
            seq = pa.array(np.arange(self.emitted, self.emitted + out.num_rows, dtype=np.int64))
            out = out.set_column(out.column_names.index(SEQ), SEQ, seq)
        self.emitted += out.num_rows
        return self._count(batch, [out])

    def _query(self, hidden: list[str]) -> str:
        node = self.node
        values = to_sql(node.expression)
        if node.kind == "map":
            values = f"map_entries({values})"
        if node.kind == "rows":
            values = f"list_filter({values}, lambda __e: __e IS NOT NULL)"
        if node.condition is not None:
            values = f"list_filter({values}, lambda __e: coalesce({self._on_element()}, false))"
        count = f"len({values})"
        if node.outer:
            values = f"CASE WHEN {count} > 0 THEN {values} ELSE [NULL] END"
        inner = f"SELECT *, unnest({values}) AS __u, {count} AS __n"
        if node.ordinality:
            inner += f", generate_subscripts({values}, 1) AS __pos"
        inputs = [quote(c.name) for c in node.input.columns]
        added = [
            f"{to_sql(e)} AS {quote(c.name)}"
            for e, c in zip(self._elements(), node.columns[len(inputs) :], strict=False)
        ]
        if node.ordinality:
            added.append(
                f"CAST(CASE WHEN __n > 0 THEN __pos END AS INTEGER) AS {quote(node.columns[-1].name)}"
            )
        select = ", ".join(inputs + added + [quote(h) for h in hidden])
        return f"SELECT {select} FROM ({inner} FROM batch)"

    def _elements(self, element: str = "__u") -> list[exp.Expression]:
        """The new columns' values, read from an unnested element."""
        value = exp.column(element)
        if self.node.kind == "map":
            return [_field(value, "key"), _field(value, "value")]
        if self.node.kind == "rows":
            return [_field(value, f) for f in self.node.fields]
        return [value]

    def _on_element(self) -> str:
        """The ON condition for the element `__e` of the row it is tested with."""
        assert self.node.condition is not None
        added = self.node.columns[len(self.node.input.columns) :]
        values = {c.name: e for c, e in zip(added, self._elements("__e"), strict=False)}
        return to_sql(substituted(self.node.condition, values))


def _field(value: exp.Expression, name: str) -> exp.Expression:
    return exp.Anonymous(this="struct_extract", expressions=[value, exp.Literal.string(name)])
