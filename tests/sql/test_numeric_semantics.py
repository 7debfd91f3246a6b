"""Integer arithmetic and casts as Flink computes them.

Expected values were recorded from PyFlink 2.3 on the same input (tests/flink_oracle, run_flink_json):
INT / INT is an INT truncated toward zero, BIGINT / INT a BIGINT, `%` keeps the dividend's sign,
CAST of a fraction to an integer truncates, and a division by zero fails the job.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from clickstream.engine import Engine
from clickstream.errors import ExecutionError

ROWS = [
    {"a": 7, "b": 2, "x": 2.7, "y": -2.7, "c": -7},
    {"a": 1, "b": 3, "x": None, "y": 0.5, "c": None},
]
DDL = (
    "CREATE TABLE t (a INT, b INT, x DOUBLE, y DECIMAL(5, 2), c BIGINT) "
    "WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');"
)
QUERY = (
    "SELECT a / b, c / b, a / 2, 7 / 2, CAST(x AS INT), CAST(y AS INT), CAST(2.7 AS INT), a / x, "
    "CAST(-2.7 AS BIGINT), a % b, c % b, -7 / 2 FROM t"
)
# PyFlink 2.3's rows (types INT, BIGINT, INT, INT, INT, INT, INT, DOUBLE, BIGINT, INT, INT, INT).
FLINK = [
    (3, -3, 3, 3, 2, -2, 2, 2.5925925925925926, -2, 1, -1, -3),
    (0, None, 0, 3, None, 0, 2, None, -2, 1, None, -3),
]


@pytest.fixture
def engine(tmp_path) -> Engine:
    path = tmp_path / "t.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    engine = Engine()
    engine.execute_script(DDL.format(path=path))
    return engine


def _final(engine: Engine, query: str) -> Counter:
    return Counter(tuple(row) for _, row in engine.collect(query))


def test_integer_division_and_casts_truncate_as_flink(engine):
    assert _final(engine, QUERY) == Counter(FLINK)


def test_division_with_a_fraction_stays_fractional(engine):
    assert _final(engine, "SELECT a / 2.0, x / 2 FROM t") == Counter([(3.5, 1.35), (0.5, None)])


def test_integer_division_by_zero_fails_the_job_naming_the_query(tmp_path):
    path = tmp_path / "z.json"
    path.write_text('{"a": 7, "b": 0}\n')
    script = (
        f"CREATE TABLE t (a INT, b INT) WITH ('connector' = 'filesystem', 'path' = '{path}', "
        "'format' = 'json');"
        "CREATE TABLE o (x INT) WITH ('connector' = 'blackhole');"
        "INSERT INTO o SELECT a / b FROM t;"
    )
    with pytest.raises(ExecutionError, match="Query 'insert-into_o' failed: Division by zero"):
        Engine().execute_script(script)
