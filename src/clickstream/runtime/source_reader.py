"""Turns a connector's decoded rows into the stream a job's operators see: computed columns,
arrival sequence numbers and per-record watermarks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import PARTITION, BaseSource
from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, constant, quote
from clickstream.runtime.state import JobState
from clickstream.runtime.watermarks import WatermarkTracker
from clickstream.sql.plan import ScanNode


class SourceReader:
    def __init__(self, scan: ScanNode, source: BaseSource, state: JobState,
                 settings: Settings) -> None:
        self.scan, self.source, self.state = scan, source, state
        idle = parse_duration_ms(settings.get("table.exec.source.idle-timeout"))
        self.watermarks = WatermarkTracker(getattr(source, "partitions", None) or 1, idle)
        self.sequence = 0
        computed = [f"{sql} AS {quote(name)}" for name, sql in scan.computed_sql]
        watermark = [f"epoch_ms({scan.watermark_sql}) AS __wmv"] if scan.watermark_sql else []
        # Only the derived columns are computed; the physical ones are kept as they are.
        self._sql = f"SELECT {', '.join(computed + watermark)} FROM batch" if (
            computed or watermark) else None

    @property
    def watermark(self) -> int:
        return self.watermarks.current

    @property
    def has_watermark(self) -> bool:
        return self.scan.watermark_sql is not None

    def poll(self, max_rows: int) -> pa.Table | None:
        raw = self.source.poll(max_rows)
        if raw is None or raw.num_rows == 0:
            return None
        partitions = None
        if PARTITION in raw.column_names:
            partitions = raw.column(PARTITION)
            raw = raw.drop_columns([PARTITION])
        batch = raw
        if self._sql:
            derived = self.state.query(self._sql, batch=raw)
            for name in derived.column_names:
                batch = batch.append_column(name, derived.column(name))
        n = batch.num_rows
        if "__wmv" in batch.column_names:
            before = self.watermarks.assign(batch.column("__wmv"), partitions)
            batch = batch.drop_columns(["__wmv"])
        else:
            before = constant(MIN_WATERMARK, n, pa.int64())
        seq = pa.array(np.arange(self.sequence, self.sequence + n, dtype=np.int64))
        self.sequence += n
        return batch.append_column(SEQ, seq).append_column(WM, before)

    def exhausted(self) -> bool:
        return self.source.exhausted()
