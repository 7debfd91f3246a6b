"""Updating results that do not come from a GROUP BY, into real sinks (SQLite, PostgreSQL, MariaDB).

A deduplication keeping the last row, a regular join and a window Top-N used to fail planning
with an internal StopIteration. Expected rows follow Flink's semantics on this input: the last
click per user, each click joined with its user, and the top 2 items of each 5-minute window
(window Top-N only appends, so an append sink takes it).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator

import pytest

from clickstream.engine import Engine
from clickstream.errors import PlanningError
from tests.connectors.jdbc_db import Db
from tests.flink_oracle import materialize

CLICKS = [{"u": i % 3, "item": i % 4, "s": i, "ts": f"2020-01-01 00:{i:02d}:00"} for i in range(12)]
USERS = [{"u": 0, "name": "zero"}, {"u": 1, "name": "one"}]


@pytest.fixture
def sources(tmp_path) -> Iterator[str]:
    for name, rows in (("c", CLICKS), ("d", USERS)):
        (tmp_path / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    yield (
        "CREATE TABLE c (u INT, item INT, s INT, ts TIMESTAMP(3), "
        "WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) "
        f"WITH ('connector' = 'filesystem', 'path' = '{tmp_path / 'c.json'}', 'format' = 'json');"
        "CREATE TABLE d (u INT, name STRING) "
        f"WITH ('connector' = 'filesystem', 'path' = '{tmp_path / 'd.json'}', 'format' = 'json');"
    )


def _jdbc(db: Db, name: str, columns: str) -> str:
    options = f"'connector' = 'jdbc', 'url' = '{db.url}', 'table-name' = '{name}'"
    return f"CREATE TABLE {name} ({columns}) WITH ({options});"


def test_dedup_join_and_window_top_n_into_jdbc(db: Db, sources: str) -> None:
    last, joined, top = db.new_table(), db.new_table(), db.new_table()
    Engine(out=io.StringIO()).execute_script(
        sources
        + _jdbc(db, last, "u INT, item INT, PRIMARY KEY (u) NOT ENFORCED")
        + _jdbc(db, joined, "u INT, s INT, name STRING, PRIMARY KEY (u, s) NOT ENFORCED")
        + _jdbc(db, top, "ws TIMESTAMP(3), item INT, cnt BIGINT, rn BIGINT")
        + f"INSERT INTO {last} SELECT u, item FROM (SELECT u, item, ROW_NUMBER() OVER (PARTITION BY u "
        "ORDER BY ts DESC) AS rn FROM c) WHERE rn = 1;"
        + f"INSERT INTO {joined} SELECT c.u, c.s, d.name FROM c JOIN d ON c.u = d.u;"
        + f"INSERT INTO {top} SELECT window_start, item, cnt, rn FROM (SELECT *, ROW_NUMBER() OVER ("
        "PARTITION BY window_start, window_end ORDER BY cnt DESC) AS rn FROM (SELECT window_start, "
        "window_end, item, COUNT(*) AS cnt FROM TABLE(TUMBLE(TABLE c, DESCRIPTOR(ts), INTERVAL '5' MINUTE)) "
        "GROUP BY window_start, window_end, item)) WHERE rn <= 2;"
    )
    assert db.rows(last) == [(0, 1), (1, 2), (2, 3)]
    assert db.rows(joined) == sorted((r["u"], r["s"], ["zero", "one"][r["u"]]) for r in CLICKS if r["u"] < 2)
    # each window ranked once, when it fires: two rows per window, rank 1 the most clicked item
    ranked = [(cnt, rn) for _, _, cnt, rn in db.rows(top)]
    assert sorted(ranked) == [(1, 1), (1, 2), (1, 2), (1, 2), (2, 1), (2, 1)]


def test_window_top_n_into_an_append_only_file(tmp_path, sources: str) -> None:
    out = tmp_path / "top"
    Engine(out=io.StringIO()).execute_script(
        sources + f"CREATE TABLE top (item INT, rn BIGINT) WITH ('connector' = 'filesystem', "
        f"'path' = '{out}', 'format' = 'json');"
        "INSERT INTO top SELECT item, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, "
        "window_end ORDER BY cnt DESC) AS rn FROM (SELECT window_start, window_end, item, COUNT(*) AS cnt "
        "FROM TABLE(TUMBLE(TABLE c, DESCRIPTOR(ts), INTERVAL '5' MINUTE)) GROUP BY window_start, "
        "window_end, item)) WHERE rn <= 2;"
    )
    lines = [json.loads(line) for path in sorted(out.rglob("*")) if path.is_file() for line in path.open()]
    assert sorted(row["rn"] for row in lines) == [1, 1, 1, 2, 2, 2]


def test_deduplication_keeping_the_last_row_into_an_append_only_file_is_refused(tmp_path, sources) -> None:
    with pytest.raises(PlanningError, match="doesn't support consuming update changes.*Deduplicate"):
        Engine(out=io.StringIO()).execute_script(
            sources + f"CREATE TABLE o (u INT, item INT) WITH ('connector' = 'filesystem', "
            f"'path' = '{tmp_path / 'o'}', 'format' = 'json');"
            "INSERT INTO o SELECT u, item FROM (SELECT u, item, ROW_NUMBER() OVER (PARTITION BY u "
            "ORDER BY ts DESC) AS rn FROM c) WHERE rn = 1;"
        )


def test_group_by_over_an_updating_input(sources) -> None:
    engine = Engine(out=io.StringIO())
    engine.execute_script(sources)
    rows = materialize(
        engine.collect("SELECT cnt, COUNT(*) FROM (SELECT u, COUNT(*) AS cnt FROM c GROUP BY u) GROUP BY cnt")
    )
    assert rows == Counter({(4, 3): 1})  # the counts 1, 2 and 3 each user passed are retracted


def test_listagg_over_an_updating_input(sources) -> None:
    # Both names end with a count of 1: LISTAGG keeps them in arrival order (as Flink's retracting
    # LISTAGG does), and the -U of each name's count leaves nothing behind.
    engine = Engine(out=io.StringIO())
    engine.execute_script(sources)
    result = materialize(
        engine.collect(
            "SELECT cnt, LISTAGG(name) FROM (SELECT name, COUNT(*) AS cnt FROM d GROUP BY name) GROUP BY cnt"
        )
    )
    assert result == Counter({(1, "zero,one"): 1})
