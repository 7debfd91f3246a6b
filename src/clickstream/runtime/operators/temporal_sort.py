"""TemporalSort: `ORDER BY rowtime [, more keys]` on a stream (Flink's RowTimeSortOperator).

Flink keeps each row under a timer at its time; when the watermark reaches a timer, that time's
rows leave, ordered by the other keys (then by arrival), and the time becomes the last one fired.
A row whose time is not after the last fired time is late and dropped. A timer fires only when
the watermark moves, so a row behind the watermark but after the last fired time is kept and
leaves at the next advance.

Per batch, lateness is computed for all rows at once: an earlier row's time counts as fired for
row i once the watermark before i (its `__wm`) has moved past the one before that earlier row
and reached its time. Rows of a batch leave when the executor passes the batch's watermark.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK, SEQ, WM, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.sql.plan import TemporalSortNode

_NONE = np.iinfo(np.int64).min  # no time fired yet


class TemporalSortOperator(BaseOperator):
    name = "TemporalSort"

    def __init__(self, node: TemporalSortNode, state: JobState) -> None:
        super().__init__()
        self.state = state
        self.p = state.new_prefix("sort")
        self.data = [quote(c.name) for c in node.input.columns]
        self.time = f"epoch_ms({quote(node.order[0][0])})"
        self.order = ", ".join(
            [self.time]
            + [f"{quote(c)} {'DESC NULLS LAST' if d else 'ASC NULLS FIRST'}" for c, d in node.order[1:]]
            + [quote(SEQ)]
        )
        self.last_fired = _NONE
        self.watermark = MIN_WATERMARK  # the last watermark passed on
        self.emitted = 0
        self._created = False

    def process(self, batch: pa.Table) -> list[pa.Table]:
        p = self.p
        columns = ", ".join(self.data + [quote(SEQ), quote(WM)])
        if not self._created:
            self.state.execute(f"CREATE TABLE {p}_rows AS SELECT {columns} FROM batch LIMIT 0", batch=batch)
            self._created = True
        keys = f"{self.time} AS t, {quote(WM)} AS w, {quote(SEQ)} AS s"
        new = self.state.query(f"SELECT {keys} FROM batch", batch=batch)
        old = self.state.query(f"SELECT {keys} FROM {p}_rows ORDER BY {quote(SEQ)}")
        t, w, seq = (np.concatenate([_ints(old, c), _ints(new, c)]) for c in ("t", "w", "s"))
        w = np.maximum.accumulate(w)  # a watermark never goes back
        # the position of the first row before which row j's timer has fired: the watermark has
        # moved past the one before j and reached j's time (len(t): not within this batch)
        fires_at = np.searchsorted(w, np.maximum(t, w + 1), side="left")
        kept = self._on_time(t, fires_at, old.num_rows)
        self.metrics.records_in += batch.num_rows
        self.metrics.late_dropped += batch.num_rows - int(kept.sum())
        rows = batch.filter(pa.array(kept))
        self.state.execute(f"INSERT INTO {p}_rows SELECT {columns} FROM kept_rows", kept_rows=rows)
        # rows whose timer fires before a later row of this batch leave now, as Flink's would
        due = np.concatenate([np.ones(old.num_rows, dtype=bool), kept]) & (fires_at < len(t))
        out = self._release(seq[due], fires_at[due], np.maximum(w[fires_at[due] - 1], self.watermark))
        if due.any():
            self.last_fired = max(self.last_fired, int(t[due].max()))
        self._count_state()
        return out

    def _on_time(self, t: np.ndarray, fires_at: np.ndarray, old: int) -> np.ndarray:
        """Which new rows come after the last time fired before them (see the module docstring)."""
        fired = np.full(len(t) + 1, self.last_fired, dtype=np.int64)
        np.maximum.at(fired, fires_at, t)
        last_fired = np.maximum.accumulate(fired)[old : len(t)]
        new_t = t[old:]
        return (last_fired == _NONE) | (new_t > last_fired)

    def _release(self, seq: np.ndarray, fires_at: np.ndarray, watermarks: np.ndarray) -> list[pa.Table]:
        """The rows `seq` whose timers fired inside the batch, in firing order, each carrying the
        watermark downstream had when Flink emitted it (the one before the advance that fired it)."""
        if not len(seq):
            return []
        p = self.p
        fired = pa.table({"s": seq, "at": fires_at.astype(np.int64), "w": watermarks.astype(np.int64)})
        out = self.state.query(
            f"SELECT {', '.join(self.data)}, f.w AS {quote(WM)} FROM {p}_rows JOIN fired f "
            f"ON {quote(SEQ)} = f.s ORDER BY f.at, {self.order}",
            fired=fired,
        )
        self.state.execute(f"DELETE FROM {p}_rows WHERE {quote(SEQ)} IN (SELECT s FROM fired)", fired=fired)
        self.metrics.records_out += out.num_rows
        numbers = pa.array(np.arange(self.emitted, self.emitted + out.num_rows, dtype=np.int64))
        self.emitted += out.num_rows
        return [out.append_column(SEQ, numbers)]

    def on_watermark(self, watermark: int) -> list[pa.Table]:
        self.watermark = watermark
        if not self._created:
            return []
        p = self.p
        # rows that came after the watermark reached this value wait for its next move
        due = f"{self.time} <= {watermark} AND {quote(WM)} < {watermark}"
        out = self.state.query(
            f"SELECT {', '.join(self.data)} FROM {p}_rows WHERE {due} ORDER BY {self.order}"
        )
        if not out.num_rows:
            return []
        self.last_fired = max(
            self.last_fired, self.state.scalar(f"SELECT max({self.time}) FROM {p}_rows WHERE {due}")
        )
        self.state.execute(f"DELETE FROM {p}_rows WHERE {due}")
        self._count_state()
        return self._released(out, watermark)

    def _count_state(self) -> None:
        self.metrics.state_rows = self.state.scalar(f"SELECT count(*) FROM {self.p}_rows") or 0


def _ints(table: pa.Table, column: str) -> np.ndarray:
    return table.column(column).to_numpy(zero_copy_only=False).astype(np.int64)
