"""The `blackhole` connector: swallows everything (for benchmarks and tests)."""

from __future__ import annotations

import pyarrow as pa

from clickstream.connectors.base import BaseSink
from clickstream.connectors.options import Option

OPTIONS: tuple[Option, ...] = ()  # as Flink's blackhole: none


class BlackholeSink(BaseSink):
    accepts_updates_without_key = True
    rows = 0

    @property
    def is_upsert(self) -> bool:
        return False

    def write(self, batch: pa.Table) -> None:
        self.rows += batch.num_rows
