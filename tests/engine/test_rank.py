"""Top-N and deduplication (ROW_NUMBER ... WHERE rn <= N) against a batch oracle."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import UnsupportedFeatureError
from tests import oracle
from tests.engine.conftest import SOURCE_DDL
from tests.flink_oracle import materialize

TOP_ITEMS = """
SELECT category_id, item_id, cnt, rn FROM (
  SELECT category_id, item_id, cnt,
         ROW_NUMBER() OVER (PARTITION BY category_id ORDER BY cnt DESC, item_id) AS rn
  FROM (SELECT category_id, item_id, COUNT(*) AS cnt FROM user_behavior
        WHERE behavior = 'pv' GROUP BY category_id, item_id))
WHERE rn <= 3"""

FIRST_EVENT = """
SELECT user_id, item_id, behavior FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id, item_id ORDER BY ts ASC) AS row_num
  FROM user_behavior)
WHERE row_num = 1"""

TOP_BUYERS = """
SELECT * FROM (
  SELECT user_id, n, ROW_NUMBER() OVER (ORDER BY n DESC, user_id) AS r
  FROM (SELECT user_id, COUNT(*) AS n FROM user_behavior WHERE behavior = 'buy'
        GROUP BY user_id))
WHERE r < 6"""


def engine_for(events_file, batch: str = "100000") -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(SOURCE_DDL.format(path=events_file))
    return engine


def test_top_items_per_category(events_file):
    got = materialize(engine_for(events_file, "2000").collect(TOP_ITEMS))
    counts = Counter(
        (e["category_id"], e["item_id"]) for e in oracle.read_events(events_file) if e["behavior"] == "pv"
    )
    by_category = defaultdict(list)
    for (category, item), n in counts.items():
        by_category[category].append((-n, item))
    expected = Counter()
    for category, items in by_category.items():
        for rank, (n, item) in enumerate(sorted(items)[:3], start=1):
            expected[(category, item, -n, rank)] += 1
    assert got == expected


def test_first_event_per_user_and_item(events_file):
    got = materialize(engine_for(events_file, "3000").collect(FIRST_EVENT))
    first: dict[tuple[int, int], tuple[int, int, str]] = {}
    for seq, (e, watermark) in enumerate(oracle.with_watermarks(oracle.read_events(events_file))):
        if e["ts"] <= watermark:
            continue  # event-time deduplication drops rows behind the watermark, as Flink does
        key = (e["user_id"], e["item_id"])
        if key not in first or (e["ts"], seq) < first[key][:2]:
            first[key] = (e["ts"], seq, e["behavior"])
    assert got == Counter((u, i, b) for (u, i), (_, _, b) in first.items())


def test_global_top_n_and_batch_size_invariance(events_file):
    results = [
        materialize(engine_for(events_file, size).collect(TOP_BUYERS)) for size in ("500", "7000", "-1")
    ]
    assert results[0] == results[1] == results[2]
    assert [row[2] for row in sorted(results[0], key=lambda r: r[2])] == [1, 2, 3, 4, 5]


def test_rank_without_end_is_refused(events_file):
    # without any filter on rn, ROW_NUMBER() numbers every row (an OVER aggregate: test_over_functions)
    with pytest.raises(UnsupportedFeatureError, match="Rank end is not specified"):
        engine_for(events_file).collect(
            "SELECT * FROM (SELECT user_id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ts) AS rn "
            "FROM user_behavior) WHERE rn >= 2"
        )
