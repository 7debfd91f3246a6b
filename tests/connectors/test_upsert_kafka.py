"""The `upsert-kafka` connector against a real broker: an updating query written as records keyed
by the primary key, deletes as tombstones, and the topic read back as a changelog."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from clickstream.connectors.upsert_kafka import UpsertKafkaSink, UpsertKafkaSource
from clickstream.errors import ConnectorError
from tests.connectors.kafka_helpers import drain, engine, event, produce, read_topic, settings, table

pytestmark = pytest.mark.integration


def _upsert_ddl(name: str, bootstrap: str, topic: str, columns: str, **options: str) -> str:
    opts = {
        "connector": "upsert-kafka",
        "topic": topic,
        "properties.bootstrap.servers": bootstrap,
        "key.format": "json",
        "value.format": "json",
        **options,
    }
    with_ = ", ".join(f"'{k}' = '{v}'" for k, v in opts.items())
    return f"CREATE TABLE {name} ({columns}) WITH ({with_});"


COUNTS = "behavior STRING, n BIGINT, PRIMARY KEY (behavior) NOT ENFORCED"


def test_updating_query_round_trip_with_tombstones(tmp_path, kafka_broker):
    events, counts = kafka_broker.new_topic(2), kafka_broker.new_topic(2)
    produce(kafka_broker.bootstrap, events, [event(i) for i in range(90)])
    e = engine(tmp_path)
    e.execute_script(
        "CREATE TABLE events (user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3)) WITH ("
        f"'connector' = 'kafka', 'topic' = '{events}', 'properties.bootstrap.servers' = "
        f"'{kafka_broker.bootstrap}', 'format' = 'json', 'scan.startup.mode' = 'earliest-offset', "
        "'scan.bounded.mode' = 'latest-offset');"
        + _upsert_ddl("counts", kafka_broker.bootstrap, counts, COUNTS)
        + "INSERT INTO counts SELECT behavior, COUNT(*) FROM events GROUP BY behavior;"
    )
    records = read_topic(kafka_broker.bootstrap, counts)
    assert {orjson.loads(m.key())["behavior"] for m in records} == {"pv", "buy", "cart"}
    latest = {m.key(): orjson.loads(m.value()) for m in records}
    assert sorted(v["n"] for v in latest.values()) == [30, 30, 30]
    produce(kafka_broker.bootstrap, counts, [None], [{"behavior": "cart"}])  # a tombstone deletes
    reader = engine(tmp_path)
    reader.execute_script(
        _upsert_ddl(
            "counts", kafka_broker.bootstrap, counts, COUNTS, **{"scan.bounded.mode": "latest-offset"}
        )
    )
    rows = reader.collect("SELECT behavior, n FROM counts")
    final: dict = {}
    for op, row in rows:
        if op in ("+I", "+U"):
            final[row[0]] = row[1]
        else:
            final.pop(row[0], None)
    assert final == {"pv": 30, "buy": 30}


def test_sink_writes_deletes_as_tombstones_and_source_reads_them(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    ddl = _upsert_ddl(
        "counts", kafka_broker.bootstrap, topic, COUNTS, **{"scan.bounded.mode": "latest-offset"}
    )
    sink = UpsertKafkaSink(table(tmp_path, ddl), settings(tmp_path))
    changes = pa.table(
        {
            "behavior": ["pv", "buy", "pv", "buy"],
            "n": pa.array([1, 1, 1, 2], pa.int64()),
            "_op": pa.array([0, 0, 1, 3], pa.int8()),  # +I, +I, -U (dropped), -D
        }
    )
    sink.write(changes)
    sink.close()
    records = read_topic(kafka_broker.bootstrap, topic)
    assert [(orjson.loads(m.key()), m.value()) for m in records] == [
        ({"behavior": "pv"}, b'{"behavior":"pv","n":1}'),
        ({"behavior": "buy"}, b'{"behavior":"buy","n":1}'),
        ({"behavior": "buy"}, None),
    ]
    source = UpsertKafkaSource(table(tmp_path, ddl), settings(tmp_path))
    rows = drain(source)
    assert rows.select(["behavior", "_op"]).to_pylist() == [
        {"behavior": "pv", "_op": 2},
        {"behavior": "buy", "_op": 2},
        {"behavior": "buy", "_op": 3},
    ]
    source.close()


def test_value_fields_except_key(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    produce(kafka_broker.bootstrap, topic, [{"n": 5}], [{"behavior": "pv"}])
    ddl = _upsert_ddl(
        "counts",
        kafka_broker.bootstrap,
        topic,
        COUNTS,
        **{"scan.bounded.mode": "latest-offset", "value.fields-include": "EXCEPT_KEY"},
    )
    source = UpsertKafkaSource(table(tmp_path, ddl), settings(tmp_path))
    assert drain(source).select(["behavior", "n"]).to_pylist() == [{"behavior": "pv", "n": 5}]
    source.close()


def test_needs_a_primary_key_and_both_formats(tmp_path, kafka_broker):
    topic = kafka_broker.new_topic(1)
    without_key = _upsert_ddl("t", kafka_broker.bootstrap, topic, "behavior STRING, n BIGINT")
    with pytest.raises(ConnectorError, match="require to define a PRIMARY KEY"):
        UpsertKafkaSource(table(tmp_path, without_key), settings(tmp_path))
    no_key_format = _upsert_ddl("t", kafka_broker.bootstrap, topic, COUNTS).replace(
        "'key.format' = 'json', ", ""
    )
    with pytest.raises(ConnectorError, match="needs 'key.format'"):
        UpsertKafkaSink(table(tmp_path, no_key_format), settings(tmp_path))
