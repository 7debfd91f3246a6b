"""What a changelog format tells the changelog decoder: how its records become changes.

A changelog format (`debezium-json`, `canal-json`, `maxwell-json`, and the upsert records of the
`log` connector) wraps the table's rows in an envelope that says what happened to them. Its
`Envelope` holds two DuckDB queries over `rec(__rec BIGINT, obj VARCHAR)` (one row per record:
its position in the batch and its text, NULL when it is not a JSON object):

- `changes`: one row per change, `__rec`, `__op` (Flink's RowKind: 0 +I, 1 -U, 2 +U, 3 -D),
  `__row` (the row as a JSON object's text) and `__i` (its order within the record);
- `problems`: `__rec, __reason` for every record that is malformed as a whole.

The rows' fields are then decoded as the `json` format decodes a record.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Envelope:
    changes: str
    problems: str


NOT_AN_OBJECT = "WHEN obj IS NULL THEN 'not a JSON object'"


def field(json: str, name: str) -> str:
    """The JSON value of top-level field `name` of `json` (NULL when it is absent)."""
    return f"json_extract({json}, '$.\"{name}\"')"


def text(json: str, name: str) -> str:
    """Field `name` of `json` as text (NULL when absent or null)."""
    return f"json_extract_string({json}, '$.\"{name}\"')"


def object_text(value: str) -> str:
    """`value` (JSON) as text when it is a JSON object, else NULL."""
    return f"CASE WHEN json_type({value}) = 'OBJECT' THEN CAST({value} AS VARCHAR) END"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
