"""The `kafka` connector against a real Apache Kafka broker (the `kafka_broker` fixture): reading
multi-partition topics in every startup mode, key and value formats, metadata columns, offsets in
checkpoints and the consumer group, and the sink."""

from __future__ import annotations

import time

import orjson
import pyarrow as pa
import pytest

from clickstream.connectors.base import PARTITION
from clickstream.connectors.kafka import KafkaSink, KafkaSource
from clickstream.errors import ConnectorError
from tests.connectors.kafka_helpers import (
    COLUMNS,
    committed,
    ddl,
    drain,
    engine,
    event,
    poll_until,
    produce,
    read_topic,
    settings,
    table,
)

pytestmark = pytest.mark.integration


def _source(tmp_path, broker, topic: str, columns: str = COLUMNS, **options: str) -> KafkaSource:
    options.setdefault("scan.bounded.mode", "latest-offset")
    return KafkaSource(
        table(tmp_path, ddl("src", broker.bootstrap, topic, columns, **options)), settings(tmp_path)
    )


def _events(broker, topic: str, count: int, start: int = 0) -> None:
    produce(
        broker.bootstrap,
        topic,
        [event(i) for i in range(start, start + count)],
        [{"user_id": i % 7} for i in range(start, start + count)],
    )


def test_engine_reads_a_multi_partition_topic(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(3)
    _events(kafka_broker, topic, 900)
    produce(kafka_broker.bootstrap, topic, [b"not json"], partition=1)
    e = engine(tmp_path)
    e.execute_script(ddl("events", kafka_broker.bootstrap, topic, **{"scan.bounded.mode": "latest-offset"}))
    rows = e.collect("SELECT behavior, COUNT(*) FROM events GROUP BY behavior")
    assert sorted(r for op, r in rows if op == "+I") == [("buy", 300), ("cart", 300), ("pv", 300)]
    dead = [orjson.loads(line) for line in (tmp_path / "dead" / "events.jsonl").read_bytes().splitlines()]
    assert [(d["source"], d["partition"], d["record"]) for d in dead] == [(f"kafka:{topic}", 1, "not json")]


def test_each_row_carries_a_partition_index_per_topic_partition(tmp_path, kafka_broker):
    first, second = kafka_broker.new_topic(2), kafka_broker.new_topic(3)
    for topic, partitions in ((first, 2), (second, 3)):
        for partition in range(partitions):
            produce(kafka_broker.bootstrap, topic, [event(i) for i in range(20)], partition=partition)
    source = _source(tmp_path, kafka_broker, f"{first};{second}")
    assert source.partitions == 5
    rows = drain(source)
    assert rows.num_rows == 100
    assert set(rows.column(PARTITION).to_pylist()) == {0, 1, 2, 3, 4}
    source.close()


def test_topic_pattern_reads_every_matching_topic(tmp_path, kafka_broker):
    first, second = (
        kafka_broker.new_topic(1, prefix="pattern-a"),
        kafka_broker.new_topic(1, prefix="pattern-b"),
    )
    _events(kafka_broker, first, 10)
    _events(kafka_broker, second, 20)
    source = _source(tmp_path, kafka_broker, "", **{"topic-pattern": r"pattern-[ab]-.*"})
    assert drain(source).num_rows >= 30  # other tests' pattern topics may be there too
    source.close()


def test_startup_modes(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(2)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(10)], partition=0, timestamp=1_000)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(10, 20)], partition=0, timestamp=2_000)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(20, 25)], partition=1, timestamp=3_000)

    def read(**options: str) -> int:
        source = _source(tmp_path, kafka_broker, topic, **options)
        rows = drain(source)
        source.close()
        return rows.num_rows

    assert read(**{"scan.startup.mode": "earliest-offset"}) == 25
    assert read(**{"scan.startup.mode": "latest-offset"}) == 0
    assert read(**{"scan.startup.mode": "timestamp", "scan.startup.timestamp-millis": "1500"}) == 15
    specific = "partition:0,offset:15;partition:1,offset:4"
    assert read(**{"scan.startup.mode": "specific-offsets", "scan.startup.specific-offsets": specific}) == 6
    bounded = {
        "scan.bounded.mode": "specific-offsets",
        "scan.bounded.specific-offsets": "partition:0,offset:3",
    }
    assert read(**bounded) == 3  # partition 1 has no stop offset: not read, as in Flink
    assert read(**{"scan.bounded.mode": "timestamp", "scan.bounded.timestamp-millis": "2500"}) == 20


def test_group_offsets_are_committed_after_each_checkpoint_and_read_back(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(2)
    _events(kafka_broker, topic, 100)
    group = f"group-{topic}"
    options = {
        "properties.group.id": group,
        "scan.startup.mode": "group-offsets",
        "scan.bounded.mode": "unbounded",
    }
    source = _source(tmp_path, kafka_broker, topic, **options)
    poll_until(source, 100)
    position = source.position()
    source.commit_checkpoint(position)
    ends = {p: o for (_, p), o in position["next"].items()}  # type: ignore[index]
    deadline = time.monotonic() + 20
    while committed(kafka_broker.bootstrap, group, topic, 2) != ends:
        assert time.monotonic() < deadline, "the group's offsets were not committed"
        source.poll(10)  # serves the asynchronous commit's callback
        time.sleep(0.2)
    assert sum(ends.values()) == 100
    source.close()
    _events(kafka_broker, topic, 30, start=100)
    again = _source(tmp_path, kafka_broker, topic, **{**options, "scan.bounded.mode": "latest-offset"})
    assert drain(again).num_rows == 30  # resumes at the group's offsets
    assert again.lag() == 0
    again.close()


def test_position_and_seek_resume_exactly(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(3)
    _events(kafka_broker, topic, 300)
    source = _source(tmp_path, kafka_broker, topic)
    first = source.poll(50)
    assert first is not None
    saved = source.position()
    rest = drain(source).num_rows
    source.close()
    restored = _source(tmp_path, kafka_broker, topic)
    restored.seek(saved)
    assert drain(restored).num_rows == rest == 300 - first.num_rows
    restored.close()


def test_lag_per_partition(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(2)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(7)], partition=1)
    source = _source(tmp_path, kafka_broker, topic, **{"scan.bounded.mode": "unbounded"})
    poll_until(source, 7)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(5)], partition=1)
    deadline = time.monotonic() + 20
    while source.lag_per_partition() != {0: 0, 1: 5}:  # the client learns end offsets as it fetches
        assert time.monotonic() < deadline, source.lag_per_partition()
        time.sleep(0.1)
    source.close()


def test_key_fields_and_except_key(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    produce(
        kafka_broker.bootstrap,
        topic,
        [{"behavior": "pv"}, {"behavior": "buy"}],
        [{"user_id": 7}, {"user_id": 8}],
    )
    source = _source(
        tmp_path,
        kafka_broker,
        topic,
        "user_id BIGINT, behavior STRING",
        **{"key.format": "json", "key.fields": "user_id", "value.fields-include": "EXCEPT_KEY"},
    )
    rows = drain(source)
    assert rows.select(["user_id", "behavior"]).to_pylist() == [
        {"user_id": 7, "behavior": "pv"},
        {"user_id": 8, "behavior": "buy"},
    ]
    source.close()


def test_raw_key_and_csv_value(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    produce(kafka_broker.bootstrap, topic, [b"pv,3", b"buy,x"], [b"alice", b"bob"])
    source = _source(
        tmp_path,
        kafka_broker,
        topic,
        "name STRING, behavior STRING, n INT",
        **{"key.format": "raw", "key.fields": "name", "value.fields-include": "EXCEPT_KEY", "format": "csv"},
    )
    rows = drain(source)
    assert rows.select(["name", "behavior", "n"]).to_pylist() == [{"name": "alice", "behavior": "pv", "n": 3}]
    assert source.metrics.malformed == 1
    source.close()


def test_metadata_columns(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(2)
    produce(
        kafka_broker.bootstrap,
        topic,
        [event(1)],
        partition=1,
        timestamp=1_700_000_000_123,
        headers=[("trace", b"abc")],
    )
    columns = (
        "user_id BIGINT, p INT METADATA FROM 'partition' VIRTUAL, o BIGINT METADATA FROM 'offset' VIRTUAL, "
        "t TIMESTAMP_LTZ(3) METADATA FROM 'timestamp', h MAP<STRING, BYTES> METADATA FROM 'headers', "
        "topic STRING METADATA VIRTUAL"
    )
    e = engine(tmp_path)
    e.execute_script(
        ddl("events", kafka_broker.bootstrap, topic, columns, **{"scan.bounded.mode": "latest-offset"})
    )
    rows = e.collect("SELECT user_id, p, o, CAST(t AS STRING), h['trace'], topic FROM events")
    assert rows == [("+I", (1, 1, 0, "2023-11-14 22:13:20.123", b"abc", topic))]


def test_unknown_metadata_key_is_refused_by_name(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    with pytest.raises(ConnectorError, match="metadata 'value.source'.*available: topic, partition"):
        _source(tmp_path, kafka_broker, topic, "a INT, s STRING METADATA FROM 'value.source' VIRTUAL")


def test_metadata_columns_are_refused_by_other_connectors(tmp_path):
    with pytest.raises(ConnectorError, match="connector 'filesystem' has no metadata columns"):
        engine(tmp_path).execute_script(
            "CREATE TABLE t (a INT, o BIGINT METADATA FROM 'offset') "
            "WITH ('connector' = 'filesystem', 'path' = 'x');"
        )


def test_sink_writes_json_values_and_keys_with_the_default_partitioner(tmp_path, kafka_broker):
    source_topic, topic = kafka_broker.new_topic(1), kafka_broker.new_topic(3)
    _events(kafka_broker, source_topic, 60)
    e = engine(tmp_path)
    e.execute_script(
        ddl("events", kafka_broker.bootstrap, source_topic, **{"scan.bounded.mode": "latest-offset"})
        + ddl(
            "sunk",
            kafka_broker.bootstrap,
            topic,
            "user_id BIGINT, behavior STRING",
            **{"key.format": "json", "key.fields": "user_id"},
        )
        + "INSERT INTO sunk SELECT user_id, behavior FROM events;"
    )
    messages = read_topic(kafka_broker.bootstrap, topic)
    assert len(messages) == 60
    by_key: dict[bytes, set[int]] = {}
    for m in messages:
        by_key.setdefault(m.key(), set()).add(m.partition())
        assert orjson.loads(m.key())["user_id"] == orjson.loads(m.value())["user_id"]
    assert all(len(parts) == 1 for parts in by_key.values())  # a key stays in one partition
    assert len({p for parts in by_key.values() for p in parts}) > 1


def _ints(*values: int, column: str = "n") -> pa.Table:
    return pa.table({column: pa.array(values, pa.int32()), "_op": pa.array([0] * len(values), pa.int8())})


@pytest.mark.parametrize(
    ("partitioner", "expected"), [("fixed", {0: 9}), ("round-robin", {0: 3, 1: 3, 2: 3})]
)
def test_sink_partitioners(tmp_path, kafka_broker, partitioner, expected):
    topic = kafka_broker.new_topic(3)
    sunk = table(
        tmp_path, ddl("sunk", kafka_broker.bootstrap, topic, "n INT", **{"sink.partitioner": partitioner})
    )
    sink = KafkaSink(sunk, settings(tmp_path))
    sink.write(_ints(*range(9)))
    sink.close()
    counts: dict[int, int] = {}
    for m in read_topic(kafka_broker.bootstrap, topic):
        counts[m.partition()] = counts.get(m.partition(), 0) + 1
    assert counts == expected


def test_sink_writes_timestamp_metadata_and_leaves_virtual_columns_out(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    columns = "n INT, t TIMESTAMP_LTZ(3) METADATA FROM 'timestamp', o BIGINT METADATA FROM 'offset' VIRTUAL"
    sunk = table(tmp_path, ddl("sunk", kafka_broker.bootstrap, topic, columns))
    assert [c.name for c in sunk.persisted] == ["n", "t"]
    sink = KafkaSink(sunk, settings(tmp_path))
    stamp = pa.array([1_700_000_000_123], pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("us", tz="UTC"))
    sink.write(_ints(1).add_column(1, "t", stamp).add_column(2, "o", pa.nulls(1, pa.int64())))
    sink.close()
    [message] = read_topic(kafka_broker.bootstrap, topic)
    assert message.timestamp()[1] == 1_700_000_000_123
    assert orjson.loads(message.value()) == {"n": 1}


def test_exactly_once_sink_commits_each_checkpoint_once(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(2)
    options = {"sink.delivery-guarantee": "exactly-once", "sink.transactional-id-prefix": f"tx-{topic}"}
    out = table(tmp_path, ddl("sunk", kafka_broker.bootstrap, topic, "n INT", **options))
    sink = KafkaSink(out, settings(tmp_path))
    assert sink.transactional

    writer = f"job/{topic}/0/out"
    sink.commit(writer, 1, [_ints(1, 2)])
    sink.commit(writer, 1, [_ints(1, 2)])  # the same checkpoint again: nothing
    sink.close()
    again = KafkaSink(out, settings(tmp_path))  # a restored job: reads the marker topic
    again.commit(writer, 1, [_ints(1, 2)])
    again.commit(writer, 2, [_ints(3)])
    again.close()
    values = sorted(orjson.loads(m.value())["n"] for m in read_topic(kafka_broker.bootstrap, topic))
    assert values == [1, 2, 3]


def test_exactly_once_sink_aborts_what_a_crashed_run_left_open(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    options = {"sink.delivery-guarantee": "exactly-once", "sink.transactional-id-prefix": f"tx-{topic}"}
    out = table(tmp_path, ddl("sunk", kafka_broker.bootstrap, topic, "n INT", **options))
    crashed = KafkaSink(out, settings(tmp_path))
    crashed.producer.begin_transaction()
    crashed.producer.produce(topic, value=b'{"n": 99}')
    crashed.producer.flush(10)  # in the topic, never committed: the run dies here
    restored = KafkaSink(out, settings(tmp_path))  # init_transactions aborts it
    restored.commit(f"w-{topic}", 1, [_ints(1)])
    restored.close()
    assert [orjson.loads(m.value()) for m in read_topic(kafka_broker.bootstrap, topic)] == [{"n": 1}]
    assert len(read_topic(kafka_broker.bootstrap, topic, committed_only=False)) == 2


def test_exactly_once_needs_a_transactional_id_prefix(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    out = table(
        tmp_path,
        ddl("sunk", kafka_broker.bootstrap, topic, "n INT", **{"sink.delivery-guarantee": "exactly-once"}),
    )
    with pytest.raises(ConnectorError, match="needs 'sink.transactional-id-prefix'"):
        KafkaSink(out, settings(tmp_path))


def test_a_primary_key_without_a_changelog_format_is_refused(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    with pytest.raises(ConnectorError, match="use the 'upsert-kafka' connector"):
        _source(tmp_path, kafka_broker, topic, "a INT, PRIMARY KEY (a) NOT ENFORCED")


def test_group_offsets_without_a_committed_offset_follow_auto_offset_reset(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    _events(kafka_broker, topic, 10)
    options = {"scan.startup.mode": "group-offsets", "properties.group.id": f"new-{topic}"}
    earliest = _source(tmp_path, kafka_broker, topic, **options)
    assert drain(earliest).num_rows == 10
    earliest.close()
    latest = _source(tmp_path, kafka_broker, topic, **options, **{"properties.auto.offset.reset": "latest"})
    assert drain(latest).num_rows == 0
    latest.close()
    with pytest.raises(ConnectorError, match="has no committed offset for partition 0"):
        _source(tmp_path, kafka_broker, topic, **options, **{"properties.auto.offset.reset": "none"})


def test_key_fields_prefix_round_trip(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    columns = "k_user_id BIGINT, behavior STRING"
    options = {
        "key.format": "json",
        "key.fields": "k_user_id",
        "key.fields-prefix": "k_",
        "value.fields-include": "EXCEPT_KEY",
    }
    sink = KafkaSink(
        table(tmp_path, ddl("sunk", kafka_broker.bootstrap, topic, columns, **options)), settings(tmp_path)
    )
    sink.write(
        pa.table(
            {"k_user_id": pa.array([7], pa.int64()), "behavior": ["pv"], "_op": pa.array([0], pa.int8())}
        )
    )
    sink.close()
    [message] = read_topic(kafka_broker.bootstrap, topic)
    assert (orjson.loads(message.key()), orjson.loads(message.value())) == (
        {"user_id": 7},
        {"behavior": "pv"},
    )
    source = _source(tmp_path, kafka_broker, topic, columns, **options)
    assert drain(source).select(["k_user_id", "behavior"]).to_pylist() == [{"k_user_id": 7, "behavior": "pv"}]
    source.close()


def test_debezium_json_values_are_read_as_a_changelog(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    row = {"id": 1, "name": "Books"}
    changes = [
        {"before": None, "after": row, "op": "c"},
        {"before": row, "after": {**row, "name": "Toys"}, "op": "u"},
        b"not json",
    ]
    produce(kafka_broker.bootstrap, topic, changes)
    columns = "id INT, name STRING, PRIMARY KEY (id) NOT ENFORCED"
    source = _source(tmp_path, kafka_broker, topic, columns, **{"format": "debezium-json"})
    rows = drain(source)
    assert rows.select(["id", "name", "_op"]).to_pylist() == [
        {"id": 1, "name": "Books", "_op": 0},
        {"id": 1, "name": "Books", "_op": 1},
        {"id": 1, "name": "Toys", "_op": 2},
    ]
    assert set(rows.column(PARTITION).to_pylist()) == {0} and source.metrics.malformed == 1
    source.close()
