"""Conformance cases: load them, set up their tables, and bring both engines' values to one form.

A group file ``cases/<group>.json`` holds ``tables`` (shared by its cases) and ``cases``; see
README.md for the format. Both the recorder (PyFlink) and the test (clickstream) write each
table's rows to a JSON-lines file and declare it with the same ``CREATE TABLE`` text, so the two
engines read the same bytes through the same DDL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CASES_DIR = Path(__file__).with_name("cases")
FLOAT_REL_TOL = 1e-12


@dataclass(frozen=True)
class Table:
    name: str
    columns: str  # the column list of CREATE TABLE, WATERMARK clause included
    rows: tuple[str, ...]  # one JSON object per row, as written to the file
    # the record format: 'json', or a changelog format ('debezium-json', ...) whose rows are its
    # change events, written as they are
    format: str = "json"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Table:
        rows = tuple(json.dumps(r) for r in data["rows"])
        return cls(data["name"], data["columns"], rows, data.get("format", "json"))

    @property
    def has_event_time(self) -> bool:
        return "WATERMARK" in self.columns.upper()

    def ddl(self, directory: Path) -> str:
        """Write the rows under ``directory`` and return the CREATE TABLE that reads them."""
        path = directory / f"{self.name}.jsonl"
        path.write_text("".join(row + "\n" for row in self.rows), encoding="utf-8")
        return (
            f"CREATE TABLE {self.name} ({self.columns}) WITH ('connector' = 'filesystem', "
            f"'path' = '{path}', 'format' = '{self.format}', "
            f"'{self.format}.timestamp-format.standard' = 'ISO-8601')"
        )


@dataclass
class Case:
    group: str
    name: str
    query: str
    tables: list[Table]
    settings: dict[str, str] = field(default_factory=dict)
    views: list[str] = field(default_factory=list)  # CREATE VIEW statements, run after the tables
    upsert_key: list[str] | None = None  # result columns keying an upsert changelog (see README)
    expected: dict[str, Any] | None = None
    divergence: str | None = None
    divergence_batch_size: str | None = None  # the divergence holds at this mini-batch size only

    @property
    def id(self) -> str:
        return f"{self.group}::{self.name}"

    @property
    def has_event_time(self) -> bool:
        return any(t.has_event_time for t in self.tables)

    @property
    def has_processing_time(self) -> bool:
        return any("PROCTIME()" in t.columns.upper() for t in self.tables)

    def setup(self, directory: Path) -> list[str]:
        """The statements that declare the case's tables (rows written under ``directory``) and views."""
        return [t.ddl(directory) for t in self.tables] + self.views

    @property
    def time_zone(self) -> str:
        return self.settings.get("table.local-time-zone", "UTC")


def group_path(group: str) -> Path:
    return CASES_DIR / f"{group}.json"


def groups() -> list[str]:
    return sorted(p.stem for p in CASES_DIR.glob("*.json"))


def load_group(group: str) -> list[Case]:
    data = json.loads(group_path(group).read_text(encoding="utf-8"))
    shared = {t["name"]: Table.from_json(t) for t in data.get("tables", [])}
    cases = []
    for raw in data["cases"]:
        own = {t["name"]: Table.from_json(t) for t in raw.get("tables", [])}
        tables = {**shared, **own}
        text = " ".join([raw["query"], *raw.get("views", [])])
        cases.append(
            Case(
                group=group,
                name=raw["name"],
                query=raw["query"],
                tables=[t for name, t in tables.items() if _mentions(text, name)],
                settings=raw.get("settings", {}),
                views=raw.get("views", []),
                upsert_key=raw.get("upsert_key"),
                expected=raw.get("expected"),
                divergence=raw.get("divergence"),
                divergence_batch_size=raw.get("divergence_batch_size"),
            )
        )
    names = [c.name for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"{group}: duplicate case names {sorted(duplicates)}")
    return cases


def _mentions(query: str, table: str) -> bool:
    """Whether the query may read ``table`` (a loose word match: extra tables are harmless)."""
    return re.search(rf"\b{re.escape(table)}\b", query, re.IGNORECASE) is not None


# --- values -------------------------------------------------------------------------------------


def normalize(value: Any, time_zone: str) -> Any:
    """A clickstream value in the form the Flink oracle writes (see tests/flink_oracle/runner.py)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(zoneinfo.ZoneInfo(time_zone)).replace(tzinfo=None)
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        # a MAP arrives as (key, value) tuples; the oracle writes [key, value] pairs sorted by repr
        return sorted(([normalize(k, time_zone), normalize(v, time_zone)] for k, v in value), key=repr)
    if isinstance(value, dict):  # a ROW: its fields in order
        return [normalize(v, time_zone) for v in value.values()]
    if isinstance(value, list | tuple):
        return [normalize(v, time_zone) for v in value]
    return value


def sort_key(row: list[Any]) -> str:
    """Rows sort by their JSON text, floats rounded so near-equal ones sort alike."""
    return json.dumps([_rounded(v) for v in row], default=str)


def _rounded(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.9g}")
    return value


def sorted_rows(rows: list[list[Any]]) -> list[list[Any]]:
    return sorted(rows, key=sort_key)


def materialize(changelog: list[tuple[str, list[Any]]], key: list[int] | None = None) -> list[list[Any]]:
    """The final table of a changelog, sorted, duplicates repeated.

    Without ``key`` it is a retract changelog: ``+I``/``+U`` add a row, ``-U``/``-D`` remove an
    equal one. With ``key`` (column positions) it is an upsert changelog, as Flink's Top-N emits
    when it outputs the rank number (``+U`` with no ``-U`` before it): ``+I``/``+U`` replace the
    row with that key, ``-U``/``-D`` delete it.
    """
    if key is not None:
        keyed: dict[str, list[Any]] = {}
        for kind, row in changelog:
            k = json.dumps([row[i] for i in key], default=str)
            if kind in ("+I", "+U"):
                keyed[k] = row
            else:
                keyed.pop(k, None)
        return sorted_rows(list(keyed.values()))
    table: dict[str, int] = {}
    for kind, row in changelog:
        k = json.dumps(row, default=str)
        table[k] = table.get(k, 0) + (1 if kind in ("+I", "+U") else -1)
        if table[k] < 0:
            raise ValueError(f"{kind} of a row that is not in the table: {row!r}")
    return sorted_rows([json.loads(k) for k, n in table.items() for _ in range(n)])


def is_upsert_changelog(changelog: list[tuple[str, Any]]) -> bool:
    """Whether some ``+U`` does not follow a ``-U``: updates keyed by an upsert key, not retractions."""
    kinds = [kind for kind, _ in changelog]
    return any(kind == "+U" and (i == 0 or kinds[i - 1] != "-U") for i, kind in enumerate(kinds))


def same_value(got: Any, want: Any) -> bool:
    """Equal with the same JSON type (3 is not 3.0, True is not 1); floats within a tight tolerance."""
    if isinstance(want, float) and isinstance(got, float):
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return math.isclose(got, want, rel_tol=FLOAT_REL_TOL, abs_tol=1e-300)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want, strict=True))
    return type(got) is type(want) and got == want


def same_rows(got: list[list[Any]], want: list[list[Any]]) -> bool:
    return len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want, strict=True))


# --- writing a group file back -------------------------------------------------------------------


def dump_group(data: dict[str, Any]) -> str:
    """The group file as JSON laid out for reading and diffs: one key, one row per line."""
    lines = ["{"]
    sections = [(key, data[key]) for key in ("tables", "cases") if key in data]
    for s, (key, items) in enumerate(sections):
        lines.append(f'  "{key}": [')
        for i, item in enumerate(items):
            lines.extend(_dump_object(item, "    "))
            if i < len(items) - 1:
                lines[-1] += ","
        lines.append("  ]" + ("," if s < len(sections) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dump_object(obj: dict[str, Any], indent: str) -> list[str]:
    lines = [indent + "{"]
    keys = list(obj)
    for i, key in enumerate(keys):
        comma = "," if i < len(keys) - 1 else ""
        value = obj[key]
        head = f"{indent}  {json.dumps(key)}: "
        if key in ("rows",) and isinstance(value, list) and value:
            lines.append(head + "[")
            lines.extend(
                f"{indent}    {_compact(v)}{',' if j < len(value) - 1 else ''}" for j, v in enumerate(value)
            )
            lines.append(f"{indent}  ]{comma}")
        elif isinstance(value, dict) and key == "expected":
            inner = _dump_object(value, indent + "  ")
            inner[0] = head + "{"
            lines.extend(inner)
            lines[-1] += comma
        elif key == "tables" and isinstance(value, list):
            lines.append(head + "[")
            for j, table in enumerate(value):
                lines.extend(_dump_object(table, indent + "    "))
                if j < len(value) - 1:
                    lines[-1] += ","
            lines.append(f"{indent}  ]{comma}")
        else:
            lines.append(head + _compact(value) + comma)
    lines.append(indent + "}")
    return lines


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def key_positions(case: Case) -> list[int] | None:
    """The positions of the case's ``upsert_key`` columns in its result (names from ``expected``)."""
    if case.upsert_key is None:
        return None
    assert case.expected is not None and "columns" in case.expected, f"{case.id}: record it first"
    columns = case.expected["columns"]
    return [columns.index(name) for name in case.upsert_key]
