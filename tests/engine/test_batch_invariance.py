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
END;
"""
TABLES = ("hourly", "hop", "cumulative", "cumulative_uv", "per_behavior")


def results(tmp_path, events_file, batch_size: str) -> dict[str, list]:
    db = tmp_path / f"r{batch_size}.db"
    script = SOURCE_DDL.format(path=events_file) + QUERIES.format(**{t: sqlite_sink(db, t) for t in TABLES})
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
