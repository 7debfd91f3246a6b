"""Calc: projection and filter, one DuckDB query per batch."""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import hidden_columns, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import CalcNode


class CalcOperator(BaseOperator):
    name = "Calc"

    def __init__(self, node: CalcNode, state: JobState) -> None:
        super().__init__()
        self.state = state
        select = ", ".join(f"{sql} AS {quote(column.name)}"
                           for sql, column in zip(node.projections, node.columns, strict=True))
        where = f" WHERE {node.condition}" if node.condition else ""
        self._select, self._where = select, where

    def process(self, batch: pa.Table) -> list[pa.Table]:
        columns = [self._select] if self._select else []
        columns += [quote(h) for h in hidden_columns(batch)]
        result = self.state.query(f"SELECT {', '.join(columns)} FROM batch{self._where}",
                                  batch=batch)
        return self._count(batch, [result] if result.num_rows else [])
