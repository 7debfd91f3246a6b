"""User columns named like internal ones (`s`, `n`, `v`) change nothing; Top-N ties as in Flink.

Expected rows were recorded from PyFlink 2.3 on the same input (tests/flink_oracle, run_flink_json).
Before the operators quoted and `$`-prefixed their own columns, the join repeated rows many times
and dropped others, and COUNT(DISTINCT u) grouped by `v` counted 1 per window.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import datetime

import pytest

from clickstream.engine import Engine
from tests.engine.conftest import final_rows

CLICKS = [
    {"u": i % 3, "item": i % 4, "s": i, "n": i * 10, "v": i % 2, "ts": f"2020-01-01 00:{i:02d}:00"}
    for i in range(12)
]
USERS = [{"u": 0, "name": "zero", "s": 100, "n": 7}, {"u": 1, "name": "one", "s": 101, "n": 8}]


@pytest.fixture(params=["1", "5", "-1"], ids=lambda size: f"batch{size}")
def engine(tmp_path, request) -> Engine:
    for name, rows in (("c", CLICKS), ("d", USERS)):
        (tmp_path / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"SET 'table.exec.mini-batch.size' = '{request.param}';"
        "CREATE TABLE c (u INT, item INT, s INT, n INT, v INT, ts TIMESTAMP(3), "
        "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) "
        f"WITH ('connector' = 'filesystem', 'path' = '{tmp_path / 'c.json'}', 'format' = 'json');"
        "CREATE TABLE d (u INT, name STRING, s INT, n INT) "
        f"WITH ('connector' = 'filesystem', 'path' = '{tmp_path / 'd.json'}', 'format' = 'json');"
    )
    return engine


def test_regular_join_of_inputs_with_columns_s_and_n(engine):
    rows = final_rows(engine, "SELECT c.u, c.s, c.n, d.s, d.n FROM c JOIN d ON c.u = d.u")
    flink = [(0, 0, 0, 100, 7), (0, 3, 30, 100, 7), (0, 6, 60, 100, 7), (0, 9, 90, 100, 7)]
    flink += [(1, 1, 10, 101, 8), (1, 10, 100, 101, 8), (1, 4, 40, 101, 8), (1, 7, 70, 101, 8)]
    assert rows == Counter(flink)


def test_count_distinct_grouped_by_a_column_v(engine):
    assert final_rows(engine, "SELECT v, COUNT(DISTINCT u) FROM c GROUP BY v") == Counter([(0, 3), (1, 3)])
    windowed = final_rows(
        engine,
        "SELECT v, window_start, COUNT(DISTINCT u) FROM TABLE(TUMBLE(TABLE c, DESCRIPTOR(ts), "
        "INTERVAL '5' MINUTE)) GROUP BY v, window_start, window_end",
    )
    t = lambda minute: datetime(2020, 1, 1, 0, minute)  # noqa: E731
    flink = [(0, t(0), 3), (0, t(5), 2), (0, t(10), 1), (1, t(0), 2), (1, t(5), 3), (1, t(10), 1)]
    assert windowed == Counter(flink)


def test_top_n_ties_keep_the_earlier_row(engine):
    # ORDER BY v DESC ties within each u: Flink's Top-N keeps the row that arrived first.
    rows = final_rows(
        engine,
        "SELECT * FROM (SELECT u, item, v, ROW_NUMBER() OVER (PARTITION BY u ORDER BY v DESC) AS rn "
        "FROM c) WHERE rn <= 1",
    )
    assert rows == Counter([(0, 3, 1, 1), (1, 1, 1, 1), (2, 1, 1, 1)])


@pytest.mark.parametrize(("direction", "flink"), [("ASC", [None, 1, 3]), ("DESC", [3, 1, None])])
def test_top_n_orders_null_as_the_lowest_value(tmp_path, direction, flink):
    # PyFlink 2.3: NULL ranks first ascending and last descending.
    path = tmp_path / "n.json"
    path.write_text('{"k": "a", "v": 3}\n{"k": "a", "v": null}\n{"k": "a", "v": 1}\n')
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"CREATE TABLE n (k STRING, v INT) WITH ('connector' = 'filesystem', 'path' = '{path}', "
        "'format' = 'json');"
    )
    rows = final_rows(
        engine,
        f"SELECT * FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v {direction}) AS rn "
        "FROM n) WHERE rn <= 3",
    )
    assert rows == Counter(("a", v, rank) for rank, v in enumerate(flink, start=1))


def test_top_n_over_a_group_by_whose_key_is_not_selected(engine):
    # The ranked subquery drops `item` (part of the GROUP BY key): it is carried hidden, as in Flink.
    rows = final_rows(
        engine,
        "SELECT u, cnt, rn FROM (SELECT u, cnt, ROW_NUMBER() OVER (PARTITION BY u ORDER BY cnt DESC) AS rn "
        "FROM (SELECT u, item, COUNT(*) AS cnt FROM c GROUP BY u, item)) WHERE rn <= 2",
    )
    # each (u, item) pair occurs once or twice in CLICKS: u = i % 3, item = i % 4 over i < 12
    counts = Counter((r["u"], r["item"]) for r in CLICKS)
    expected = Counter()
    for u in range(3):
        top = sorted((n for (uu, _), n in counts.items() if uu == u), reverse=True)[:2]
        expected.update((u, n, rank) for rank, n in enumerate(top, start=1))
    assert rows == expected
