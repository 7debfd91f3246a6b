"""OVER functions on event time (LAG, FIRST_VALUE, LAST_VALUE, ROW_NUMBER, COUNT in the default
frame, RANGE UNBOUNDED PRECEDING) against a batch oracle, on data with out-of-order and late rows,
at several mini-batch sizes."""

from __future__ import annotations

from collections import Counter

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.simulate.tianchi import TianchiConfig, write_jsonl
from tests import oracle
from tests.engine.conftest import SOURCE_DDL
from tests.flink_oracle import materialize

QUERY = """
SELECT user_id, item_id, LAG(item_id) OVER w AS before_item, FIRST_VALUE(category_id) OVER w AS f,
       LAST_VALUE(category_id) OVER w AS l, COUNT(*) OVER w AS c
FROM user_behavior WINDOW w AS (PARTITION BY user_id ORDER BY ts)"""

ROW_NUMBER = (
    "SELECT user_id, item_id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts) AS rn FROM user_behavior"
)


@pytest.fixture(scope="module")
def late_events(tmp_path_factory):
    path = tmp_path_factory.mktemp("over") / "events.jsonl"
    write_jsonl(str(path), TianchiConfig(events=3000, users=80, days=0.3, seed=3, late_ratio=0.05))
    return path


def _run(path, query: str, batch: str) -> Counter:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(SOURCE_DDL.format(path=path))
    return materialize(engine.collect(query))


def _partitions(path) -> dict[int, list[tuple[int, int, dict]]]:
    """Per user, the rows that are not late (with UNBOUNDED PRECEDING a row behind the watermark
    when it arrives is late), in time and arrival order."""
    users: dict[int, list[tuple[int, int, dict]]] = {}
    for seq, (event, watermark) in enumerate(oracle.with_watermarks(oracle.read_events(path))):
        if watermark == -(2**63) or event["ts"] > watermark:
            users.setdefault(event["user_id"], []).append((event["ts"], seq, event))
    for rows in users.values():
        rows.sort(key=lambda r: (r[0], r[1]))
    return users


def _expected(path) -> Counter:
    """The frame of a row is every row of its user up to its time, peers included: peers are
    accumulated together, so LAG gives each the value the last of them gets."""
    expected: Counter = Counter()
    for rows in _partitions(path).values():
        for ts, _, event in rows:
            frame = [r[2] for r in rows if r[0] <= ts]
            categories = [e["category_id"] for e in frame if e["category_id"] is not None]
            before = frame[-2]["item_id"] if len(frame) > 1 else None
            first, last = (categories[0], categories[-1]) if categories else (None, None)
            expected[(event["user_id"], event["item_id"], before, first, last, len(frame))] += 1
    return expected


@pytest.mark.parametrize("batch", ["23", "250", "-1"])
def test_lag_first_last_value_match_oracle(late_events, batch):
    assert _run(late_events, QUERY, batch) == _expected(late_events)


@pytest.mark.parametrize("batch", ["23", "-1"])
def test_row_number_matches_oracle(late_events, batch):
    expected: Counter = Counter()
    for rows in _partitions(late_events).values():
        for n, (_, _, event) in enumerate(rows, start=1):
            expected[(event["user_id"], event["item_id"], n)] += 1
    assert _run(late_events, ROW_NUMBER, batch) == expected
