"""The `debezium-json` format: Debezium's change events, as Flink reads them.

A record is `{"before": {...}, "after": {...}, "op": "c|r|u|d", ...}`, wrapped in
`{"schema": ..., "payload": {...}}` when `debezium-json.schema-include` is true. `c` (create) and
`r` (snapshot read) give +I of `after`; `u` gives -U of `before` then +U of `after`; `d` gives -D of
`before`. An update or delete without `before` (a Postgres table without REPLICA IDENTITY FULL),
an unknown `op`, or a record that is not a JSON object is malformed: it goes to the dead letters.
"""

from __future__ import annotations

from clickstream.connectors.envelope import NOT_AN_OBJECT, Envelope, field, object_text, text
from clickstream.connectors.options import Option
from clickstream.schema import TableDef

OPTIONS = (
    Option(
        "schema-include",
        "bool",
        "false",
        description='Whether each record wraps the event in {"schema": ..., "payload": ...}.',
    ),
)


def envelope(table: TableDef, prefix: str) -> Envelope:
    """`prefix`: where the format's options start ('debezium-json.' or 'value.debezium-json.')."""
    schema_include = table.options.get(f"{prefix}schema-include", "false").lower() == "true"
    event = field("obj", "payload") if schema_include else "obj"
    parts = (
        f"SELECT __rec, obj, {text('e', 'op')} AS o, {object_text(field('e', 'before'))} AS b, "
        f"{object_text(field('e', 'after'))} AS a FROM (SELECT __rec, obj, {event} AS e FROM rec)"
    )
    changes = (
        f"WITH ev AS ({parts} WHERE obj IS NOT NULL) "
        "SELECT __rec, 0 AS __op, a AS __row, 0 AS __i FROM ev WHERE o IN ('c', 'r') "
        "UNION ALL SELECT __rec, 1, b, 0 FROM ev WHERE o = 'u' "
        "UNION ALL SELECT __rec, 2, a, 1 FROM ev WHERE o = 'u' "
        "UNION ALL SELECT __rec, 3, b, 0 FROM ev WHERE o = 'd'"
    )
    # a record with a schema read without schema-include has no "op": say what to set
    schema_hint = (
        ""
        if schema_include
        else f'WHEN o IS NULL AND {field("obj", "payload")} IS NOT NULL THEN \'no "op" field; a '
        "record with a schema needs ''debezium-json.schema-include'' = ''true''' "
    )
    problems = (
        f"SELECT __rec, CASE {NOT_AN_OBJECT} {schema_hint}"
        "WHEN o IS NULL THEN 'no \"op\" field' "
        "WHEN o NOT IN ('c', 'r', 'u', 'd') THEN 'unknown \"op\" value \"' || o || '\"' "
        "WHEN o IN ('c', 'r', 'u') AND a IS NULL THEN 'the \"after\" field is not an object' "
        "WHEN o IN ('u', 'd') AND b IS NULL THEN 'the \"before\" field of an update or delete is "
        "null (a Postgres table needs REPLICA IDENTITY FULL)' END AS __reason "
        f"FROM ({parts}) WHERE __reason IS NOT NULL"
    )
    return Envelope(changes, problems)
