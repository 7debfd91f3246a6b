"""Limit: `LIMIT n [OFFSET m]` without ORDER BY, on an append-only stream (Flink's Limit).

The rows after the first m, up to n of them, in arrival order; every later row is dropped. Once
it has passed its n rows the operator is complete, and a query whose every path ends in a
complete Limit has ended (the executor stops it, also on an unbounded source).
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.operators.base import BaseOperator
from clickstream.sql.plan import LimitNode


class LimitOperator(BaseOperator):
    name = "Limit"

    def __init__(self, node: LimitNode) -> None:
        super().__init__()
        self.offset, self.fetch = node.offset, node.fetch
        self.seen = 0  # rows that reached the operator

    @property
    def complete(self) -> bool:
        return self.seen >= self.offset + self.fetch

    def process(self, batch: pa.Table) -> list[pa.Table]:
        start = max(self.offset - self.seen, 0)
        end = min(self.offset + self.fetch - self.seen, batch.num_rows)
        self.seen += batch.num_rows
        out = [batch.slice(start, end - start)] if end > start else []
        return self._count(batch, out)
