"""The `print` connector: each change as Flink prints it, `+I[a, b]` (with `print-identifier> `)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime, time
from decimal import Decimal

import numpy as np
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
    """A value as Flink's SQL client shows it: NULL as 'null', timestamps with milliseconds."""
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


def java_text(value: object) -> str:
    """A value as Flink's print connector writes it: Java's `toString` of its internal value
    (`2024-01-01T00:00:01.500`, `...Z` for a TIMESTAMP_LTZ, `1.0E10`)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # an Instant, in UTC, seconds always written
            utc = value.astimezone(UTC).replace(tzinfo=None)
            return utc.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(utc.microsecond) + "Z"
        return _local_date_time(value)
    if isinstance(value, time):  # LocalTime.toString, like LocalDateTime's time part
        text = value.strftime("%H:%M")
        if value.second or value.microsecond:
            text += f":{value.second:02d}" + _fraction(value.microsecond)
        return text
    if isinstance(value, float):
        return java_double(value)
    return format_value(value)


def _fraction(micros: int) -> str:
    """Java's nano-of-second: none, or three or six digits as needed."""
    if micros == 0:
        return ""
    return f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"


def _local_date_time(value: datetime) -> str:
    """`LocalDateTime.toString`: the seconds only when they or a fraction are not zero."""
    text = value.strftime("%Y-%m-%dT%H:%M")
    if value.second or value.microsecond:
        text += f":{value.second:02d}" + _fraction(value.microsecond)
    return text


def java_double(value: float) -> str:
    """`Double.toString`: plain from 10^-3 to 10^7, else `d.dddE±n`, shortest digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + int(exponent) - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


def _texts(column: pa.ChunkedArray, scalar: Callable[[object], str]) -> list[str]:
    """A column's values as text (ARRAY, MAP and ROW ones element by element)."""
    values = column.to_pylist()
    if is_collection(column.type):
        return [to_text(v, column.type, scalar) for v in values]
    if pa.types.is_float32(column.type) and scalar is java_text:  # Float.toString's shortest digits
        return [java_double(float(str(np.float32(v)))) if v is not None else "null" for v in values]
    return [scalar(v) for v in values]


class PrintSink(BaseSink):
    accepts_updates_without_key = True

    def __init__(
        self, table: TableDef, settings: Settings, stream=None, scalar: Callable[[object], str] = java_text
    ) -> None:
        """`scalar`: how a value is written; a `SELECT` shows values as Flink's SQL client does."""
        super().__init__(table, settings)
        self.scalar = scalar
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
        columns = [_texts(batch.column(n), self.scalar) for n in names]
        lines = [
            self.prefix + f"{OP_SHORT[kind]}[{', '.join(col[i] for col in columns)}]"
            for i, kind in enumerate(kinds)
        ]
        if lines:
            self.stream.write("\n".join(lines) + "\n")

    def flush(self) -> None:
        self.stream.flush()
