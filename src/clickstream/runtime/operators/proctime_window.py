"""WindowAggregate on a processing-time attribute: TUMBLE, HOP and CUMULATE windows (TVFs or
legacy group windows) whose time is the job clock's when a row is processed, fired when the clock
passes a window's end, with or without new input.

It is the event-time operator with the clock for both the rows' time and the watermark: a row
takes the time it is processed at (so no row is late), and each turn of the job loop fires the
windows the clock has passed (Flink's processing-time timer at a window's end - 1). Event-time
watermarks do not fire these windows, nor does the end of a bounded input: Flink does not fire
pending processing-time timers when its input ends, so a window still open then is never emitted.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, WM, constant
from clickstream.runtime.clock import Clock
from clickstream.runtime.operators.window_aggregate import WindowAggregateOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import WindowAggregateNode


class ProcTimeWindowAggregateOperator(WindowAggregateOperator):
    name = "WindowAggregate"
    timed = True

    def __init__(self, node: WindowAggregateNode, state: JobState, time_zone: str, clock: Clock) -> None:
        super().__init__(node, state, time_zone)
        self.clock = clock

    def process(self, batch: pa.Table) -> list[pa.Table]:
        """The rows, at the time they are processed; none is behind any watermark."""
        name = self.node.window.time_column
        column = batch.schema.field(name)
        now = pa.scalar(self.clock.now_ms() * 1000, pa.timestamp("us", tz=column.type.tz))
        batch = batch.set_column(
            batch.column_names.index(name), column, pa.repeat(now, batch.num_rows).cast(column.type)
        )
        batch = batch.set_column(
            batch.column_names.index(WM), WM, constant(MIN_WATERMARK, batch.num_rows, pa.int64())
        )
        return super().process(batch)

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        return []

    def on_processing_time(self, now_ms: int) -> list[pa.Table]:
        watermark = min(self.input_watermarks, default=MIN_WATERMARK)
        return [_restamped(out, watermark) for out in super().on_watermark(now_ms)]


def _restamped(batch: pa.Table, watermark: int) -> pa.Table:
    """Window results carry the input's watermark, not the clock's time (they have no rowtime)."""
    return batch.set_column(batch.column_names.index(WM), WM, constant(watermark, batch.num_rows, pa.int64()))
