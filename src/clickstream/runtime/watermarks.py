"""Watermarks per record: the running maximum of the WATERMARK expression, vectorized.

Each record sees the watermark as it was just before it, so a record is late or not regardless of
how the input is cut into batches. With partitions (a log topic's), each partition keeps its own
running maximum and the source's watermark is the minimum over partitions, as in Flink; a
partition that has sent nothing for `table.exec.source.idle-timeout` stops holding it back.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK


class WatermarkTracker:
    """The watermark of one source, over its partitions."""

    def __init__(self, partitions: int = 1, idle_timeout_ms: int = 0) -> None:
        self.partitions: dict[int, int] = {p: MIN_WATERMARK for p in range(partitions)}
        self.last_seen: dict[int, float] = {p: time.monotonic() for p in range(partitions)}
        self.idle_timeout_ms = idle_timeout_ms

    @property
    def current(self) -> int:
        active = self._active()
        return min(self.partitions[p] for p in active) if active else MIN_WATERMARK

    @property
    def idle(self) -> bool:
        """Every partition has been quiet for the idle timeout: Flink's source is then IDLE, and an
        operator reading it and other inputs goes by the others' watermarks."""
        if not self.idle_timeout_ms:
            return False
        now = time.monotonic()
        return all((now - seen) * 1000 >= self.idle_timeout_ms for seen in self.last_seen.values())

    def _active(self) -> list[int]:
        if not self.idle_timeout_ms:
            return list(self.partitions)
        now = time.monotonic()
        active = [p for p in self.partitions if (now - self.last_seen[p]) * 1000 < self.idle_timeout_ms]
        # all idle: the most advanced partition decides, so time still moves on
        return active or [max(self.partitions, key=self.partitions.get)]

    def restore(self, partitions: dict[int, int]) -> None:
        """The watermark per partition a checkpoint stored (each one counts as just seen)."""
        self.partitions = dict(partitions)
        now = time.monotonic()
        self.last_seen = {p: now for p in self.partitions}

    def assign(self, values: pa.Array, partitions: pa.Array | None = None) -> pa.Array:
        """Given each record's watermark expression value (epoch ms, NULL = none) and partition,
        return the source watermark just before each record, and advance."""
        filled = values.fill_null(MIN_WATERMARK).to_numpy(zero_copy_only=False).astype(np.int64)
        if partitions is None:
            return self._assign_one(0, filled)
        parts = partitions.to_numpy(zero_copy_only=False).astype(np.int64)
        now = time.monotonic()
        for p in np.unique(parts).tolist():
            self.partitions.setdefault(p, MIN_WATERMARK)
            self.last_seen[p] = now
        active = self._active()
        columns = []
        for p in active:
            mine = np.where(parts == p, filled, MIN_WATERMARK)
            running = np.maximum.accumulate(np.concatenate(([self.partitions[p]], mine)))
            self.partitions[p] = int(running[-1])
            columns.append(running)
        overall = np.min(np.vstack(columns), axis=0)
        return pa.array(overall[:-1], pa.int64())

    def _assign_one(self, partition: int, filled: np.ndarray) -> pa.Array:
        self.partitions.setdefault(partition, MIN_WATERMARK)
        self.last_seen[partition] = time.monotonic()
        running = np.maximum.accumulate(np.concatenate(([self.partitions[partition]], filled)))
        self.partitions[partition] = int(running[-1])
        return pa.array(running[:-1], pa.int64())
