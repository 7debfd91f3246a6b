"""Expand: each row once per grouping set, stateless (Flink's Expand under GROUPING SETS).

The copies of one row follow each other (row 1 in every set, then row 2, ...), so every group
sees its rows in arrival order, as FIRST_VALUE, LAST_VALUE and LISTAGG need. A copy keeps the
row's changelog kind, sequence number and watermark: a retraction retracts in every set.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.runtime.operators.base import BaseOperator
from clickstream.sql.plan import ExpandNode


class ExpandOperator(BaseOperator):
    name = "Expand"

    def __init__(self, node: ExpandNode) -> None:
        super().__init__()
        self.node = node

    def process(self, batch: pa.Table) -> list[pa.Table]:
        if not batch.num_rows:
            return self._count(batch, [])
        copies = [self._copy(batch, i, nulled) for i, nulled in enumerate(self.node.nulled)]
        sets, rows = len(copies), batch.num_rows
        order = (np.arange(rows)[:, None] + np.arange(sets)[None, :] * rows).ravel()
        out = pa.concat_tables(copies).take(pa.array(order))
        return self._count(batch, [out])

    def _copy(self, batch: pa.Table, number: int, nulled: list[str]) -> pa.Table:
        columns = [
            pa.nulls(batch.num_rows, column.type) if name in nulled else column
            for name, column in zip(batch.column_names, batch.columns, strict=True)
        ]
        ids = pa.array(np.full(batch.num_rows, number, dtype=np.int32))
        return pa.table(columns + [ids], names=batch.column_names + [self.node.set_column])
