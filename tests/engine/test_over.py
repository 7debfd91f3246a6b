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
    """The rows a bounded OVER frame keeps, by Flink's rule: a row is late only if its user has
    already emitted a row at its time or later (rows leave once the watermark passes them)."""
    rows, waiting, last = [], [], {}
    for seq, (event, watermark) in enumerate(oracle.with_watermarks(oracle.read_events(events_file))):
        for row in [r for r in waiting if r["ts"] <= watermark]:
            waiting.remove(row)
            last[row["user_id"]] = max(last.get(row["user_id"], row["ts"]), row["ts"])
        if event["user_id"] not in last or event["ts"] > last[event["user_id"]]:
            rows.append((seq, event))
            waiting.append(event)
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

    on_time, late = tmp_path / "events.jsonl", tmp_path / "late.jsonl"
    write_jsonl(str(on_time), TianchiConfig(events=1500, users=60, days=0.2, seed=5))
    # Late rows (2 h behind): a bounded frame drops a row behind the watermark only if its key
    # already emitted a row at its time or later, in Flink and here. RANGE is compared without them:
    # Flink also wipes a key's RANGE state once the watermark passes a row's time + 1.5 x the frame
    # (its cleanup timer), so a row that far behind sees no older rows (README, Semantics).
    write_jsonl(str(late), TianchiConfig(events=1500, users=60, days=0.2, seed=5, late_ratio=0.05))
    ddl = SOURCE_DDL.strip().rstrip(";").replace("proctime AS PROCTIME(),", "")
    flink_on_time = run_flink([ddl.format(path=on_time)], {"range": RANGE_QUERY})
    flink_late = run_flink([ddl.format(path=late)], {"rows": ROWS_QUERY})
    assert materialize(_engine(on_time, "400").collect(RANGE_QUERY)) == materialize(flink_on_time["range"])
    assert materialize(_engine(late, "400").collect(ROWS_QUERY)) == materialize(flink_late["rows"])
