"""The `print` connector: each change as Flink prints it, `+I[a, b]` (with `print-identifier> `)."""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal

import pyarrow as pa

from clickstream.config import Settings
from clickstream.connectors.base import OP_COLUMN, OP_SHORT, BaseSink
from clickstream.connectors.collection_values import is_collection, to_text
from clickstream.connectors.options import Option
from clickstream.schema import TableDef

OPTIONS = (
    Option("print-identifier", description="A prefix for each line, followed by '> '."),
    Option(
        "standard-error", "bool", "false", description="Print to standard error instead of standard output."
    ),
    Option("sink.parallelism", "int", minimum=1, description="Accepted for Flink compatibility."),
)


def format_value(value: object) -> str:
    """Flink's string form of a value: NULL as 'null', timestamps with milliseconds."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _texts(column: pa.ChunkedArray) -> list[str]:
    """A column's values as Flink prints them (ARRAY, MAP and ROW ones element by element)."""
    if is_collection(column.type):
        return [to_text(v, column.type, format_value) for v in column.to_pylist()]
    return [format_value(v) for v in column.to_pylist()]


class PrintSink(BaseSink):
    accepts_updates_without_key = True

    def __init__(self, table: TableDef, settings: Settings, stream=None) -> None:
        super().__init__(table, settings)
        identifier = table.options.get("print-identifier")
        self.prefix = f"{identifier}> " if identifier else ""
        self.stream = stream or (
            sys.stderr if table.options.get("standard-error", "").lower() == "true" else sys.stdout
        )

    @property
    def is_upsert(self) -> bool:
        return False

    def write(self, batch: pa.Table) -> None:
        names = [n for n in batch.column_names if n != OP_COLUMN]
        kinds = batch.column(OP_COLUMN).to_pylist()
        columns = [_texts(batch.column(n)) for n in names]
        lines = [
            self.prefix + f"{OP_SHORT[kind]}[{', '.join(col[i] for col in columns)}]"
            for i, kind in enumerate(kinds)
        ]
        if lines:
            self.stream.write("\n".join(lines) + "\n")

    def flush(self) -> None:
        self.stream.flush()
