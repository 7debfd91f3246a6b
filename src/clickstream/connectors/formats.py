"""Decoding records (JSON objects, CSV lines) into typed Arrow batches, in bulk.

DuckDB does the work on the whole batch: JSON with `json_transform` to text fields, then casts,
following Flink's `json` format: a number may arrive as a JSON string ("952483" into BIGINT), a
missing field is NULL. A record that is not valid JSON, or whose value cannot be cast to the
declared type, is malformed: it goes to the dead letters, never into the results, and the job goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clickstream.connectors import canal, debezium, maxwell
from clickstream.connectors.options import Option
from clickstream.duck import DuckSession
from clickstream.errors import ConnectorError
from clickstream.schema import Column, TableDef, arrow_type

# Each format's options, without the prefix a connector puts before them ('json.' for 'format',
# 'value.json.' for 'value.format'). Flink's keys; those this decoder ignores say so. Options that
# would change what is read (csv.quote-character, csv.null-literal, ...) are not declared, so they
# are refused instead of silently giving other rows than Flink.
_JSON: tuple[Option, ...] = (
    Option(
        "timestamp-format.standard",
        "enum",
        "SQL",
        values=("SQL", "ISO-8601"),
        description="How timestamps are written; both forms are read whichever is set.",
    ),
    Option(
        "fail-on-missing-field",
        "bool",
        "false",
        description="Accepted for Flink compatibility; a missing field is always read as NULL.",
    ),
    Option(
        "ignore-parse-errors",
        "bool",
        "false",
        description="Accepted for Flink compatibility; a malformed record always goes to the "
        "dead letters and the job goes on.",
    ),
    Option(
        "map-null-key.mode",
        "enum",
        "FAIL",
        values=("FAIL", "DROP", "LITERAL"),
        description="Accepted for Flink compatibility (MAP columns are not supported).",
    ),
    Option(
        "map-null-key.literal",
        default="null",
        description="Accepted for Flink compatibility (MAP columns are not supported).",
    ),
    Option(
        "encode.decimal-as-plain-number",
        "bool",
        "false",
        description="Accepted for Flink compatibility; decimals are written exactly, as strings.",
    ),
    Option(
        "encode.ignore-null-fields",
        "bool",
        "false",
        description="Accepted for Flink compatibility; NULL fields are written as null.",
    ),
    Option(
        "decode.json-parser.enabled",
        "bool",
        "true",
        description="Accepted for Flink compatibility; records are decoded in bulk by DuckDB.",
    ),
)
# The changelog formats read their rows as the json format does, and take its options.
_CHANGELOG_JSON = tuple(
    o for o in _JSON if o.key not in ("fail-on-missing-field", "decode.json-parser.enabled")
)
FORMATS: dict[str, tuple[Option, ...]] = {
    "json": _JSON,
    "csv": (
        Option("field-delimiter", default=",", description="The character between fields."),
        Option(
            "ignore-parse-errors",
            "bool",
            "false",
            description="Accepted for Flink compatibility; a malformed line always goes to the "
            "dead letters and the job goes on.",
        ),
        Option(
            "write-bigdecimal-in-scientific-notation",
            "bool",
            "true",
            description="Accepted for Flink compatibility.",
        ),
    ),
    "raw": (
        Option(
            "charset",
            "enum",
            "UTF-8",
            values=("UTF-8",),
            description="The text encoding of each record; only UTF-8 is read.",
        ),
    ),
    "debezium-json": _CHANGELOG_JSON + debezium.OPTIONS,
    "canal-json": _CHANGELOG_JSON + canal.OPTIONS,
    "maxwell-json": _CHANGELOG_JSON + maxwell.OPTIONS,
}


@dataclass
class Decoded:
    rows: pa.Table  # physical columns, typed
    malformed: list[tuple[str, str]]  # (raw record, reason)
    # which input records became rows (None: all of them); a changelog decoder maps its rows back
    # to their records with it
    kept: np.ndarray | None = None
    # a changelog decoder's rows are not its records: per row, its record's position
    origin: np.ndarray | None = None
    # per malformed record (same order), its position among the input records
    positions: list[int] = field(default_factory=list)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Flink's DATE, TIMESTAMP and TIMESTAMP_LTZ hold years 0000 to 9999. A time outside is malformed:
# DuckDB reads years up to 294247, whose microseconds overflow downstream. Year 0000 is left out
# too: the sinks write rows through Python, whose datetime starts at year 1.
_TIME_RANGE = {
    "DATE": ("DATE '0001-01-01'", "DATE '9999-12-31'"),
    "TIMESTAMP": ("TIMESTAMP '0001-01-01 00:00:00'", "TIMESTAMP '9999-12-31 23:59:59.999999'"),
    "TIMESTAMPTZ": (
        "TIMESTAMPTZ '0001-01-01 00:00:00+00'",
        "TIMESTAMPTZ '9999-12-31 23:59:59.999999+00'",
    ),
}


def _in_range(value: str, column: Column) -> str:
    """`value`, or NULL when it is a time outside Flink's range."""
    if column.duck_type not in _TIME_RANGE:
        return value
    low, high = _TIME_RANGE[column.duck_type]
    return f"CASE WHEN {value} BETWEEN {low} AND {high} THEN {value} END"


def _cast_sql(text: str, column: Column, options: dict[str, str]) -> str:
    duck = column.duck_type
    if duck == "TIMESTAMPTZ":
        # ISO-8601 ('2017-11-26T16:00:00Z') and SQL ('2017-11-26 16:00:00Z'): DuckDB reads both;
        # a value without zone is read in UTC, as Flink does for TIMESTAMP_LTZ.
        return _in_range(f"TRY_CAST({text} AS TIMESTAMPTZ)", column)
    if duck == "TIMESTAMP":
        return _in_range(f"TRY_CAST(replace(rtrim({text}, 'Z'), 'T', ' ') AS TIMESTAMP)", column)
    if duck == "BOOLEAN":
        return f"TRY_CAST(lower({text}) AS BOOLEAN)"
    return _in_range(f"TRY_CAST({text} AS {duck})", column)


def _range_note(column: Column) -> str:
    return " (years 0001 to 9999)" if column.duck_type in _TIME_RANGE else ""


def _json_type(column: Column) -> str:
    return {"TIMESTAMPTZ": "TIMESTAMPTZ", "TIMESTAMP": "TIMESTAMP"}.get(column.duck_type, column.duck_type)


def refuse_collections(table: TableDef, what: str) -> None:
    """ARRAY, MAP and ROW columns are read and written in JSON only; elsewhere they are refused."""
    for column in table.physical:
        if column.flink_type.startswith(("ARRAY<", "MAP<", "ROW<")):
            raise ConnectorError(
                f"Table '{table.name}': column '{column.name}' of type {column.flink_type} is not "
                f"supported by {what} (ARRAY, MAP and ROW columns need the json format)"
            )


class Decoder:
    """Turns raw records of one table into typed rows, in one DuckDB query per batch."""

    def __init__(self, table: TableDef, format: str | None = None) -> None:
        """`format`: the record format when not the table's own (a changelog format's rows are
        JSON objects)."""
        self.table = table
        self.format = format or table.options.get("format", table.options.get("value.format", "json"))
        if self.format not in ("json", "csv", "raw"):
            raise ConnectorError(f"Table '{table.name}': format '{self.format}' is not supported (json, csv)")
        if self.format != "json":
            refuse_collections(table, f"the {self.format} format")
        self.state = DuckSession()  # its own connection: decoding runs on a reader thread
        self.schema = pa.schema([pa.field(c.name, arrow_type(c)) for c in table.physical])
        self._sql = self._json_sql() if self.format == "json" else self._csv_sql()
        self._skip_fast = 0  # batches left to decode with checks only

    def decode(self, records: pa.Array) -> Decoded:
        """`records`: one string per record (a JSON object, or a CSV line)."""
        if len(records) == 0:
            return Decoded(self.schema.empty_table(), [])
        batch = pa.table({"line": records.cast(pa.string())})
        if self.format == "json" and self._skip_fast == 0:
            fast = self._optimistic(batch)
            if fast is not None:
                return fast
            # malformed JSON in this batch: likely in the next ones too, go straight to checks
            self._skip_fast = 8
        self._skip_fast = max(self._skip_fast - 1, 0)
        return self._checked(batch)[0]

    def _optimistic(self, batch: pa.Table) -> Decoded | None:
        """Most records are well-formed and complete: decode them without the per-record checks,
        and send only the others (with a NULL field: missing, or unreadable?) through the
        checked path. None when json_transform cannot even parse the batch."""
        try:
            result = self.state.query(self._fast_sql, batch=batch)
        except duckdb.Error:
            return None
        complete = result.column("__complete").combine_chunks()
        rows = result.select(self.schema.names).cast(self.schema, safe=False)
        if pc.all(complete).as_py():
            return Decoded(rows, [])
        incomplete = pc.invert(complete)
        checked, ok = self._checked(batch.filter(incomplete))
        # both parts back in arrival order, by their positions in the batch
        positions = pa.concat_arrays(
            [pc.indices_nonzero(complete), pc.indices_nonzero(incomplete).filter(ok.combine_chunks())]
        )
        merged = pa.concat_tables([rows.filter(complete), checked.rows])
        kept = complete.to_numpy(zero_copy_only=False).copy()
        kept[~kept] = ok.to_numpy()
        bad = np.flatnonzero(~kept).tolist()
        return Decoded(merged.take(pc.sort_indices(positions)), checked.malformed, kept, positions=bad)

    def _checked(self, batch: pa.Table) -> tuple[Decoded, pa.ChunkedArray]:
        """Decode with every record checked; also which records were well-formed."""
        result = self.state.query(self._sql, batch=batch)
        ok = result.column("__ok")
        malformed: list[tuple[str, str]] = []
        if not pc.all(ok).as_py():
            bad = batch.filter(pc.invert(ok))
            reasons = self.state.query(self._reason_sql, batch=bad)
            malformed = list(zip(bad.column("line").to_pylist(), reasons.column(0).to_pylist(), strict=True))
            result = result.filter(ok)
        rows = result.select(self.schema.names)
        kept = ok.to_numpy() if malformed else None
        bad = np.flatnonzero(~kept).tolist() if kept is not None else []
        return Decoded(rows.cast(self.schema, safe=False), malformed, kept, positions=bad), ok

    def _query(self, parsed: str, record_ok: str, raw: list[str]) -> tuple[str, str]:
        """(decode SQL, reason SQL) over `parsed`, a query giving `line` and what `raw` uses."""
        columns = self.table.physical
        casts = [_cast_sql(r, c, self.table.options) for r, c in zip(raw, columns, strict=True)]
        # Casts once in an inner query; the check then reads the cast columns.
        inner = ", ".join(
            [f"{record_ok} AS __rec"]
            + [f"{r} AS __r{i}" for i, r in enumerate(raw)]
            + [f"{x} AS {_quote(c.name)}" for x, c in zip(casts, columns, strict=True)]
        )
        checks = " AND ".join(
            ["__rec"] + [f"(__r{i} IS NULL OR {_quote(c.name)} IS NOT NULL)" for i, c in enumerate(columns)]
        )
        names = ", ".join(_quote(c.name) for c in columns)
        decode = f"SELECT {names}, {checks} AS __ok FROM (SELECT {inner} FROM {parsed})"
        reasons = " ".join(
            f"WHEN __r{i} IS NOT NULL AND {_quote(c.name)} IS NULL THEN "
            f"'{c.name}: cannot read ' || __r{i} || ' as {c.flink_type}{_range_note(c)}'"
            for i, c in enumerate(columns)
        )
        reason = (
            f"SELECT CASE WHEN NOT __rec THEN '{self._record_error}' {reasons} END "
            f"FROM (SELECT {inner} FROM {parsed})"
        )
        return decode, reason

    def _json_sql(self) -> str:
        shape = json.dumps({c.name: "VARCHAR" for c in self.table.physical}).replace("'", "''")
        # Validity first, in inner queries, so json_transform only ever sees JSON objects.
        # (a cheap first-character test stands in for json_type(...) = 'OBJECT')
        parsed = (
            "(SELECT obj, json_transform(obj, '" + shape + "') AS j FROM (SELECT CASE WHEN "
            "json_valid(line) AND ltrim(line)[1] = '{' THEN line END AS obj FROM batch))"
        )
        self._record_error = "not a JSON object"
        raw = [f"j.{_quote(c.name)}" for c in self.table.physical]
        _, self._reason_sql = self._query(parsed, "obj IS NOT NULL", raw)
        return self._typed_json_sql()

    @property
    def _fast_sql(self) -> str:
        columns = self.table.physical
        shape = json.dumps({c.name: _json_type(c) for c in columns}).replace("'", "''")
        names = ", ".join(f"j.{_quote(c.name)}" for c in columns)
        complete = " AND ".join(f"{_in_range(f'j.{_quote(c.name)}', c)} IS NOT NULL" for c in columns)
        return (
            f"SELECT {names}, {complete} AS __complete FROM (SELECT json_transform(line, "
            f"'{shape}') AS j FROM batch)"
        )

    def _typed_json_sql(self) -> str:
        """The fast path: json_transform straight to the declared types (it reads "952483" into
        BIGINT too). A NULL result is only malformed if the field held something, which is
        checked for the few rows with a NULL, inside the CASE."""
        columns = self.table.physical
        shape = json.dumps({c.name: _json_type(c) for c in columns}).replace("'", "''")
        fields = [_in_range(f"j.{_quote(c.name)}", c) for c in columns]
        all_set = " AND ".join(f"{f} IS NOT NULL" for f in fields)
        present = [
            f"({f} IS NOT NULL OR json_extract_string(obj, '$.\"{c.name}\"') IS NULL)"
            for f, c in zip(fields, columns, strict=True)
        ]
        ok = f"CASE WHEN obj IS NULL THEN FALSE WHEN {all_set} THEN TRUE ELSE {' AND '.join(present)} END"
        select = ", ".join(f"{f} AS {_quote(c.name)}" for f, c in zip(fields, columns, strict=True))
        return (
            f"SELECT {select}, {ok} AS __ok FROM (SELECT obj, json_transform(obj, '{shape}') "
            "AS j FROM (SELECT CASE WHEN json_valid(line) AND ltrim(line)[1] = '{' THEN line "
            "END AS obj FROM batch))"
        )

    def _csv_sql(self) -> str:
        delimiter = self.table.options.get("csv.field-delimiter", ",").replace("'", "''")
        count = len(self.table.physical)
        parsed = f"(SELECT string_split(rtrim(line, chr(13) || chr(10)), '{delimiter}') AS p FROM batch)"
        self._record_error = f"expected {count} fields"
        raw = [f"nullif(trim(p[{i + 1}], '\"'), '')" for i in range(count)]
        self._sql, self._reason_sql = self._query(parsed, f"len(p) = {count}", raw)
        return self._sql
