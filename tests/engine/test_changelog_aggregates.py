"""GROUP BY over updating inputs, written to an upsert sink: the final table equals Flink's (the
rows recorded from PyFlink for `changelog_aggregates` in the conformance suite), whatever the
mini-batch size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine.conftest import run_script, sqlite_rows, sqlite_sink

ROWS = [
    (1, "alice", "apple", 10, "01"),
    (2, "bob", "pear", 20, "02"),
    (3, "alice", "pear", 5, "03"),
    (1, "alice", "apple", 30, "04"),
    (4, "carol", "plum", None, "05"),
    (5, None, "apple", 7, "06"),
    (10, "gina", "fig", 8, "06"),
    (2, "bob", "pear", 20, "07"),
    (6, "bob", "apple", 20, "08"),
    (10, "hank", "fig", 8, "08"),
    (3, "dave", "pear", 5, "09"),
    (7, "alice", "plum", 10, "03.500"),
    (4, "carol", "plum", 12, "10"),
    (10, "gina", "kiwi", 9, "11"),
    (1, "alice", "apple", 2, "12"),
    (8, "erin", "fig", -3, "13"),
    (9, "frank", None, 40, "20"),
    (11, "bob", "", 20, "14"),
]

SCRIPT = """
CREATE TABLE purchases (id INT, cust STRING, item STRING, amount INT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
CREATE VIEW latest AS
SELECT id, cust, item, amount FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY id ORDER BY ts DESC) AS rn FROM purchases)
WHERE rn = 1;
CREATE TABLE per_cust (cust STRING, n BIGINT, total INT, hi INT, PRIMARY KEY (cust) NOT ENFORCED)
 WITH ({per_cust});
CREATE TABLE per_count (cnt BIGINT, custs BIGINT, PRIMARY KEY (cnt) NOT ENFORCED)
 WITH ({per_count});
EXECUTE STATEMENT SET BEGIN
INSERT INTO per_cust
SELECT cust, COUNT(*), SUM(amount), MAX(amount) FROM latest WHERE cust IS NOT NULL GROUP BY cust;
INSERT INTO per_count
SELECT cnt, COUNT(*) FROM (SELECT cust, COUNT(*) AS cnt FROM purchases GROUP BY cust) GROUP BY cnt;
END;
"""

# From the conformance cases dedup_count_sum_by_cust, dedup_min_max_retract_extreme and
# group_by_count_of_counts (recorded from PyFlink 2.3).
PER_CUST = {
    ("alice", 2, 12, 10),
    ("bob", 3, 60, 20),
    ("carol", 1, 12, 12),
    ("dave", 1, 5, 5),
    ("erin", 1, -3, -3),
    ("frank", 1, 40, 40),
    ("gina", 1, 9, 9),
}
PER_COUNT = {(1, 5), (2, 2), (4, 1), (5, 1)}


@pytest.mark.parametrize("batch_size", ["1", "4", "-1"])
def test_aggregates_of_changelogs_upsert_into_sqlite(tmp_path: Path, batch_size: str) -> None:
    path = tmp_path / "purchases.jsonl"
    lines = [
        json.dumps({"id": i, "cust": c, "item": it, "amount": a, "ts": f"2024-01-01T00:00:{t}"})
        for i, c, it, a, t in ROWS
    ]
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "out.db"
    script = SCRIPT.format(
        path=path, per_cust=sqlite_sink(db, "per_cust"), per_count=sqlite_sink(db, "per_count")
    )
    run_script(script, **{"table.exec.mini-batch.size": batch_size})
    assert set(sqlite_rows(db, "per_cust")) == PER_CUST
    assert set(sqlite_rows(db, "per_count")) == PER_COUNT
