"""Derived columns of a source: computed columns, PROCTIME() and the watermark, whichever way
they are computed (Arrow for PROCTIME() and `ts - INTERVAL`, DuckDB for the rest)."""

from __future__ import annotations

from datetime import UTC, datetime

from clickstream.engine import Engine


def test_computed_rowtime_proctime_read_by_another_column_and_watermark(tmp_path):
    path = tmp_path / "events.jsonl"
    # epoch seconds; the 4th event is 7 s behind the 3rd: its window closed at the watermark 109
    path.write_text(
        "".join(f'{{"user": "u{i}", "epoch": {e}}}\n' for i, e in enumerate([100, 101, 110, 103, 111]))
    )
    engine = Engine()
    engine.execute_script(f"""
        CREATE TABLE events (
            `user` STRING, epoch BIGINT,
            ts AS TO_TIMESTAMP_LTZ(epoch, 0),
            pt AS PROCTIME(),
            pt_year AS YEAR(pt),
            pt2 AS PROCTIME(),
            WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
        ) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json');
    """)
    rows = engine.collect(
        "SELECT `user`, pt_year, YEAR(pt2) AS y2, window_start, COUNT(*) AS c "
        "FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '5' SECOND)) "
        "GROUP BY `user`, pt_year, YEAR(pt2), window_start, window_end"
    )
    year = datetime.now(UTC).year
    got = sorted((row[0], row[1], row[2], row[3].second, row[4]) for _, row in rows)
    # u3 (epoch 103, window [100, 105)) came after the watermark reached 109: dropped as late
    assert got == [
        ("u0", year, year, 40, 1),
        ("u1", year, year, 40, 1),
        ("u2", year, year, 50, 1),
        ("u4", year, year, 50, 1),
    ]
    assert engine.last_job.metrics()["collect"]["late_dropped"] == 1


def test_to_timestamp_ltz_reads_milliseconds_by_default_and_seconds_with_precision_0(tmp_path):
    (tmp_path / "one.jsonl").write_text('{"ms": 1511712000123, "s": 1511712000}\n')
    engine = Engine()
    engine.execute_script(
        f"CREATE TABLE t (ms BIGINT, s BIGINT) WITH ('connector' = 'filesystem', "
        f"'path' = '{tmp_path / 'one.jsonl'}', 'format' = 'json');"
    )
    rows = engine.collect(
        "SELECT TO_TIMESTAMP_LTZ(ms), TO_TIMESTAMP_LTZ(ms, 3), TO_TIMESTAMP_LTZ(s, 0) FROM t"
    )
    want = datetime(2017, 11, 26, 16, 0, 0, 123000, tzinfo=UTC)
    ((_, (millis, millis3, seconds)),) = rows
    assert millis == millis3 == want and seconds == want.replace(microsecond=0)
