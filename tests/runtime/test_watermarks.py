"""Per-record watermarks, with partitions: the minimum over partitions of their running maximum."""

from __future__ import annotations

import pyarrow as pa

from clickstream.runtime import watermarks
from clickstream.runtime.batch import MIN_WATERMARK
from clickstream.runtime.watermarks import WatermarkTracker
from tests.runtime.manual_time import ManualTime

M = MIN_WATERMARK


def test_single_partition_running_maximum_before_each_record():
    tracker = WatermarkTracker()
    before = tracker.assign(pa.array([10, 5, None, 20], pa.int64()))
    assert before.to_pylist() == [M, 10, 10, 10]
    assert tracker.current == 20
    assert tracker.assign(pa.array([15], pa.int64())).to_pylist() == [20]


def test_partitions_hold_back_until_each_has_data():
    tracker = WatermarkTracker(partitions=2)
    before = tracker.assign(pa.array([100, 200, 50], pa.int64()), pa.array([0, 0, 1], pa.int32()))
    # partition 1 had nothing until the third record: the source watermark stays at -inf
    assert before.to_pylist() == [M, M, M]
    assert tracker.current == 50
    before = tracker.assign(pa.array([300, 150], pa.int64()), pa.array([1, 1], pa.int32()))
    assert before.to_pylist() == [50, 200]
    assert tracker.current == 200


def test_batch_cut_does_not_change_watermarks():
    values = [5, 9, 3, 12, 7, 30, 1, 2]
    parts = [0, 1, 1, 0, 1, 0, 1, 1]
    whole = WatermarkTracker(2).assign(pa.array(values, pa.int64()), pa.array(parts, pa.int32()))
    split = WatermarkTracker(2)
    pieces = []
    for start in range(0, len(values), 3):
        pieces += split.assign(
            pa.array(values[start : start + 3], pa.int64()), pa.array(parts[start : start + 3], pa.int32())
        ).to_pylist()
    assert pieces == whole.to_pylist()


def test_idle_partition_stops_holding_back(monkeypatch):
    clock = ManualTime()
    monkeypatch.setattr(watermarks, "time", clock)
    tracker = WatermarkTracker(partitions=2, idle_timeout_ms=50)
    tracker.assign(pa.array([100], pa.int64()), pa.array([0], pa.int32()))
    clock.advance(0.049)
    assert tracker.current == M  # partition 1 not idle yet
    clock.advance(0.031)
    tracker.assign(pa.array([120], pa.int64()), pa.array([0], pa.int32()))
    assert tracker.current == 120


def test_epoch_ms_of_any_time_unit_matches_duckdb():
    import duckdb
    import pyarrow.compute as pc

    from clickstream.runtime.source_reader import _epoch_ms

    micros = [-1_500, -500, 0, 999, 1_511_712_000_123_456, None]
    for unit in ("s", "ms", "us", "ns"):
        times = pc.cast(
            pa.chunked_array([pa.array(micros, pa.timestamp("us"))]), pa.timestamp(unit), safe=False
        )
        rows = pa.table({"t": times})  # noqa: F841 - read by the query below
        want = duckdb.sql("SELECT epoch_ms(t) - 5000 AS v FROM rows").to_arrow_table()
        assert _epoch_ms(times, 5000).to_pylist() == want.column("v").to_pylist(), unit


def test_simple_watermark_expressions_become_a_column_and_a_delay():
    from clickstream.engine import Engine

    def delay(watermark: str):
        engine = Engine()
        engine.execute_script(
            f"CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts AS {watermark}) "
            "WITH ('connector' = 'datagen')"
        )
        return engine._planner().scan(engine.catalog.table("t")).watermark_delay

    assert delay("ts - INTERVAL '5' SECOND") == ("ts", 5000)
    assert delay("ts") == ("ts", 0)
    assert delay("(ts) - INTERVAL '1' MINUTE") == ("ts", 60_000)
    assert delay("ts + INTERVAL '5' SECOND") is None  # left to SQL
    assert delay("ts - INTERVAL '1' SECOND - INTERVAL '1' SECOND") is None
