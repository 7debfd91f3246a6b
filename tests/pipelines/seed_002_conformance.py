"""Seed 002's analyses as a conformance group (tests/conformance/cases/seed002.json): the query of
each INSERT of `pipelines/seed_002.sql`, over a small input from the simulator, with the result
PyFlink gave. The tables keep the file's columns (computed rowtime, watermark, primary keys) but
are files, so the codes and users tables are append-only there.

    python -m tests.pipelines.seed_002_conformance         # rewrite the group's tables and queries
    python -m tests.conformance.record --group seed002     # record Flink's results
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from clickstream.simulate.base import GeneratorConfig
from clickstream.simulate.ksql_clickstream import CLICKS, CODES, USERS, KsqlClickstreamGenerator
from tests.conformance.harness import dump_group, group_path

GROUP = "seed002"
VIEW = "user_clickstream"
TOPIC_OF = {"clickstream": CLICKS, "clickstream_codes": CODES, "web_users": USERS}
CLICK_FIELDS = ("_time", "time", "ip", "request", "status", "userid", "bytes", "agent")


def statements(text: str | None = None) -> list[str]:
    """The file's statements (or those of its `text` once loaded), comments removed, each on one line."""
    if text is None:
        text = resources.files("clickstream.pipelines").joinpath("seed_002.sql").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [" ".join(s.split()) for s in code.split(";") if s.strip()]


def source_columns() -> dict[str, str]:
    """Source table -> its column list, as CREATE TABLE declares it."""
    found = {}
    for statement in statements():
        match = re.fullmatch(r"CREATE TABLE (\w+) \((.*)\) WITH \( ?\{(topics|upsert_topics)\[.*", statement)
        if match:
            found[match[1]] = match[2].strip()
    return found


def view_body() -> str:
    (body,) = [s.removeprefix(f"CREATE VIEW {VIEW} AS ") for s in statements() if s.startswith("CREATE VIEW")]
    return body


def queries() -> dict[str, str]:
    """Result table -> the query its INSERT runs."""
    found = {}
    for statement in statements():
        match = re.fullmatch(r"INSERT INTO (\w+) (SELECT .*)", statement)
        if match:
            found[match[1]] = match[2]
    return found


def _rows(table: str, records: list[Any]) -> list[dict[str, Any]]:
    values = [r.value for r in records if r.topic == TOPIC_OF[table]]
    if table == "clickstream":
        return [{f: v[f] for f in CLICK_FIELDS} for v in values]
    return values


def group() -> dict[str, Any]:
    """The tables (400 clicks of 20 users over 7 minutes, a few error bursts) and one case per analysis; a
    case's view has a name of its own, as the recorder runs a group in one session."""
    generator = KsqlClickstreamGenerator(GeneratorConfig(seed=8, days=0.005), users=20)
    records = list(generator.records(400))
    tables = [
        {"name": name, "columns": columns, "rows": _rows(name, records)}
        for name, columns in source_columns().items()
    ]
    cases = []
    for table, query in queries().items():
        case: dict[str, Any] = {"name": table, "query": query}
        if re.search(rf"\b{VIEW}\b", query):
            view = f"{VIEW}_{table}"
            case["query"] = re.sub(rf"\b{VIEW}\b", view, query)
            case["views"] = [f"CREATE VIEW {view} AS {view_body()}"]
        cases.append(case)
    return {"tables": tables, "cases": cases}


def main() -> None:
    path = group_path(GROUP)
    data = group()
    if path.exists():  # keep what was recorded for queries that did not change
        old = {c["name"]: c for c in json.loads(path.read_text())["cases"]}
        for case in data["cases"]:
            kept = old.get(case["name"], {})
            if kept.get("query") == case["query"] and kept.get("views") == case.get("views"):
                case.update({k: v for k, v in kept.items() if k in ("expected", "divergence")})
    path.write_text(dump_group(data))
    print(f"{path}: {len(data['cases'])} cases")


if __name__ == "__main__":
    main()
