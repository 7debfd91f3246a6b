"""Watermarks per record: the running maximum of the WATERMARK expression, vectorized.

Each record sees the watermark as it was just before it, so a record is late or not regardless of
how the input is cut into batches.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK


class WatermarkTracker:
    """The watermark of one source partition."""

    def __init__(self) -> None:
        self.current = MIN_WATERMARK

    def assign(self, values: pa.Array) -> pa.Array:
        """Given each record's watermark expression value (epoch ms, NULL = none), return the
        watermark before each record and advance."""
        filled = values.fill_null(MIN_WATERMARK).to_numpy(zero_copy_only=False).astype(np.int64)
        running = np.maximum.accumulate(np.concatenate(([self.current], filled)))
        self.current = int(running[-1])
        return pa.array(running[:-1], pa.int64())
