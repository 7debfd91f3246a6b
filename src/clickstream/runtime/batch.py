"""Hidden columns every batch carries between operators, and helpers to build batches."""

from __future__ import annotations

import pyarrow as pa

SEQ = "__seq"  # arrival order of the source record (or emission order of an aggregate)
WM = "__wm"  # the watermark just before this record, epoch ms; MIN_WATERMARK if none yet
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
