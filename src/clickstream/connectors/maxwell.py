"""The `maxwell-json` format: Maxwell's change events, as Flink reads them.

A record is `{"database": ..., "table": ..., "type": "insert|update|delete", "data": {...},
"old": {...}}`: `insert` gives +I of `data`; `update` gives -U of the row before (`data` with the
fields `old` lists set to their old values) then +U of `data`; `delete` gives -D of `data`. Another
`type`, a `data` that is not an object, or a record that is not a JSON object is malformed.
"""

from __future__ import annotations

from clickstream.connectors.envelope import NOT_AN_OBJECT, Envelope, field, object_text, text
from clickstream.connectors.options import Option
from clickstream.schema import TableDef

OPTIONS: tuple[Option, ...] = ()


def envelope(table: TableDef, prefix: str) -> Envelope:
    parts = (
        f"SELECT __rec, obj, {text('obj', 'type')} AS t, {object_text(field('obj', 'data'))} AS d, "
        f"{object_text(field('obj', 'old'))} AS o FROM rec"
    )
    # the row before an update: its data, with the changed fields' old values
    before = "CASE WHEN o IS NULL THEN d ELSE CAST(json_merge_patch(d, o) AS VARCHAR) END"
    changes = (
        f"WITH ev AS ({parts} WHERE obj IS NOT NULL) "
        "SELECT __rec, 0 AS __op, d AS __row, 0 AS __i FROM ev WHERE t = 'insert' "
        f"UNION ALL SELECT __rec, 1, {before}, 0 FROM ev WHERE t = 'update' "
        "UNION ALL SELECT __rec, 2, d, 1 FROM ev WHERE t = 'update' "
        "UNION ALL SELECT __rec, 3, d, 0 FROM ev WHERE t = 'delete'"
    )
    problems = (
        f"SELECT __rec, CASE {NOT_AN_OBJECT} "
        "WHEN t IS NULL OR t NOT IN ('insert', 'update', 'delete') THEN "
        "'unknown \"type\" value \"' || coalesce(t, 'null') || '\"' "
        "WHEN d IS NULL THEN 'the \"data\" field is not an object' END AS __reason "
        f"FROM ({parts}) WHERE __reason IS NOT NULL"
    )
    return Envelope(changes, problems)
