"""The print connector writes each value as Flink's does: Java's `toString` of the value. The
expected lines are what PyFlink 2.3 printed for the same rows and statements. A `SELECT` shows
values as Flink's SQL client does instead (`2024-01-01 00:00:01.500`)."""

from __future__ import annotations

import io
import json

from clickstream.engine import Engine

ROWS = [
    {"a": 1, "ts": "2024-01-01T00:00:01.500", "t0": "2024-01-01T00:00:02", "d": 1.5, "dec": "3.10",
     "b": True, "s": "x y", "dt": "2024-01-02", "l": "2024-01-01T00:00:01.5Z"},
    {"a": None, "ts": None, "t0": None, "d": None, "dec": None, "b": None, "s": None, "dt": None, "l": None},
]  # fmt: skip
COLUMNS = (
    "a INT, ts TIMESTAMP(3), t0 TIMESTAMP(3), d DOUBLE, `dec` DECIMAL(5, 2), b BOOLEAN, s STRING, "
    "dt DATE, l TIMESTAMP_LTZ(3)"
)


def test_print_writes_java_text(tmp_path, capsys) -> None:
    source = tmp_path / "in.json"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    Engine(out=io.StringIO()).execute_script(
        f"CREATE TABLE src ({COLUMNS}) WITH ('connector' = 'filesystem', 'path' = '{source}', "
        "'format' = 'json', 'json.timestamp-format.standard' = 'ISO-8601');"
        f"CREATE TABLE snk ({COLUMNS}, tm TIME(0), big DOUBLE, midnight TIMESTAMP(3), r FLOAT) "
        "WITH ('connector' = 'print');"
        "INSERT INTO snk SELECT *, TIME '10:20:30', 1e10, TIMESTAMP '2024-01-01 00:00:00', "
        "CAST(0.1 AS FLOAT) FROM src;"
    )
    assert capsys.readouterr().out.splitlines() == [
        "+I[1, 2024-01-01T00:00:01.500, 2024-01-01T00:00:02, 1.5, 3.10, true, x y, 2024-01-02, "
        "2024-01-01T00:00:01.500Z, 10:20:30, 1.0E10, 2024-01-01T00:00, 0.1]",
        "+I[null, null, null, null, null, null, null, null, null, 10:20:30, 1.0E10, 2024-01-01T00:00, 0.1]",
    ]
