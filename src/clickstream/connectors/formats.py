"""Decoding records (JSON objects, CSV lines) into typed Arrow batches, in bulk.

DuckDB does the work on the whole batch: JSON with `json_transform` to text fields, then casts,
following Flink's `json` format: a number may arrive as a JSON string ("952483" into BIGINT), a
missing field is NULL. A record that is not valid JSON, or whose value cannot be cast to the
declared type, is malformed: it goes to the dead letters, never into the results, and the job goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from clickstream.errors import ConnectorError
from clickstream.runtime.state import JobState
from clickstream.sql.catalog import TableDef
from clickstream.sql.types import Column, arrow_type


@dataclass
class Decoded:
    rows: pa.Table  # physical columns, typed
    malformed: list[tuple[str, str]]  # (raw record, reason)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cast_sql(text: str, column: Column, options: dict[str, str]) -> str:
    duck = column.duck_type
    if duck == "TIMESTAMPTZ":
        # ISO-8601 ('2017-11-26T16:00:00Z') and SQL ('2017-11-26 16:00:00Z'): DuckDB reads both;
        # a value without zone is read in UTC, as Flink does for TIMESTAMP_LTZ.
        return f"TRY_CAST({text} AS TIMESTAMPTZ)"
    if duck == "TIMESTAMP":
        return f"TRY_CAST(replace(rtrim({text}, 'Z'), 'T', ' ') AS TIMESTAMP)"
    if duck == "BOOLEAN":
        return f"TRY_CAST(lower({text}) AS BOOLEAN)"
    return f"TRY_CAST({text} AS {duck})"


class Decoder:
    """Turns raw records of one table into typed rows, in one DuckDB query per batch."""

    def __init__(self, table: TableDef, state: JobState | None = None) -> None:
        self.table = table
        self.format = table.options.get("format", table.options.get("value.format", "json"))
        if self.format not in ("json", "csv", "raw"):
            raise ConnectorError(f"Table '{table.name}': format '{self.format}' is not supported "
                                 "(json, csv)")
        self.state = state or JobState()
        self.schema = pa.schema([pa.field(c.name, arrow_type(c)) for c in table.physical])
        self._sql = self._json_sql() if self.format == "json" else self._csv_sql()

    def decode(self, records: pa.Array) -> Decoded:
        """`records`: one string per record (a JSON object, or a CSV line)."""
        if len(records) == 0:
            return Decoded(self.schema.empty_table(), [])
        batch = pa.table({"line": records.cast(pa.string())})
        result = self.state.query(self._sql, batch=batch)
        ok = result.column("__ok")
        malformed: list[tuple[str, str]] = []
        if not pc.all(ok).as_py():
            bad = result.filter(pc.invert(ok))
            malformed = [(line, reason) for line, reason in
                         zip(bad.column("line").to_pylist(), bad.column("__why").to_pylist(),
                             strict=True)]
            result = result.filter(ok)
        rows = result.select(self.schema.names)
        return Decoded(rows.cast(self.schema, safe=False), malformed)

    def _checks(self, fields: list[tuple[Column, str, str]]) -> tuple[str, str]:
        """(ok condition, reason) from (column, raw text expr, cast expr) triples."""
        failures = [(f"({raw} IS NOT NULL AND {cast} IS NULL)",
                     f"'{c.name}: cannot read ' || {raw} || ' as {c.flink_type}'")
                    for c, raw, cast in fields]
        if not failures:
            return "TRUE", "NULL"
        ok = " AND ".join(f"NOT {f}" for f, _ in failures)
        why = "CASE " + " ".join(f"WHEN {f} THEN {r}" for f, r in failures) + " END"
        return ok, why

    def _json_sql(self) -> str:
        shape = json.dumps({c.name: "VARCHAR" for c in self.table.physical}).replace("'", "''")
        fields = []
        for c in self.table.physical:
            raw = f"j.{_quote(c.name)}"
            fields.append((c, raw, _cast_sql(raw, c, self.table.options)))
        ok, why = self._checks(fields)
        casts = ", ".join(f"{cast} AS {_quote(c.name)}" for c, _, cast in fields)
        # Validity first, in an inner query, so json_transform only ever sees JSON objects.
        valid = ("(SELECT line, CASE WHEN json_type(v) = 'OBJECT' THEN v END AS obj FROM "
                 "(SELECT line, CASE WHEN json_valid(line) THEN line END AS v FROM batch))")
        return (f"SELECT line, {casts}, CASE WHEN obj IS NULL THEN FALSE ELSE {ok} END AS __ok, "
                f"CASE WHEN obj IS NULL THEN 'not a JSON object' ELSE {why} END AS __why FROM "
                f"(SELECT line, obj, json_transform(obj, '{shape}') AS j FROM {valid})")

    def _csv_sql(self) -> str:
        delimiter = self.table.options.get("csv.field-delimiter", ",").replace("'", "''")
        count = len(self.table.physical)
        fields = []
        for i, c in enumerate(self.table.physical):
            raw = f"nullif(trim(p[{i + 1}], '\"'), '')"
            fields.append((c, raw, _cast_sql(raw, c, self.table.options)))
        ok, why = self._checks(fields)
        casts = ", ".join(f"{cast} AS {_quote(c.name)}" for c, _, cast in fields)
        return (f"SELECT line, {casts}, CASE WHEN len(p) <> {count} THEN FALSE ELSE {ok} END AS "
                f"__ok, CASE WHEN len(p) <> {count} THEN 'expected {count} fields, got ' || "
                f"len(p) ELSE {why} END AS __why FROM (SELECT line, string_split(line, "
                f"'{delimiter}') AS p FROM batch)")
