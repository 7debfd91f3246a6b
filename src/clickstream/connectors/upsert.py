"""Upsert records: how the `log` connector reads a table with a PRIMARY KEY, as Flink's
`upsert-kafka` reads a topic.

Each record is the table's row as a JSON object: it replaces the row with its key (an upsert, +U;
the planner's ChangelogNormalize turns these into +I, -U/+U and -D). A tombstone deletes the row
of its key: our log stores no record keys and no null values, so a tombstone is a JSON object with
the key fields and `"__deleted": true` (Debezium's "rewrite" convention for deletes); other fields
may be there too (the rowtime, for a versioned table: the deletion's time). A record without a
value for every key field is malformed.
"""

from __future__ import annotations

from clickstream.connectors.envelope import NOT_AN_OBJECT, Envelope, field, text
from clickstream.schema import TableDef

DELETED = "__deleted"


def envelope(table: TableDef) -> Envelope:
    deleted = f"coalesce(lower(CAST({field('obj', DELETED)} AS VARCHAR)) IN ('true', '\"true\"'), FALSE)"
    changes = (
        f"SELECT __rec, CASE WHEN {deleted} THEN 3 ELSE 2 END AS __op, obj AS __row, 0 AS __i "
        "FROM rec WHERE obj IS NOT NULL"
    )
    missing = " ".join(
        f"WHEN {text('obj', key)} IS NULL THEN 'the key field \"{key}\" is missing or null'"
        for key in (table.column(k).name for k in table.primary_key)  # type: ignore[union-attr]
    )
    problems = (
        f"SELECT __rec, CASE {NOT_AN_OBJECT} {missing} END AS __reason FROM rec WHERE __reason IS NOT NULL"
    )
    return Envelope(changes, problems)
