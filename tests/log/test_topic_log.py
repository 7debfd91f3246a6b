"""The embedded topic log in one process: round trips, partitioning, positions, segments, torn tails."""

from __future__ import annotations

import os

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from clickstream.log import SCHEMA, LogError, TopicLog, partition_for
from clickstream.log.frames import HEADER_BYTES
from clickstream.log.segments import list_segments, segment_name


def events(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"seq": i, "user": f"u{i % 13}"}) for i in range(start, start + n)]


def read_all(log: TopicLog, topic: str, **kwargs) -> pa.Table:
    with log.open_reader(topic, stop="latest", **kwargs) as reader:
        tables = []
        while not reader.finished():
            tables.append(reader.poll(777))
        return pa.concat_tables(tables or [SCHEMA.empty_table()])


def seqs(table: pa.Table) -> list[int]:
    return [orjson.loads(v)["seq"] for v in table.column("value").to_pylist()]


@pytest.fixture
def log(tmp_path) -> TopicLog:
    with TopicLog(tmp_path / "log") as topic_log:
        yield topic_log


def test_round_trip_keeps_order_and_offsets(log):
    log.append("t", events(2500))
    log.append("t", events(500, 2500))
    table = read_all(log, "t")
    assert table.schema == SCHEMA
    assert seqs(table) == list(range(3000))
    assert table.column("offset").to_pylist() == list(range(3000))
    assert set(table.column("partition").to_pylist()) == {0}
    assert log.end_offsets("t") == {0: 3000}


def test_values_are_bytes_as_given(log):
    values = [b"", b"\x00\xff binary", "é".encode(), b"x" * 100_000]
    log.append("t", values)
    assert read_all(log, "t").column("value").to_pylist() == values


def test_create_topic_is_idempotent_and_only_grows(log, tmp_path):
    assert log.create_topic("t", 3) == 3
    assert log.create_topic("t", 3) == 3
    assert log.create_topic("t", 1) == 3
    assert log.create_topic("t", 4) == 4
    assert TopicLog(tmp_path / "log").partitions("t") == 4
    assert log.topics() == ["t"]
    with pytest.raises(LogError, match="not a valid topic name"):
        log.create_topic("../escape")


def test_partitions_by_key(log):
    log.create_topic("t", 4)
    values = events(4000)
    keys = [orjson.loads(v)["user"].encode() for v in values]
    log.append("t", values, keys)
    table = read_all(log, "t")
    assert sorted(seqs(table)) == list(range(4000))
    by_user: dict[str, set[int]] = {}
    for partition, value in zip(
        table.column("partition").to_pylist(), table.column("value").to_pylist(), strict=True
    ):
        user = orjson.loads(value)["user"]
        by_user.setdefault(user, set()).add(partition)
        assert partition == partition_for(user.encode(), 4)
    assert all(len(parts) == 1 for parts in by_user.values())
    assert len({p for parts in by_user.values() for p in parts}) > 1
    for partition in range(4):  # order kept within each partition
        mine = table.filter(pc.equal(table.column("partition"), partition))
        assert seqs(mine) == sorted(seqs(mine))
        assert mine.column("offset").to_pylist() == list(range(mine.num_rows))


def test_unkeyed_batches_rotate_over_partitions(log):
    log.create_topic("t", 3)
    for i in range(6):
        log.append("t", events(10, 10 * i))
    assert sum(log.end_offsets("t").values()) == 60
    assert all(end == 20 for end in log.end_offsets("t").values())
    log.append("t", events(5, 60), partition=2)
    assert log.end_offsets("t")[2] == 25
    with pytest.raises(LogError, match="no partition 3"):
        log.append("t", events(1), partition=3)


def test_read_again_from_the_beginning(log):
    log.append("t", events(100))
    first = read_all(log, "t")
    assert seqs(read_all(log, "t")) == seqs(first)
    with log.open_reader("t") as reader:
        assert seqs(reader.poll(1000)) == list(range(100))
        assert reader.poll(1000).num_rows == 0
        reader.seek(0, 0)
        assert seqs(reader.poll(1000)) == list(range(100))
        reader.seek(0, 42)  # into the middle of a frame
        assert seqs(reader.poll(5)) == [42, 43, 44, 45, 46]
        assert reader.position() == {0: 47}
        reader.seek_to_beginning()
        assert reader.position() == {0: 0}


def test_poll_limit_and_new_data_while_reading(log):
    log.append("t", events(10))
    with log.open_reader("t") as reader:
        assert reader.poll(4).num_rows == 4
        assert reader.poll(100).column("offset").to_pylist() == list(range(4, 10))
        assert reader.poll(100).num_rows == 0
        log.append("t", events(3, 10))
        assert seqs(reader.poll(100)) == [10, 11, 12]


def test_start_latest_reads_only_new_records(log):
    log.append("t", events(10))
    with log.open_reader("t", start="latest") as reader:
        assert reader.poll(100).num_rows == 0
        log.append("t", events(2, 10))
        assert seqs(reader.poll(100)) == [10, 11]


def test_committed_offsets_per_group_survive_reopening(log, tmp_path):
    log.create_topic("t", 2)
    log.append("t", events(50), partition=0)
    log.append("t", events(30, 50), partition=1)
    with log.open_reader("t", group="a") as reader:
        reader.poll(40)
        position = reader.position()
        reader.commit()
    with log.open_reader("t", group="b") as reader:
        reader.poll(10)
        reader.commit()
    assert sum(position.values()) == 40

    reopened = TopicLog(tmp_path / "log")
    with reopened.open_reader("t", group="a", start="committed") as reader:
        assert reader.position() == position
        assert reader.committed() == position
        rest = reader.poll(1000)
    assert rest.num_rows == 40
    with reopened.open_reader("t", group="b", start="committed") as reader:
        assert sum(reader.position().values()) == 10
    with reopened.open_reader("t", group="new", start="committed") as reader:
        assert reader.position() == {0: 0, 1: 0}  # no commit yet: from the earliest
    with reopened.open_reader("t") as reader, pytest.raises(LogError, match="no group"):
        reader.commit()


def test_segments_roll_and_readers_cross_them(tmp_path):
    with TopicLog(tmp_path, segment_bytes=4096) as log:
        for i in range(40):
            log.append("t", events(25, 25 * i))
        segments = list_segments(tmp_path / "t" / "0")
        assert len(segments) > 5
        assert seqs(read_all(log, "t")) == list(range(1000))
        with log.open_reader("t") as reader:
            reader.seek(0, 733)
            assert seqs(reader.poll(3)) == [733, 734, 735]


def test_retention_deletes_old_segments_and_readers_start_at_what_is_left(tmp_path):
    with TopicLog(tmp_path, segment_bytes=4096, retention_bytes=3 * 4096) as log:
        for i in range(40):
            log.append("t", events(25, 25 * i))
        segments = list_segments(tmp_path / "t" / "0")
        assert segments[0] > 0 and len(segments) <= 5
        table = read_all(log, "t")
        assert seqs(table) == list(range(segments[0], 1000))
        assert table.column("offset")[0].as_py() == segments[0]


def test_torn_tail_is_invisible_then_cut_off_by_the_next_appender(tmp_path):
    with TopicLog(tmp_path) as log:
        log.append("t", events(10))
    segment = tmp_path / "t" / "0" / segment_name(0)
    whole = segment.stat().st_size
    with TopicLog(tmp_path) as log:
        log.append("t", events(10, 10))
    # An appender killed mid-write: its frame is there only in part.
    os.truncate(segment, whole + HEADER_BYTES + 30)
    with TopicLog(tmp_path) as log, log.open_reader("t") as reader:
        assert seqs(reader.poll(100)) == list(range(10))
        assert reader.poll(100).num_rows == 0
        assert reader.end_offsets() == {0: 10}
        log.append("t", events(5, 100))
        assert seqs(reader.poll(100)) == [100, 101, 102, 103, 104]
    assert seqs(read_all(TopicLog(tmp_path), "t")) == list(range(10)) + list(range(100, 105))


def test_garbage_at_the_tail_is_cut_off(tmp_path):
    with TopicLog(tmp_path) as log:
        log.append("t", events(10))
    segment = tmp_path / "t" / "0" / segment_name(0)
    with segment.open("ab") as f:
        f.write(b"\0" * 100)  # what a power loss can leave
    with TopicLog(tmp_path) as log:
        log.append("t", events(1, 10))
        assert seqs(read_all(log, "t")) == list(range(11))


def test_a_reader_of_a_missing_topic_waits_for_it(log):
    with log.open_reader("later") as reader:
        assert reader.poll(10).num_rows == 0
        log.create_topic("later", 2)
        log.append("later", events(3), partition=1)
        assert seqs(reader.poll(10)) == [0, 1, 2]
        assert reader.partitions == [0, 1]


def test_fsync_mode_and_bad_options(tmp_path):
    with TopicLog(tmp_path, sync="fsync") as log:
        log.append("t", events(3))
        assert seqs(read_all(log, "t")) == [0, 1, 2]
    with pytest.raises(LogError, match="sync mode"):
        TopicLog(tmp_path, sync="sometimes")
    with TopicLog(tmp_path) as log, pytest.raises(LogError, match="start"):
        log.open_reader("t", start="middle")


def test_time_retention_keeps_only_the_active_segment_when_everything_is_old(tmp_path):
    with TopicLog(tmp_path, segment_bytes=4096, retention_ms=0) as log:
        for i in range(40):
            log.append("t", events(25, 25 * i))
        segments = list_segments(tmp_path / "t" / "0")
        assert len(segments) <= 2  # the active one, and the one sealed since the last roll
        assert seqs(read_all(log, "t")) == list(range(segments[0], 1000))


def test_a_sealed_newest_segment_is_rolled_by_the_next_appender(tmp_path):
    with TopicLog(tmp_path) as log:
        log.append("t", events(10))
    # a roller that sealed the segment and died before starting the next one
    os.chmod(tmp_path / "t" / "0" / segment_name(0), 0o444)
    with TopicLog(tmp_path) as log:
        log.append("t", events(5, 10))
        assert list_segments(tmp_path / "t" / "0") == [0, 10]
        assert seqs(read_all(log, "t")) == list(range(15))
