"""ReplicateRows: each row as many times as its count column says (none for 0), without that
column; every copy keeps the row's change kind, so a retracted row retracts all its copies."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.runtime.batch import SEQ
from clickstream.runtime.operators.base import BaseOperator
from clickstream.sql.plan import ReplicateRowsNode


class ReplicateRowsOperator(BaseOperator):
    name = "ReplicateRows"

    def __init__(self, node: ReplicateRowsNode) -> None:
        super().__init__()
        self.count = node.count

    def process(self, batch: pa.Table) -> list[pa.Table]:
        counts = np.asarray(batch[self.count].fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        indices = np.repeat(np.arange(batch.num_rows), np.maximum(counts, 0))
        out = batch.drop_columns([self.count]).take(pa.array(indices))
        if SEQ in out.column_names:  # copies are numbered apart, in order
            seq = pa.array(np.arange(self.emitted, self.emitted + out.num_rows, dtype=np.int64))
            out = out.set_column(out.column_names.index(SEQ), SEQ, seq)
        self.emitted += out.num_rows
        return self._count(batch, [out] if out.num_rows else [])
