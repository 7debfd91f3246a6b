"""The same statements on the same file, run by PyFlink and by clickstream, give the same results.

PyFlink runs with a watermark after every event (`pipeline.auto-watermark-interval` = 0, the
harness default), which is the per-record watermark clickstream implements, so out-of-order and
late events are treated alike by both.
"""

from __future__ import annotations

from collections import Counter

import pytest

from clickstream.engine import Engine
from clickstream.simulate.tianchi import TianchiConfig, write_jsonl
from tests.engine.conftest import SOURCE_DDL
from tests.flink_oracle import materialize, run_flink

pytestmark = [pytest.mark.flink, pytest.mark.integration]

QUERIES = {
    "seed_hourly": """
        SELECT HOUR(TUMBLE_START(ts, INTERVAL '1' HOUR)), COUNT(*)
        FROM user_behavior WHERE behavior = 'buy' GROUP BY TUMBLE(ts, INTERVAL '1' HOUR)""",
    "legacy_hop": """
        SELECT behavior, DATE_FORMAT(HOP_END(ts, INTERVAL '15' MINUTE, INTERVAL '1' HOUR),
               'yyyy-MM-dd HH:mm') AS we, COUNT(*) AS n, COUNT(DISTINCT user_id) AS uv
        FROM user_behavior GROUP BY behavior, HOP(ts, INTERVAL '15' MINUTE, INTERVAL '1' HOUR)""",
    "tvf_tumble": """
        SELECT DATE_FORMAT(window_start, 'yyyy-MM-dd HH:mm') AS ws, behavior, COUNT(*) AS n,
               SUM(item_id) AS s, MIN(item_id) AS mn, MAX(item_id) AS mx, AVG(item_id) AS a
        FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '30' MINUTES))
        GROUP BY window_start, window_end, behavior""",
    "tvf_hop": """
        SELECT DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm') AS we, COUNT(DISTINCT user_id) AS uv
        FROM TABLE(HOP(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '20' MINUTES,
                       INTERVAL '1' HOUR))
        WHERE behavior = 'pv' GROUP BY window_start, window_end""",
    "tvf_cumulate": """
        SELECT DATE_FORMAT(window_end, 'yyyy-MM-dd HH:mm') AS we, COUNT(DISTINCT user_id) AS uv,
               COUNT(*) AS n
        FROM TABLE(CUMULATE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '10' MINUTES,
                            INTERVAL '1' DAY))
        GROUP BY window_start, window_end""",
    "grouped": """
        SELECT behavior, COUNT(*) AS n, COUNT(DISTINCT user_id) AS uv, MAX(item_id) AS mx,
               SUM(category_id) AS s
        FROM user_behavior GROUP BY behavior""",
    "grouped_having": """
        SELECT category_id, COUNT(*) AS n FROM user_behavior WHERE behavior = 'buy'
        GROUP BY category_id HAVING COUNT(*) > 2""",
    "top_items": """
        SELECT category_id, item_id, cnt, rn FROM (
          SELECT category_id, item_id, cnt,
                 ROW_NUMBER() OVER (PARTITION BY category_id ORDER BY cnt DESC, item_id) AS rn
          FROM (SELECT category_id, item_id, COUNT(*) AS cnt FROM user_behavior
                GROUP BY category_id, item_id))
        WHERE rn <= 3""",
    "first_event": """
        SELECT user_id, item_id, behavior FROM (
          SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id, item_id ORDER BY ts ASC) AS rn
          FROM user_behavior)
        WHERE rn = 1""",
    "seed_cumulative_uv": """
        SELECT date_str, MAX(time_str), COUNT(DISTINCT user_id) as uv
        FROM (
          SELECT
            DATE_FORMAT(ts, 'yyyy-MM-dd') as date_str,
            SUBSTR(DATE_FORMAT(ts, 'HH:mm'),1,4) || '0' as time_str,
            user_id
          FROM user_behavior)
        GROUP BY date_str""",
}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    path = tmp_path_factory.mktemp("flink") / "events.jsonl"
    write_jsonl(
        str(path),
        TianchiConfig(
            events=3_000,
            users=300,
            items=800,
            categories=40,
            days=0.4,
            late_ratio=0.02,
            late_ms=25 * 60_000,
            disorder_ms=4_000,
            seed=11,
        ),
    )
    ddl = SOURCE_DDL.format(path=path)
    flink = run_flink([ddl.strip().rstrip(";").replace("proctime AS PROCTIME(),", "")], QUERIES)
    engine = Engine()
    engine.execute_script(ddl)
    ours = {name: engine.collect(query) for name, query in QUERIES.items()}
    return flink, ours


@pytest.mark.parametrize("name", list(QUERIES))
def test_same_final_result_as_flink(both, name):
    flink, ours = both
    expected = materialize(flink[name])
    got = materialize(ours[name])
    assert got == expected
    assert sum(expected.values()) > 0


@pytest.mark.parametrize("name", [n for n in QUERIES if n.startswith(("seed_hourly", "legacy", "tvf"))])
def test_windows_only_append(both, name):
    flink, ours = both
    assert {kind for kind, _ in flink[name]} == {kind for kind, _ in ours[name]} == {"+I"}
    assert Counter(row for _, row in ours[name]) == Counter(row for _, row in flink[name])
