"""Rows as JSON records, as the `log` and `kafka` sinks write them (Flink's `json` format):
TIMESTAMP_LTZ as ISO-8601 with `Z`, DECIMAL exact in a string, BYTES in base64, MAP as an object."""

from __future__ import annotations

import base64
from decimal import Decimal

import orjson
import pyarrow as pa

from clickstream.connectors.collection_values import is_collection, to_json


def json_values(column: pa.ChunkedArray) -> list:
    """A column's values for JSON: a MAP as an object (Arrow gives a list of pairs)."""
    if is_collection(column.type):
        return [to_json(v, column.type) for v in column.to_pylist()]
    return column.to_pylist()


def json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)  # exact; the JSON decoder reads numbers in strings
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()  # as Flink's json format writes BYTES
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def rows_of(batch: pa.Table) -> list[dict]:
    """The batch's rows as dicts of JSON-ready values."""
    names = batch.column_names
    return [dict(zip(names, row, strict=True)) for row in zip(*map(json_values, batch.columns), strict=True)]


def dumps(row: dict) -> bytes:
    return orjson.dumps(row, default=json_default, option=orjson.OPT_UTC_Z)
