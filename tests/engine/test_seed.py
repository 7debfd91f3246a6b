"""The seed's three analyses (000_da2bfbb3177ff7d4.txt) as written, checked against the oracle."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests import oracle
from tests.engine.conftest import SOURCE_DDL, run_script, sqlite_rows, sqlite_sink

SEED_QUERIES = """
CREATE TABLE buy_cnt_per_hour (
    hour_of_day BIGINT,
    buy_cnt BIGINT
) WITH ({hourly_sink});

CREATE TABLE cumulative_uv (
    date_str STRING,
    time_str STRING,
    uv BIGINT,
    PRIMARY KEY (date_str, time_str) NOT ENFORCED
) WITH ({uv_sink});

CREATE TABLE category_dim (
   sub_category_id BIGINT,
   parent_category_name STRING
) WITH (
   'connector' = 'jdbc',
   'url' = '{dim_url}',
   'table-name' = 'category',
   'username' = 'root',
   'password' = '123456',
   'lookup.cache.max-rows' = '5000',
   'lookup.cache.ttl' = '10min'
);

CREATE TABLE top_category (
    category_name STRING PRIMARY KEY NOT ENFORCED,
    buy_cnt BIGINT
) WITH ({top_sink});

INSERT INTO buy_cnt_per_hour
SELECT HOUR(TUMBLE_START(ts, INTERVAL '1' HOUR)), COUNT(*)
FROM user_behavior
WHERE behavior = 'buy'
GROUP BY TUMBLE(ts, INTERVAL '1' HOUR);

INSERT INTO cumulative_uv
SELECT date_str, MAX(time_str), COUNT(DISTINCT user_id) as uv
FROM (
  SELECT
    DATE_FORMAT(ts, 'yyyy-MM-dd') as date_str,
    SUBSTR(DATE_FORMAT(ts, 'HH:mm'),1,4) || '0' as time_str,
    user_id
  FROM user_behavior)
GROUP BY date_str;

CREATE VIEW rich_user_behavior AS
SELECT U.user_id, U.item_id, U.behavior, C.parent_category_name as category_name
FROM user_behavior AS U LEFT JOIN category_dim FOR SYSTEM_TIME AS OF U.proctime AS C
ON U.category_id = C.sub_category_id;

INSERT INTO top_category
SELECT category_name, COUNT(*) buy_cnt
FROM rich_user_behavior
WHERE behavior = 'buy'
GROUP BY category_name;
"""


def seed_script(events_file, results_db, dim_url: str) -> str:
    return SOURCE_DDL.format(path=events_file) + SEED_QUERIES.format(
        hourly_sink=sqlite_sink(results_db, "buy_cnt_per_hour"),
        uv_sink=sqlite_sink(results_db, "cumulative_uv"),
        top_sink=sqlite_sink(results_db, "top_category"),
        dim_url=dim_url,
    )


@pytest.fixture(scope="module")
def seed_results(tmp_path_factory, events_file, category_db):
    results = tmp_path_factory.mktemp("results") / "results.db"
    engine = run_script(seed_script(events_file, results, f"jdbc:sqlite:{category_db}"))
    return results, engine


def test_hourly_trading_volume(seed_results, events_file):
    results, _ = seed_results
    expected, _ = oracle.window_counts(
        oracle.read_events(events_file), where=lambda e: e["behavior"] == "buy"
    )
    want = sorted((oracle.hour_of(start), count) for (start, _), count in expected.items())
    assert sorted(sqlite_rows(results, "buy_cnt_per_hour")) == want
    assert len(want) >= 24


def test_cumulative_unique_visitors(seed_results, events_file):
    results, _ = seed_results
    expected = oracle.cumulative_uv(oracle.read_events(events_file))
    got = {(d, t): uv for d, t, uv in sqlite_rows(results, "cumulative_uv")}
    assert got == expected
    assert len(got) > 100  # a point per 10 minutes


def test_top_categories(seed_results, events_file, category_db):
    import sqlite3

    results, _ = seed_results
    with sqlite3.connect(category_db) as conn:
        categories = dict(conn.execute("SELECT * FROM category").fetchall())
    expected = oracle.top_category(oracle.read_events(events_file), categories)
    got = dict(sqlite_rows(results, "top_category"))
    assert got == expected
    assert None in got  # categories missing from the dimension table stay, as NULL


def test_late_and_malformed_are_counted(seed_results, events_file, tianchi_config):
    _, engine = seed_results
    metrics = engine.last_job.metrics()
    _, late = oracle.window_counts(oracle.read_events(events_file), where=lambda e: e["behavior"] == "buy")
    assert metrics["insert-into_buy_cnt_per_hour"]["late_dropped"] == late > 0
    assert metrics["insert-into_buy_cnt_per_hour"]["malformed"] > 0


def test_dates_follow_local_time_zone(tmp_path, events_file):
    db = tmp_path / "r.db"
    script = (
        SOURCE_DDL.format(path=events_file)
        + f"""
    CREATE TABLE days (d STRING PRIMARY KEY NOT ENFORCED, n BIGINT)
        WITH ({sqlite_sink(db, "days")});
    INSERT INTO days SELECT DATE_FORMAT(ts, 'yyyy-MM-dd'), COUNT(*) FROM user_behavior
    GROUP BY DATE_FORMAT(ts, 'yyyy-MM-dd');
    """
    )
    run_script("SET 'table.local-time-zone' = 'Asia/Shanghai';" + script)
    events = oracle.read_events(events_file)
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    expected: dict[str, int] = {}
    for e in events:
        day = datetime.fromtimestamp(e["ts"] / 1000, tz=UTC).astimezone(zone).strftime("%Y-%m-%d")
        expected[day] = expected.get(day, 0) + 1
    assert dict(sqlite_rows(db, "days")) == expected
