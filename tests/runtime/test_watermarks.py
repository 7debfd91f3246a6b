"""Per-record watermarks, with partitions: the minimum over partitions of their running maximum."""

from __future__ import annotations

import time

import pyarrow as pa

from clickstream.runtime.batch import MIN_WATERMARK
from clickstream.runtime.watermarks import WatermarkTracker

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
        pieces += split.assign(pa.array(values[start:start + 3], pa.int64()),
                               pa.array(parts[start:start + 3], pa.int32())).to_pylist()
    assert pieces == whole.to_pylist()


def test_idle_partition_stops_holding_back():
    tracker = WatermarkTracker(partitions=2, idle_timeout_ms=50)
    tracker.assign(pa.array([100], pa.int64()), pa.array([0], pa.int32()))
    assert tracker.current == M  # partition 1 not idle yet
    time.sleep(0.08)
    tracker.assign(pa.array([120], pa.int64()), pa.array([0], pa.int32()))
    assert tracker.current == 120
