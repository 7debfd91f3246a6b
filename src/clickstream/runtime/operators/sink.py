"""The last step of a pipeline: hand a changelog to the sink connector.

An upsert sink gets, per batch, the last change of each primary key (and no -U: an upsert by key
makes the before-image redundant), which is what Flink's upsert sinks end up storing.
"""

from __future__ import annotations

import pyarrow as pa

from clickstream.connectors.base import BaseSink
from clickstream.runtime.batch import OP, SEQ, constant, quote
from clickstream.runtime.operators.base import BaseOperator
from clickstream.runtime.state import JobState
from clickstream.schema import plan_name
from clickstream.sql.plan import SinkNode


class SinkOperator(BaseOperator):
    name = "Sink"
    wiring = BaseOperator.wiring | {"writer"}

    def __init__(self, node: SinkNode, sink: BaseSink, state: JobState) -> None:
        super().__init__()
        self.node, self.sink, self.state = node, sink, state
        self.names = [c.name for c in node.columns]
        # the plan's names (schema.plan_name) back to the sink table's, by position
        self.table_names = [c.name for c in node.table.physical] + [OP]
        self.fold = sink.is_upsert and node.input.updating
        # With checkpoints, a transactional sink's rows wait here for the next one (and are part
        # of it), then go in with `commit`: `writer` names this sink in the sink's commit notes.
        self.writer: str | None = None
        self.pending: list[pa.Table] = []

    def process(self, batch: pa.Table) -> list[pa.Table]:
        self.metrics.records_in += batch.num_rows
        if OP not in batch.column_names:
            batch = batch.append_column(OP, constant(0, batch.num_rows, pa.int8()))
        if self.fold:
            keys = ", ".join(quote(plan_name(k)) for k in self.node.table.primary_key)
            batch = self.state.query(
                f"SELECT * FROM batch WHERE {quote(OP)} <> 1 QUALIFY row_number() OVER "
                f"(PARTITION BY {keys} ORDER BY {quote(SEQ)} DESC) = 1 ORDER BY {quote(SEQ)}",
                batch=batch,
            )
        out = batch.select(self.names + [OP]).rename_columns(self.table_names)
        if out.num_rows:
            if self.writer is not None:
                self.pending.append(out)
            else:
                self.sink.write(out)
            self.metrics.records_out += out.num_rows
        return []

    def commit(self, checkpoint: int) -> None:
        """The rows since the last checkpoint, into the sink as those of `checkpoint` (nothing
        if the sink has them already: see `BaseSink.commit`)."""
        if self.writer is not None and self.pending:
            self.sink.commit(self.writer, checkpoint, self.pending)
            self.pending = []

    def close(self) -> None:
        self.sink.flush()
        self.sink.close()
