"""Union: the rows of every input of a UNION ALL, as they come.

Each input already gives the union's columns (a Calc before it casts them). Rows leave numbered
in the order they reached the union, and carry the union's watermark just before them: the least
of the inputs' watermarks, their own input's being the one on the row. An append-only input of an
updating union gets the `+I` kind.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clickstream.runtime.batch import MAX_WATERMARK, OP, SEQ, WM, constant
from clickstream.runtime.operators.base import BaseOperator
from clickstream.sql.plan import UnionNode


class UnionOperator(BaseOperator):
    name = "Union"

    def __init__(self, node: UnionNode) -> None:
        super().__init__()
        self.arity = len(node.branches)
        self.columns = [c.name for c in node.columns]
        self.updating = node.updating
        self.emitted = 0

    def process(self, batch: pa.Table, port: int = 0) -> list[pa.Table]:  # type: ignore[override]
        rows = batch.num_rows
        if self.updating and OP not in batch.column_names:
            batch = batch.append_column(OP, constant(0, rows, pa.int8()))
        if SEQ in batch.column_names:
            seq = pa.array(np.arange(self.emitted, self.emitted + rows, dtype=np.int64))
            batch = batch.set_column(batch.column_names.index(SEQ), SEQ, seq)
        self.emitted += rows
        if WM in batch.column_names:
            others = [w for i, w in enumerate(self.input_watermarks) if i != port]
            floor = min(others, default=MAX_WATERMARK)
            watermark = pc.min_element_wise(batch[WM], pa.scalar(floor, pa.int64()))
            batch = batch.set_column(batch.column_names.index(WM), WM, watermark)
        hidden = [h for h in (SEQ, WM, OP) if h in batch.column_names]
        return self._count(batch, [batch.select(self.columns + hidden)])
