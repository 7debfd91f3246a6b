"""Event-time results do not depend on how the input is cut into micro-batches."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clickstream.simulate.tianchi import TianchiConfig, write_jsonl
from tests.engine.conftest import SOURCE_DDL, run_script, sqlite_rows, sqlite_sink

QUERIES = """
CREATE TABLE hourly (ws STRING, cnt BIGINT, uv BIGINT) WITH ({hourly});
CREATE TABLE hop (ws STRING, behavior STRING, cnt BIGINT) WITH ({hop});
CREATE TABLE cumulative (ws STRING, we STRING, uv BIGINT) WITH ({cumulative});
CREATE TABLE cumulative_uv (date_str STRING, time_str STRING, uv BIGINT,
    PRIMARY KEY (date_str, time_str) NOT ENFORCED) WITH ({cumulative_uv});
CREATE TABLE per_behavior (behavior STRING PRIMARY KEY NOT ENFORCED, n BIGINT, users BIGINT)
    WITH ({per_behavior});
EXECUTE STATEMENT SET BEGIN
INSERT INTO hourly SELECT CAST(TUMBLE_START(ts, INTERVAL '1' HOUR) AS STRING), COUNT(*),
    COUNT(DISTINCT user_id) FROM user_behavior WHERE behavior = 'buy'
    GROUP BY TUMBLE(ts, INTERVAL '1' HOUR);
INSERT INTO hop SELECT CAST(window_start AS STRING), behavior, COUNT(*)
    FROM TABLE(HOP(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '10' MINUTES, INTERVAL '1' HOUR))
    GROUP BY window_start, window_end, behavior;
INSERT INTO cumulative SELECT CAST(window_start AS STRING), CAST(window_end AS STRING),
    COUNT(DISTINCT user_id)
    FROM TABLE(CUMULATE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '10' MINUTES,
                        INTERVAL '1' DAY))
    GROUP BY window_start, window_end;
INSERT INTO cumulative_uv SELECT date_str, MAX(time_str), COUNT(DISTINCT user_id) as uv
    FROM (SELECT DATE_FORMAT(ts, 'yyyy-MM-dd') as date_str,
                 SUBSTR(DATE_FORMAT(ts, 'HH:mm'),1,4) || '0' as time_str, user_id
          FROM user_behavior)
    GROUP BY date_str;
INSERT INTO per_behavior SELECT behavior, COUNT(*), COUNT(DISTINCT user_id) FROM user_behavior
    GROUP BY behavior;
INSERT INTO window_of_windows SELECT CAST(window_start AS STRING), SUM(cnt), MAX(cnt)
    FROM TABLE(TUMBLE(TABLE ten_minutes, DESCRIPTOR(rowtime), INTERVAL '1' HOUR))
    GROUP BY window_start, window_end;
INSERT INTO join_then_window SELECT CAST(window_start AS STRING), COUNT(*), COUNT(DISTINCT user_id)
    FROM TABLE(TUMBLE(TABLE viewed_then_bought, DESCRIPTOR(ts), INTERVAL '30' MINUTES))
    GROUP BY window_start, window_end;
INSERT INTO top_categories SELECT CAST(ws AS STRING), category_id, n, rn FROM (
    SELECT window_start AS ws, category_id, n, ROW_NUMBER() OVER (
        PARTITION BY window_start, window_end ORDER BY n DESC, category_id) AS rn
    FROM (SELECT window_start, window_end, category_id, COUNT(*) AS n
          FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '1' HOUR))
          GROUP BY window_start, window_end, category_id))
    WHERE rn <= 3;
INSERT INTO recent_per_user SELECT user_id, item_id, n FROM (
    SELECT user_id, item_id, COUNT(*) OVER (PARTITION BY user_id ORDER BY ts
        ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) AS n FROM user_behavior);
END;
"""
# Pipelines of several operators (window over window, join then window, window then Top-N).
VIEWS = """
CREATE VIEW ten_minutes AS SELECT window_start AS w_start, window_time AS rowtime, COUNT(*) AS cnt
    FROM TABLE(TUMBLE(TABLE user_behavior, DESCRIPTOR(ts), INTERVAL '10' MINUTES))
    GROUP BY window_start, window_end, window_time;
CREATE VIEW viewed_then_bought AS SELECT b.user_id, b.ts FROM user_behavior b JOIN user_behavior v
    ON b.user_id = v.user_id AND b.item_id = v.item_id AND v.behavior = 'pv' AND b.behavior = 'buy'
    AND v.ts BETWEEN b.ts - INTERVAL '1' HOUR AND b.ts;
CREATE TABLE window_of_windows (ws STRING, total BIGINT, busiest BIGINT) WITH ({window_of_windows});
CREATE TABLE join_then_window (ws STRING, n BIGINT, users BIGINT) WITH ({join_then_window});
CREATE TABLE top_categories (ws STRING, category_id BIGINT, n BIGINT, rn BIGINT) WITH ({top_categories});
CREATE TABLE recent_per_user (user_id BIGINT, item_id BIGINT, n BIGINT) WITH ({recent_per_user});
"""
TABLES = (
    "hourly",
    "hop",
    "cumulative",
    "cumulative_uv",
    "per_behavior",
    "window_of_windows",
    "join_then_window",
    "top_categories",
    "recent_per_user",
)


def results(tmp_path, events_file, batch_size: str) -> dict[str, list]:
    db = tmp_path / f"r{batch_size}.db"
    sinks = {t: sqlite_sink(db, t) for t in TABLES}
    script = SOURCE_DDL.format(path=events_file) + VIEWS.format(**sinks) + QUERIES.format(**sinks)
    run_script(script, **{"table.exec.mini-batch.size": batch_size})
    return {t: sorted(sqlite_rows(db, t), key=repr) for t in TABLES}


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "events.jsonl"
    write_jsonl(
        str(path),
        TianchiConfig(
            events=400,
            users=60,
            items=200,
            categories=20,
            days=0.25,
            late_ratio=0.05,
            malformed_ratio=0.01,
            disorder_ms=20_000,
            seed=7,
        ),
    )
    return path


def test_batch_sizes_give_identical_results(tmp_path, small_file):
    reference = results(tmp_path, small_file, "-1")
    assert all(reference[t] for t in TABLES)
    for size in ("1", "7", "1000"):
        assert results(tmp_path, small_file, size) == reference, f"batch size {size}"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(2, 300),
    disorder=st.sampled_from([0, 4_000, 60_000]),
    late=st.sampled_from([0.0, 0.1]),
)
def test_random_streams_random_batch_sizes(tmp_path_factory, seed, size, disorder, late):
    tmp_path = tmp_path_factory.mktemp("h")
    path = tmp_path / "events.jsonl"
    write_jsonl(
        str(path),
        TianchiConfig(
            events=300,
            users=40,
            items=100,
            categories=10,
            days=0.2,
            late_ratio=late,
            disorder_ms=disorder,
            seed=seed,
        ),
    )
    assert results(tmp_path, path, str(size)) == results(tmp_path, path, "-1")
