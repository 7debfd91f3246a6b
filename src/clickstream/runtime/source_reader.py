"""Turns a connector's decoded rows into the stream a job's operators see: computed columns,
arrival sequence numbers and per-record watermarks.

A bounded source that allows it (`BaseSource.read_ahead`) is polled one batch ahead on a
background thread: reading, decoding and stamping the next batch (file reads and DuckDB's JSON
parsing release the GIL) then overlaps with the operators working on the current one. Batches are
the same as without read-ahead, so results are too; the reader's watermark is the one after the
last batch handed to the job.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import PARTITION, BaseSource
from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, constant, quote
from clickstream.runtime.state import JobState
from clickstream.runtime.watermarks import WatermarkTracker
from clickstream.sql.plan import ScanNode

_END = object()  # the read-ahead thread's last item: the source is exhausted


class SourceReader:
    def __init__(self, scan: ScanNode, source: BaseSource, state: JobState,
                 settings: Settings) -> None:
        self.scan, self.source, self.state = scan, source, state
        self.max_rows = settings.mini_batch_size
        idle = parse_duration_ms(settings.get("table.exec.source.idle-timeout"))
        self.watermarks = WatermarkTracker(getattr(source, "partitions", None) or 1, idle)
        self.sequence = 0
        computed = [f"{sql} AS {quote(name)}" for name, sql in scan.computed_sql]
        watermark = [f"epoch_ms({scan.watermark_sql}) AS __wmv"] if scan.watermark_sql else []
        # Only the derived columns are computed; the physical ones are kept as they are.
        self._sql = f"SELECT {', '.join(computed + watermark)} FROM batch" if (
            computed or watermark) else None
        self._ahead: _ReadAhead | None = None
        self._ended = False
        self._watermark = MIN_WATERMARK  # after the last batch handed out, with read-ahead
        if source.bounded and source.read_ahead:
            # starts reading now, while the rest of the job is being built
            self._ahead = _ReadAhead(self._read, source.exhausted, state)

    @property
    def watermark(self) -> int:
        return self._watermark if self._ahead is not None else self.watermarks.current

    @property
    def has_watermark(self) -> bool:
        return self.scan.watermark_sql is not None

    def poll(self) -> pa.Table | None:
        """The next batch (at most `table.exec.mini-batch.size` rows), None if there is none now."""
        if self._ahead is None:
            item = self._read(self.state)
            return item[0] if item is not None else None
        if self._ended:
            return None
        item = self._ahead.next()
        if item is None:
            self._ended = True
            return None
        batch, self._watermark = item
        return batch

    def _read(self, state: JobState) -> tuple[pa.Table, int] | None:
        """The next batch with its derived columns, sequence numbers and per-row watermarks,
        and the watermark after it."""
        raw = self.source.poll(self.max_rows)
        if raw is None or raw.num_rows == 0:
            return None
        partitions = None
        if PARTITION in raw.column_names:
            partitions = raw.column(PARTITION)
            raw = raw.drop_columns([PARTITION])
        batch = raw
        if self._sql:
            derived = state.query(self._sql, batch=raw)
            for name in derived.column_names:
                batch = batch.append_column(name, derived.column(name))
        return self._stamp(batch, partitions), self.watermarks.current

    def _stamp(self, batch: pa.Table, partitions: pa.Array | None) -> pa.Table:
        """Arrival sequence numbers and the watermark just before each row."""
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
        if self._ahead is not None:
            return self._ended
        return self.source.exhausted()

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.stop()
        self.source.close()


class _ReadAhead:
    """Runs `read` on a thread, one item ahead; `next()` hands the items out in order, then None
    once the source is exhausted. An error on the thread is raised by `next()`."""

    def __init__(self, read: Callable[[JobState], object | None], exhausted: Callable[[], bool],
                 state: JobState) -> None:
        self._read, self._exhausted, self._state = read, exhausted, state.cursor()
        self._items: queue.Queue = queue.Queue(maxsize=1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="source-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                item = self._read(self._state)
                if item is not None:
                    self._put(item)
                elif self._exhausted():  # (None also when a whole batch was malformed)
                    self._put(_END)
                    return
        except BaseException as error:  # handed to the job's thread, which raises it
            self._put(error)

    def _put(self, item: object) -> None:
        while not self._stopping.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> object | None:
        item = self._items.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._state.close()
