"""OVER aggregation on event time (RANGE and ROWS frames) against a batch oracle."""

from __future__ import annotations

from collections import Counter

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests import oracle
from tests.engine.conftest import SOURCE_DDL
from tests.flink_oracle import materialize, run_flink

RANGE_QUERY = """
SELECT user_id, item_id,
       COUNT(*) OVER w AS n, MAX(category_id) OVER w AS top_category
FROM user_behavior
WINDOW w AS (PARTITION BY user_id ORDER BY ts
             RANGE BETWEEN INTERVAL '1' HOUR PRECEDING AND CURRENT ROW)"""

ROWS_QUERY = """
SELECT user_id, item_id,
       SUM(item_id) OVER (PARTITION BY user_id ORDER BY ts
                          ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s
FROM user_behavior"""


def _engine(events_file, batch: str) -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(SOURCE_DDL.format(path=events_file))
    return engine


def _on_time(events_file) -> list[tuple[int, dict]]:
    rows = []
    for seq, (event, watermark) in enumerate(oracle.with_watermarks(oracle.read_events(events_file))):
        if event["ts"] > watermark:  # rows at or behind the watermark are late
            rows.append((seq, event))
    return rows


def test_range_frame_matches_oracle(events_file):
    got = materialize(_engine(events_file, "5000").collect(RANGE_QUERY))
    rows = _on_time(events_file)
    by_user: dict[int, list[dict]] = {}
    for _, e in rows:
        by_user.setdefault(e["user_id"], []).append(e)
    expected = Counter()
    for _, e in rows:
        frame = [x for x in by_user[e["user_id"]] if e["ts"] - oracle.HOUR_MS <= x["ts"] <= e["ts"]]
        expected[(e["user_id"], e["item_id"], len(frame), max(x["category_id"] for x in frame))] += 1
    assert got == expected


def test_rows_frame_matches_oracle(events_file):
    got = materialize(_engine(events_file, "3000").collect(ROWS_QUERY))
    by_user: dict[int, list[tuple[int, int, dict]]] = {}
    for seq, e in _on_time(events_file):
        by_user.setdefault(e["user_id"], []).append((e["ts"], seq, e))
    expected = Counter()
    for rows in by_user.values():
        rows.sort(key=lambda r: (r[0], r[1]))
        for i, (_, _, e) in enumerate(rows):
            expected[
                (e["user_id"], e["item_id"], sum(r[2]["item_id"] for r in rows[max(0, i - 2) : i + 1]))
            ] += 1
    assert got == expected


def test_batch_sizes_agree(events_file):
    results = [materialize(_engine(events_file, size).collect(RANGE_QUERY)) for size in ("997", "-1")]
    assert results[0] == results[1]


@pytest.mark.flink
@pytest.mark.integration
def test_same_as_flink(tmp_path):
    from clickstream.simulate.tianchi import TianchiConfig, write_jsonl

    path = tmp_path / "events.jsonl"
    # Without late rows: Flink drops a row behind the watermark only if its key already emitted
    # a later row; clickstream drops every row behind the watermark (README, Semantics).
    write_jsonl(str(path), TianchiConfig(events=1500, users=60, days=0.2, seed=5))
    ddl = SOURCE_DDL.format(path=path)
    flink = run_flink(
        [ddl.strip().rstrip(";").replace("proctime AS PROCTIME(),", "")],
        {"range": RANGE_QUERY, "rows": ROWS_QUERY},
    )
    engine = _engine(path, "400")
    assert materialize(engine.collect(RANGE_QUERY)) == materialize(flink["range"])
    assert materialize(engine.collect(ROWS_QUERY)) == materialize(flink["rows"])
