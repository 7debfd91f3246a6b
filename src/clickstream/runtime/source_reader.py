"""Turns a connector's decoded rows into the stream a job's operators see: computed columns,
arrival sequence numbers and per-record watermarks.

A bounded source that allows it (`BaseSource.read_ahead`) is polled one batch ahead on a
background thread: reading, decoding and stamping the next batch (file reads and DuckDB's JSON
parsing release the GIL) then overlaps with the operators working on the current one. Batches are
the same as without read-ahead, so results are too; the reader's watermark is the one after the
last batch handed to the job.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from clickstream.config import Settings, parse_duration_ms
from clickstream.connectors.base import PARTITION, BaseSource
from clickstream.connectors.filesystem import DeadLetters
from clickstream.runtime import unreadable_rows
from clickstream.runtime.batch import MIN_WATERMARK, OP, SEQ, WM, constant, quote
from clickstream.runtime.clock import Clock
from clickstream.runtime.closing import close_all
from clickstream.runtime.state import JobState
from clickstream.runtime.watermarks import WatermarkTracker
from clickstream.schema import plan_name
from clickstream.sql.plan import ScanNode
from clickstream.sql.render import to_sql

_END = object()  # the read-ahead thread's last item: the source is exhausted
# a batch (None: none now), the watermark after it, the reader's position after it
Read = tuple[pa.Table | None, int, dict]


class SourceReader:
    def __init__(
        self, scan: ScanNode, source: BaseSource, state: JobState, settings: Settings, clock: Clock
    ) -> None:
        self.scan, self.source, self.state, self.clock = scan, source, state, clock
        self.max_rows = settings.mini_batch_size
        # a source's own idle timeout (Kafka's `scan.watermark.idle-timeout`) wins over the job's
        idle = getattr(source, "idle_timeout_ms", None)
        if idle is None:
            idle = parse_duration_ms(settings.get("table.exec.source.idle-timeout"))
        self.watermarks = WatermarkTracker(getattr(source, "partitions", None) or 1, idle)
        self.sequence = 0
        # Derived columns: PROCTIME() and a `ts - INTERVAL ...` watermark are computed here, the
        # others by one query over the batch (the physical columns are kept as they are). A
        # PROCTIME() column that another computed column reads stays in the query.
        read = {c.name for _, e in scan.computed_expressions for c in e.find_all(exp.Column)}
        self._proctime = [name for name in scan.proctime_columns if name not in read]
        computed = [
            f"{to_sql(e)} AS {quote(name)}"
            for name, e in scan.computed_expressions
            if name not in self._proctime
        ]
        watermark = (
            [f"epoch_ms({to_sql(scan.watermark_expression)}) AS __wmv"]
            if scan.watermark_expression and not scan.watermark_delay
            else []
        )
        self._sql = (
            f"SELECT {', '.join(computed + watermark)} FROM batch" if (computed or watermark) else None
        )
        self.dead_letters = DeadLetters(scan.table, settings)
        self.rejected = 0  # rows sent to the dead letters here (see `_without_unplaceable`)
        self._ahead: _ReadAhead | None = None
        self._ended = False
        self._watermark = MIN_WATERMARK  # after the last batch handed out, with read-ahead
        # what a checkpoint keeps of this reader, as of the last batch handed out (a read-ahead
        # thread is further on)
        self.position = self._position(source.position())
        # read one batch ahead on a thread, from the first poll (after a checkpoint's restore)
        self._reads_ahead = source.bounded and source.read_ahead

    @property
    def watermark(self) -> int:
        return self._watermark if self._ahead is not None else self.watermarks.current

    @property
    def idle(self) -> bool:
        return self.watermarks.idle

    @property
    def has_watermark(self) -> bool:
        return self.scan.watermark_expression is not None

    def poll(self) -> pa.Table | None:
        """The next batch (at most `table.exec.mini-batch.size` rows), None if there is none now."""
        if self._reads_ahead and self._ahead is None:
            self._ahead = _ReadAhead(self._read, self.source.exhausted, self.state)
        if self._ahead is None:
            batch, _, self.position = self._read(self.state)
            return batch
        if self._ended:
            return None
        item = self._ahead.next()
        if item is None:
            self._ended = True
            return None
        batch, self._watermark, self.position = item
        return batch

    def _read(self, state: JobState) -> Read:
        """The next batch with its derived columns, sequence numbers and per-row watermarks (None
        if there is none), the watermark after it and the source's position after it."""
        raw = self.source.poll(self.max_rows)
        source_position = self.source.position()
        if raw is None or raw.num_rows == 0:
            return None, self.watermarks.current, self._position(source_position)
        partitions = ops = None
        if PARTITION in raw.column_names:
            partitions = raw.column(PARTITION)
            raw = raw.drop_columns([PARTITION])
        if OP in raw.column_names:  # a changelog source: each row's kind of change
            ops = raw.column(OP)
            raw = raw.drop_columns([OP])
        raw = raw.rename_columns([plan_name(name) for name in raw.column_names])
        batch, kept = self._derive(raw, state)
        if kept is not None:
            mask = pa.array(kept)
            partitions = partitions.filter(mask) if partitions is not None else None
            ops = ops.filter(mask) if ops is not None else None
        if ops is not None:
            batch = batch.append_column(OP, ops)
        batch, partitions = self._without_unplaceable(batch, partitions)
        stamped = self._stamp(batch, partitions)
        if ops is not None:  # `_op` after the other hidden columns, as operators emit it
            stamped = stamped.drop_columns([OP]).append_column(OP, stamped.column(OP))
        return stamped, self.watermarks.current, self._position(source_position)

    def _without_unplaceable(
        self, batch: pa.Table, partitions: pa.Array | None
    ) -> tuple[pa.Table, pa.Array | None]:
        """A row without a rowtime cannot be placed in event time: Flink fails the job ("RowTime
        field should not be null"); we send the row to the table's dead letters, count it with the
        malformed records, and go on. So too a rowtime outside Flink's TIMESTAMP range (one a
        computed column made: those read from the record are checked by its decoder)."""
        rowtime = self.scan.rowtime
        if rowtime is None:
            return batch, partitions
        times = batch.column(rowtime)
        outside = unreadable_rows.outside_time_range(times)
        if times.null_count == 0 and not pc.any(outside).as_py():
            return batch, partitions
        present = pc.and_(pc.is_valid(times), pc.invert(outside))
        if OP in batch.column_names:
            # a tombstone may hold only its key: it deletes a row, it is not placed in time
            present = pc.or_(present, pc.equal(batch.column(OP), 3))
        dropped = batch.filter(pc.invert(present))
        null = f"the rowtime attribute '{rowtime}' is NULL"
        far = f"the rowtime attribute '{rowtime}' is outside years 0001 to 9999"
        reasons = [far if valid else null for valid in pc.is_valid(dropped.column(rowtime)).to_pylist()]
        self._dead_letters(dropped, reasons, "rowtime")
        return batch.filter(present), partitions.filter(present) if partitions is not None else None

    def _dead_letters(self, rows: pa.Table, reasons: list[str], stage: str) -> None:
        rows = rows.drop_columns([c for c in ("__wmv", OP) if c in rows.column_names])
        records = [_as_json(row) for row in _with_times_as_text(rows).to_pylist()]
        self.dead_letters.write(list(zip(records, reasons, strict=True)), stage)
        self.rejected += rows.num_rows

    def _derive(self, raw: pa.Table, state: JobState) -> tuple[pa.Table, np.ndarray | None]:
        """The batch with its computed columns (in declaration order) and `__wmv`; and which
        rows were kept (None: all), without those a computed column fails on."""
        derived, kept = None, None
        if self._sql:
            sql = self._sql
            derived, kept, reasons = unreadable_rows.query_rows(lambda b: state.query(sql, batch=b), raw)
            if kept is not None:
                self._dead_letters(raw.filter(pa.array(~kept)), reasons, "computed columns")
                raw = raw.filter(pa.array(kept))
        now = pa.scalar(self.clock.now_ms() * 1000, pa.timestamp("us", tz=state.time_zone))
        batch = raw
        for name, _ in self.scan.computed_expressions:
            column = pa.repeat(now, raw.num_rows) if name in self._proctime else derived.column(name)
            batch = batch.append_column(name, column)
        if derived is not None and "__wmv" in derived.column_names:
            batch = batch.append_column("__wmv", derived.column("__wmv"))
        elif self.scan.watermark_delay:
            rowtime, delay = self.scan.watermark_delay
            batch = batch.append_column("__wmv", _epoch_ms(batch.column(rowtime), delay))
        return batch, kept

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

    def _position(self, source_position: object) -> dict:
        """Where the source is, the next sequence number and the watermark per partition."""
        return {
            "source": source_position,
            "sequence": self.sequence,
            "watermarks": dict(self.watermarks.partitions),
        }

    def snapshot(self) -> dict:
        """What a checkpoint keeps of this reader (as of the last batch handed out)."""
        return {**self.position, "watermark": self.watermark}

    def restore(self, saved: dict) -> None:
        self.source.seek(saved["source"])
        self.position = {k: saved[k] for k in ("source", "sequence", "watermarks")}
        self.sequence = saved["sequence"]
        self.watermarks.restore(saved["watermarks"])
        self._watermark = saved["watermark"]

    def exhausted(self) -> bool:
        if self._reads_ahead:
            return self._ended
        return self.source.exhausted()

    def close(self) -> None:
        close_all([*([self._ahead.stop] if self._ahead is not None else []), self.source.close])


def _epoch_ms(times: pa.ChunkedArray, minus: int) -> pa.ChunkedArray:
    """Epoch milliseconds of timestamps (rounded half away from zero, as DuckDB's epoch_ms),
    less `minus`."""
    values = pc.cast(times, pa.int64())
    if times.type.unit == "s":
        values = pc.multiply(values, 1000)
    elif times.type.unit != "ms":
        per_ms = 1000 if times.type.unit == "us" else 1_000_000
        half = pc.if_else(pc.less(values, 0), -(per_ms // 2), per_ms // 2)
        values = pc.divide(pc.add(values, half), per_ms)  # Arrow's integer division truncates
    return pc.subtract(values, minus)


class _ReadAhead:
    """Runs `read` on a thread, one item ahead; `next()` hands the items out in order, then None
    once the source is exhausted. An error on the thread is raised by `next()`."""

    def __init__(
        self, read: Callable[[JobState], Read], exhausted: Callable[[], bool], state: JobState
    ) -> None:
        self._read, self._exhausted, self._state = read, exhausted, state.cursor()
        self._items: queue.Queue = queue.Queue(maxsize=1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="source-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                item = self._read(self._state)
                if item[0] is not None:
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

    def next(self) -> Read | None:
        item = self._items.get()
        if item is _END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        self._stopping.set()
        # the item waiting to be taken is dropped: a thread blocked handing over the next one
        # then returns at once, instead of at its put's timeout (a job stopped mid-source, a
        # LIMIT met or a crash, waited up to 0.1 s here)
        with contextlib.suppress(queue.Empty):
            self._items.get_nowait()
        self._thread.join()
        self._state.close()


def _with_times_as_text(rows: pa.Table) -> pa.Table:
    """Times as text: a time outside Python's years 1 to 9999 has no `datetime`."""
    for i, field in enumerate(rows.schema):
        if pa.types.is_timestamp(field.type):
            rows = rows.set_column(i, field.name, pc.cast(rows.column(i), pa.string()))
    return rows


def _as_json(row: dict) -> str:
    return orjson.dumps(row, default=str).decode()
