"""Processing time with a clock the test moves: each row takes the clock's time when an operator
processes it, and processing-time windows and OVER frames fire when the clock passes them, not at
the end of a bounded input (Flink never fires the timers left then)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.runtime.clock import ManualClock

HOUR_MS = 3_600_000
START = int(datetime(2024, 1, 1, 0, 10, tzinfo=UTC).timestamp() * 1000)
ROWS = [("a", 1), ("b", 2), ("a", 3), ("a", 4), ("b", 5), ("a", 6)]


def _engine(tmp_path, clock: ManualClock, step_ms: int) -> Engine:
    """Two rows a batch; the clock moves `step_ms` after each batch."""
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"u": u, "v": v}) + b"\n" for u, v in ROWS))
    engine = Engine(Settings({"table.exec.mini-batch.size": "2"}), clock=clock)
    engine.execute_script(
        "CREATE TABLE t (u STRING, v INT, proc AS PROCTIME()) WITH ("
        f"'connector' = 'filesystem', 'path' = '{path}', 'format' = 'json')"
    )
    engine.on_batch = lambda job: clock.advance(step_ms)
    return engine


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


def test_tumble_windows_fire_as_the_clock_passes_their_end(tmp_path):
    engine = _engine(tmp_path, ManualClock(START), HOUR_MS)
    rows = engine.collect(
        "SELECT window_start, window_end, COUNT(*) AS c, SUM(v) AS s FROM TABLE(TUMBLE(TABLE t, "
        "DESCRIPTOR(proc), INTERVAL '1' HOUR)) GROUP BY window_start, window_end"
    )
    hour = START - START % HOUR_MS
    assert [r for _, r in rows] == [
        (_at(hour), _at(hour + HOUR_MS), 2, 3),
        (_at(hour + HOUR_MS), _at(hour + 2 * HOUR_MS), 2, 7),
        (_at(hour + 2 * HOUR_MS), _at(hour + 3 * HOUR_MS), 2, 11),
    ]


def test_legacy_group_window_per_key(tmp_path):
    engine = _engine(tmp_path, ManualClock(START), HOUR_MS)
    rows = engine.collect(
        "SELECT u, TUMBLE_START(proc, INTERVAL '1' HOUR) AS ws, COUNT(*) AS c FROM t "
        "GROUP BY u, TUMBLE(proc, INTERVAL '1' HOUR)"
    )
    hour = START - START % HOUR_MS
    assert sorted(r for _, r in rows) == [
        ("a", _at(hour), 1),
        ("a", _at(hour + HOUR_MS), 2),
        ("a", _at(hour + 2 * HOUR_MS), 1),
        ("b", _at(hour), 1),
        ("b", _at(hour + 2 * HOUR_MS), 1),
    ]


def test_open_windows_are_not_fired_at_end_of_input(tmp_path):
    engine = _engine(tmp_path, ManualClock(START), 0)
    query = (
        "SELECT COUNT(*) AS c FROM TABLE(HOP(TABLE t, DESCRIPTOR(proc), INTERVAL '1' MINUTE, "
        "INTERVAL '1' HOUR)) GROUP BY window_start, window_end"
    )
    assert engine.collect(query) == []


def test_over_range_on_processing_time(tmp_path):
    """A bounded RANGE frame: a millisecond's rows leave together once the clock has passed it;
    the frame is the partition's rows processed within the interval before."""
    engine = _engine(tmp_path, ManualClock(START), 30 * 60_000)
    rows = engine.collect(
        "SELECT u, v, COUNT(*) OVER (PARTITION BY u ORDER BY proc RANGE BETWEEN INTERVAL '1' HOUR "
        "PRECEDING AND CURRENT ROW) AS c FROM t"
    )
    expected = [("a", 1, 1), ("b", 2, 1), ("a", 3, 3), ("a", 4, 3), ("b", 5, 2), ("a", 6, 4)]
    assert [r for _, r in rows] == expected


def test_over_rows_on_processing_time_emits_in_arrival_order(tmp_path):
    engine = _engine(tmp_path, ManualClock(START), 0)
    rows = engine.collect(
        "SELECT u, v, SUM(v) OVER (PARTITION BY u ORDER BY proc ROWS BETWEEN 1 PRECEDING AND "
        "CURRENT ROW) AS s FROM t"
    )
    assert [r for _, r in rows] == [
        ("a", 1, 1),
        ("b", 2, 2),
        ("a", 3, 4),
        ("a", 4, 7),
        ("b", 5, 7),
        ("a", 6, 10),
    ]
