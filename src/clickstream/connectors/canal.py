"""The `canal-json` format: Alibaba Canal's change events, as Flink reads them.

A record is `{"data": [{...}, ...], "old": [{...}, ...], "type": "INSERT|UPDATE|DELETE",
"database": ..., "table": ..., ...}` with one entry in `data` per changed row (values usually as
strings, which the `json` decoding reads into the declared types). `INSERT` gives +I of each row;
`UPDATE` gives, per row, -U of the row before then +U of the row; the row before has, as Flink
builds it, the old value of each field that some entry of `old` names (NULL when its own entry
does not: Flink looks the field up in the whole `old` array) and the row's value of the others.
`DELETE` gives -D of each row. DDL events (`isDdl` true, or type `CREATE`) and records of
databases or tables that `canal-json.database.include` / `canal-json.table.include` (regular
expressions) leave out are skipped. Another type, a `data` that is not an array, or a record that
is not a JSON object is malformed.
"""

from __future__ import annotations

from clickstream.connectors.envelope import NOT_AN_OBJECT, Envelope, field, sql_string, text
from clickstream.connectors.options import Option
from clickstream.schema import TableDef

OPTIONS = (
    Option("database.include", description="Read only events of databases matching this regular expression."),
    Option("table.include", description="Read only events of tables matching this regular expression."),
)


def envelope(table: TableDef, prefix: str) -> Envelope:
    included = ["NOT coalesce(is_ddl, FALSE)", "coalesce(t, '') <> 'CREATE'"]
    for name in ("database", "table"):
        pattern = table.options.get(f"{prefix}{name}.include")
        if pattern:
            included.append(f"regexp_full_match(coalesce({text('obj', name)}, ''), {sql_string(pattern)})")
    parts = (
        f"SELECT __rec, obj, {text('obj', 'type')} AS t, {field('obj', 'data')} AS d, "
        f"{field('obj', 'old')} AS o, TRY_CAST({text('obj', 'isDdl')} AS BOOLEAN) AS is_ddl FROM rec"
    )
    dml = f"({parts}) WHERE obj IS NOT NULL AND {' AND '.join(included)}"
    rows = (
        "SELECT __rec, t, i, CAST(json_extract(d, '$[' || i || ']') AS VARCHAR) AS r, "
        "json_extract(o, '$[' || i || ']') AS old, "
        "list_distinct(flatten(list_transform(json_extract(o, '$[*]'), lambda x: json_keys(x)))) AS named "
        f"FROM (SELECT *, unnest(range(CAST(json_array_length(d) AS BIGINT))) AS i FROM {dml} "
        "AND json_type(d) = 'ARRAY')"
    )
    before = _before([c.name for c in table.physical])
    changes = (
        f"WITH ev AS ({rows}) "
        "SELECT __rec, 0 AS __op, r AS __row, 2 * i AS __i FROM ev WHERE t = 'INSERT' "
        f"UNION ALL SELECT __rec, 1, {before}, 2 * i FROM ev WHERE t = 'UPDATE' "
        "UNION ALL SELECT __rec, 2, r, 2 * i + 1 FROM ev WHERE t = 'UPDATE' "
        "UNION ALL SELECT __rec, 3, r, 2 * i FROM ev WHERE t = 'DELETE'"
    )
    problems = (
        f"SELECT __rec, CASE {NOT_AN_OBJECT} "
        "WHEN NOT coalesce(is_ddl, FALSE) AND coalesce(t, '') NOT IN ('INSERT', 'UPDATE', 'DELETE', "
        "'CREATE') THEN 'unknown \"type\" value \"' || coalesce(t, 'null') || '\"' "
        "WHEN t IN ('INSERT', 'UPDATE', 'DELETE') AND coalesce(json_type(d), '') <> 'ARRAY' "
        "THEN 'the \"data\" field is not an array' END AS __reason "
        f"FROM ({parts}) WHERE __reason IS NOT NULL"
    )
    return Envelope(changes, problems)


def _before(columns: list[str]) -> str:
    """The row before an update, field by field: old value if `old` names the field, else the
    row's (`r` the row, `old` its entry of `old`, `named` every field `old` names)."""
    fields = ", ".join(
        f"{sql_string(c)}, CASE WHEN list_contains(coalesce(named, []), {sql_string(c)}) THEN "
        f"{field('old', c)} ELSE {field('r', c)} END"
        for c in columns
    )
    return f"CAST(json_object({fields}) AS VARCHAR)"
