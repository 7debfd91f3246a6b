"""Hidden columns every batch carries between operators, and helpers to build batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clickstream.schema import WATERMARK_COLUMN

SEQ = "__seq"  # arrival order of the source record (or emission order of an aggregate)
WM = WATERMARK_COLUMN  # the watermark just before this record, epoch ms; MIN_WATERMARK if none yet
OP = "_op"  # Flink RowKind: 0 +I, 1 -U, 2 +U, 3 -D (only on updating streams)
HIDDEN = (SEQ, WM, OP)

MIN_WATERMARK = -(2**63)
MAX_WATERMARK = 2**63 - 1


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def hidden_columns(batch: pa.Table) -> list[str]:
    return [name for name in HIDDEN if name in batch.column_names]


def data_columns(batch: pa.Table) -> list[str]:
    return [name for name in batch.column_names if name not in HIDDEN]


def constant(value: int, rows: int, arrow_type: pa.DataType) -> pa.Array:
    """A column of one repeated integer (numpy-built: no Python list of `rows` items)."""
    return pa.array(np.full(rows, value, dtype=arrow_type.to_pandas_dtype()), arrow_type)


def stamp(table: pa.Table, first_seq: int, watermark: int) -> pa.Table:
    """An operator's output rows numbered from `first_seq` (their order downstream) and
    carrying the operator's current watermark."""
    seq = pa.array(np.arange(first_seq, first_seq + table.num_rows, dtype=np.int64))
    return table.append_column(SEQ, seq).append_column(WM, constant(watermark, table.num_rows, pa.int64()))
