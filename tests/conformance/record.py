"""Re-record the conformance cases' expected results with PyFlink 2.3.

    .venv/bin/python -m tests.conformance.record                       # every group
    .venv/bin/python -m tests.conformance.record --group casts         # one group
    .venv/bin/python -m tests.conformance.record --group casts --case cast_double_to_int

All selected cases of a group run in one ``run_flink_json`` call (one JVM) when their settings
agree and no two of them define a table of the same name differently; otherwise in as few calls
as that allows. Each case's ``expected`` is rewritten: the final materialized rows (sorted), the
column names and the column types Flink reported, or ``{"error": ...}`` when Flink failed.
``divergence`` marks are kept; ``triage.py --mark`` updates them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.conformance.harness import (
    Case,
    dump_group,
    group_path,
    groups,
    is_upsert_changelog,
    load_group,
    materialize,
)
from tests.flink_oracle import run_flink_json


def _batches(cases: list[Case]) -> list[list[Case]]:
    """Cases that can share one Flink session: same settings, consistent table definitions."""
    batches: list[tuple[dict[str, str], dict[str, Any], list[Case]]] = []
    for case in cases:
        for settings, tables, members in batches:
            if settings == case.settings and all(tables.get(t.name, t) == t for t in case.tables):
                tables.update({t.name: t for t in case.tables})
                members.append(case)
                break
        else:
            batches.append((case.settings, {t.name: t for t in case.tables}, [case]))
    return [members for _, _, members in batches]


def error_summary(trace: str) -> str:
    """The root cause of a Flink failure: its last exception line, without the Java class path noise."""
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip() and not ln.startswith("\tat ")]
    causes = [ln.removeprefix("Caused by: ") for ln in lines if "Exception" in ln or "Error" in ln]
    causes = [c for c in causes if not c.startswith(("at ", "File ", "Traceback", "raise ", "return "))]
    text = causes[-1] if causes else lines[-1]
    return text[:300]


def record_batch(cases: list[Case]) -> dict[str, dict[str, Any]]:
    """Run the cases on PyFlink; return each case's new ``expected``."""
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        tables = {t.name: t for case in cases for t in case.tables}
        setup = [f"SET '{k}' = '{v}'" for k, v in cases[0].settings.items()]
        setup += [t.ddl(Path(tmp)) for t in tables.values()]
        setup += list(dict.fromkeys(v for case in cases for v in case.views))
        raw = run_flink_json(setup, {case.name: case.query for case in cases})
    expected = {}
    for case in cases:
        out = raw.get(case.name, {"error": "no output"})
        if "error" in out:
            expected[case.name] = {"error": error_summary(out["error"])}
            continue
        changelog = [(kind, list(values)) for kind, values in out["changelog"]]
        key = [out["columns"].index(c) for c in case.upsert_key] if case.upsert_key else None
        if key is None and is_upsert_changelog(changelog):
            # Legit after a filter on an aggregate (HAVING drops the -U); wrong for an upsert stream.
            print(
                f"{case.id}: note: +U without -U in Flink's changelog; if it is an upsert stream "
                '(Top-N with the rank number), give the case an "upsert_key"',
                file=sys.stderr,
            )
        expected[case.name] = {
            "columns": out["columns"],
            "types": out["types"],
            "rows": materialize(changelog, key),
        }
    return expected


def record_group(group: str, only: set[str] | None = None) -> int:
    cases = [c for c in load_group(group) if only is None or c.name in only]
    if not cases:
        return 0
    expected: dict[str, dict[str, Any]] = {}
    for batch in _batches(cases):
        expected.update(record_batch(batch))
    path = group_path(group)
    data = json.loads(path.read_text(encoding="utf-8"))
    for raw in data["cases"]:
        if raw["name"] in expected:
            raw["expected"] = expected[raw["name"]]
    path.write_text(dump_group(data), encoding="utf-8")
    return len(expected)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--group", action="append", help="group to record (repeatable; default: all)")
    parser.add_argument("--case", action="append", help="case name to record (repeatable; default: all)")
    args = parser.parse_args(argv)
    for group in args.group or groups():
        start = time.monotonic()
        n = record_group(group, set(args.case) if args.case else None)
        print(f"{group}: {n} cases recorded in {time.monotonic() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
