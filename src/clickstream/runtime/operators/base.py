"""The operator contract: batches in, batches out, and a reaction to watermark progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from clickstream.runtime.batch import stamp


@dataclass
class OperatorMetrics:
    records_in: int = 0
    records_out: int = 0
    late_dropped: int = 0
    state_rows: int = 0


class BaseOperator:
    """One step of a pipeline. Operators are single-input; state lives in the job's JobState."""

    name = "Operator"
    arity = 1  # inputs; a two-input operator's process() also takes the input port
    # How far the watermark this operator passes on lags its input's: an operator that emits rows
    # older than its input watermark holds it back (Flink's interval join, by its interval).
    output_delay_ms = 0
    # Does on_processing_time() ever emit? (processing-time windows and OVER frames)
    timed = False
    # What the operator is built with, not what it has seen: a checkpoint stores every other
    # attribute (runtime.snapshots), and a restored job has these from its own plan.
    # (The input watermarks are the job's, which it checkpoints itself.)
    wiring: ClassVar[frozenset[str]] = frozenset(
        {"node", "nodes", "state", "clock", "sink", "lookup", "input_watermarks"}
    )

    def __init__(self) -> None:
        self.metrics = OperatorMetrics()
        self.emitted = 0  # rows emitted so far: the sequence numbers of the next ones start here
        # each input's watermark, kept up to date by the executor (a union stamps rows with them)
        self.input_watermarks: list[int] = []

    def _released(self, out: pa.Table, watermark: int) -> list[pa.Table]:
        """Rows a watermark released, numbered after everything emitted before, stamped with
        `watermark` and counted; nothing for an empty table."""
        if not out.num_rows:
            return []
        stamped = stamp(out, self.emitted, watermark)
        self.emitted += out.num_rows
        self.metrics.records_out += out.num_rows
        return [stamped]

    @property
    def complete(self) -> bool:
        """No row can ever leave this operator again (a LIMIT that has all its rows)."""
        return False

    def process(self, batch: pa.Table) -> list[pa.Table]:
        """Consume one batch; return what to pass downstream now."""
        raise NotImplementedError

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        """The input's watermark advanced to `watermark` (epoch ms); emit what it completes."""
        return []

    def on_processing_time(self, now_ms: int) -> list[pa.Table]:
        """The job's clock reads `now_ms` (epoch ms): emit what processing-time timers before it
        complete. Called on every turn of the loop, with or without input, when `timed`."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def _count(self, batch: pa.Table, out: list[pa.Table]) -> list[pa.Table]:
        self.metrics.records_in += batch.num_rows
        self.metrics.records_out += sum(t.num_rows for t in out)
        return out
