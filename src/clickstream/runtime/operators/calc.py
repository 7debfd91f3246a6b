"""Calc: projection and filter, one DuckDB query per batch.

Consecutive Calcs of a plan (a view's projection, the aggregate's argument projection, the sink's
casts) fuse into one operator whose query nests them, so the batch is read and written once.
Calcs that only select columns and compare them with literals run on Arrow compute instead
(`arrow_calc`).
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import hidden_columns, quote
from clickstream.runtime.operators.arrow_calc import ArrowCalc, compile_calc
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import CalcNode
from clickstream.sql.render import to_sql


class CalcOperator(BaseOperator):
    name = "Calc"
    wiring = BaseOperator.wiring | {"_arrow", "_schema"}  # compiled for the input schema

    def __init__(self, nodes: list[CalcNode], state: JobState) -> None:
        """`nodes` in data-flow order: nodes[0] reads the batch, each next one reads the last."""
        super().__init__()
        self.state = state
        self.nodes = nodes
        self._arrow: ArrowCalc | None = None
        self._schema: pa.Schema | None = None  # the input schema _arrow was compiled for

    def process(self, batch: pa.Table) -> list[pa.Table]:
        if batch.schema != self._schema:
            self._schema = batch.schema
            self._arrow = compile_calc(self.nodes, batch.schema)
        if self._arrow is not None:
            result = self._arrow(batch)
            return self._count(batch, [result] if result.num_rows else [])
        hidden = [quote(h) for h in hidden_columns(batch)]
        sql = "batch"
        for node in self.nodes:
            columns = [
                f"{to_sql(expr)} AS {quote(column.name)}"
                for expr, column in zip(node.projections, node.columns, strict=True)
            ]
            where = f" WHERE {to_sql(node.condition)}" if node.condition else ""
            sql = f"(SELECT {', '.join(columns + hidden)} FROM {sql}{where})"
        result = self.state.query(f"SELECT * FROM {sql}", batch=batch)
        return self._count(batch, [result] if result.num_rows else [])
