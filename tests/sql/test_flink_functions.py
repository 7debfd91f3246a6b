"""Scalar functions and session windows on edge input, against results recorded from PyFlink 2.3
(tests/flink_oracle, run_flink_json) on the same rows."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from clickstream.engine import Engine

ROWS = (
    '{"s": "hello wORLD foo-bar", "k": "a", "ts": "2020-01-01 00:00:00"}\n'
    '{"s": null, "k": "a", "ts": "2020-01-01 00:00:10"}\n'
    '{"s": "x", "k": "a", "ts": "2020-01-01 00:00:20"}\n'
    '{"s": "y", "k": "a", "ts": "2020-01-01 00:00:40"}\n'
)


@pytest.fixture
def engine(tmp_path) -> Engine:
    path = tmp_path / "t.json"
    path.write_text(ROWS)
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE t (s STRING, k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');"
    )
    return engine


def _rows(engine: Engine, query: str, batch_size: int | None = None) -> list[tuple]:
    if batch_size is not None:
        engine.execute_script(f"SET 'table.exec.mini-batch.size' = '{batch_size}';")
    return sorted((row for _, row in engine.collect(query)), key=repr)


def test_initcap_capitalizes_each_run_of_letters_and_digits(engine):
    query = "SELECT INITCAP(s), INITCAP('aBc dEF_gh 1ab i''m x.y'), INITCAP('') FROM t"
    flink = ["Hello World Foo-Bar", None, "X", "Y"]
    assert _rows(engine, query) == sorted(((s, "Abc Def_Gh 1ab I'M X.Y", "") for s in flink), key=repr)


@pytest.mark.parametrize("batch_size", [1, 2, -1])
@pytest.mark.parametrize(
    "query",
    [
        "SELECT SESSION_START(ts, INTERVAL '10' SECOND), SESSION_END(ts, INTERVAL '10' SECOND), COUNT(*) "
        "FROM t GROUP BY k, SESSION(ts, INTERVAL '10' SECOND)",
        "SELECT window_start, window_end, COUNT(*) FROM TABLE(SESSION(TABLE t PARTITION BY k, "
        "DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY k, window_start, window_end",
    ],
    ids=["legacy", "tvf"],
)
def test_sessions_exactly_one_gap_apart_merge(engine, query, batch_size):
    t = lambda s: datetime(2020, 1, 1, 0, 0, s)  # noqa: E731
    assert _rows(engine, query, batch_size) == [(t(0), t(30), 3), (t(40), t(50), 1)]
