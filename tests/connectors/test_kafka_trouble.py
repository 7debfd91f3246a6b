"""Broker trouble for the `kafka` connector: SASL/PLAIN logins, wrong credentials, unknown topics
and unreachable brokers fail with a clear message after a bounded wait; a broker restart mid-run
is ridden out with nothing lost or duplicated."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time

import orjson
import pyarrow as pa
import pytest

from clickstream.connectors.kafka import KafkaSink, KafkaSource
from clickstream.errors import ConnectorError
from tests.connectors.kafka_helpers import ddl, drain, event, poll_until, produce, read_topic, settings, table
from tests.sink_polling import wait_for_total

pytestmark = pytest.mark.integration


def _sasl_options(sasl, password: str) -> dict[str, str]:
    return {
        "properties.security.protocol": "SASL_PLAINTEXT",
        "properties.sasl.mechanism": "PLAIN",
        # as Flink users write it, for the Java client
        "properties.sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{sasl.username}" password="{password}";',
        "properties.default.api.timeout.ms": "8000",
        "scan.bounded.mode": "latest-offset",
    }


def test_sasl_plain_login(tmp_path, kafka_broker, kafka_sasl):
    topic = kafka_broker.new_topic(1)
    produce(kafka_broker.bootstrap, topic, [event(i) for i in range(5)])
    statement = ddl("src", kafka_sasl.bootstrap, topic, **_sasl_options(kafka_sasl, kafka_sasl.password))
    source = KafkaSource(table(tmp_path, statement), settings(tmp_path))
    assert drain(source).num_rows == 5
    source.close()


def test_wrong_password_fails_clearly_without_showing_it(tmp_path, kafka_broker, kafka_sasl):
    topic = kafka_broker.new_topic(1)
    statement = ddl("src", kafka_sasl.bootstrap, topic, **_sasl_options(kafka_sasl, "wrong-secret"))
    with pytest.raises(ConnectorError) as info:
        KafkaSource(table(tmp_path, statement), settings(tmp_path))
    message = str(info.value)
    assert "Table 'src'" in message and topic in message and kafka_sasl.bootstrap in message
    assert "wrong-secret" not in message
    assert "uthentication" in message


def test_unknown_topic_is_named(tmp_path, kafka_broker):
    statement = ddl("src", kafka_broker.bootstrap, "no-such-topic", **{"scan.bounded.mode": "latest-offset"})
    with pytest.raises(ConnectorError, match="Table 'src'.*the topic 'no-such-topic' does not exist"):
        KafkaSource(table(tmp_path, statement), settings(tmp_path))
    with pytest.raises(ConnectorError, match="the topic 'no-such-topic' does not exist"):
        KafkaSink(table(tmp_path, statement), settings(tmp_path))


def test_unreachable_broker_fails_after_the_timeout(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    statement = ddl("src", f"127.0.0.1:{port}", "events", **{"properties.default.api.timeout.ms": "2000"})
    started = time.monotonic()
    with pytest.raises(
        ConnectorError,
        match=rf"Table 'src' \(topic 'events' at bootstrap '127.0.0.1:{port}'\): cannot reach Kafka "
        "within 2 s",
    ):
        KafkaSource(table(tmp_path, statement), settings(tmp_path))
    assert time.monotonic() - started < 10


def test_broker_restart_mid_run_loses_and_repeats_nothing(tmp_path, fresh_kafka_broker):
    broker = fresh_kafka_broker
    topic = broker.new_topic(2)
    produce(broker.bootstrap, topic, [event(i) for i in range(100)])
    statement = ddl("src", broker.bootstrap, topic)
    source = KafkaSource(table(tmp_path, statement), settings(tmp_path))
    sink_table = table(tmp_path, ddl("sunk", broker.bootstrap, broker.new_topic(1), "user_id BIGINT"))
    sink = KafkaSink(sink_table, settings(tmp_path))
    first = poll_until(source, 100)
    broker.restart()
    for _ in range(20):  # polls while the client reconnects: nothing, no error
        source.poll(100)
    produce(broker.bootstrap, topic, [event(i) for i in range(100, 250)])
    second = poll_until(source, 150, timeout_s=60)
    rows = first.column("user_id").to_pylist() + second.column("user_id").to_pylist()
    assert len(rows) == 250
    sink.write(pa.table({"user_id": pa.array(rows, pa.int64()), "_op": pa.array([0] * 250, pa.int8())}))
    sink.close()
    source.close()
    written = [
        orjson.loads(m.value())["user_id"] for m in read_topic(broker.bootstrap, sink_table.options["topic"])
    ]
    assert sorted(written) == sorted(rows)


RUN_JOB = """
SET 'execution.checkpointing.interval' = '300 ms';
SET 'pipeline.name' = 'kafka-restart-test';
CREATE TABLE events (user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3))
WITH ('connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}',
      'format' = 'json', 'scan.startup.mode' = 'group-offsets', 'properties.group.id' = 'g-{topic}');
CREATE TABLE copied (user_id BIGINT, n BIGINT)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = 'copied');
INSERT INTO copied SELECT user_id, 1 FROM events;
"""


def test_running_job_rides_out_a_broker_restart(tmp_path, fresh_kafka_broker):
    broker = fresh_kafka_broker
    topic = broker.new_topic(2)
    db, job = tmp_path / "results.db", tmp_path / "job.sql"
    job.write_text(RUN_JOB.format(topic=topic, bootstrap=broker.bootstrap, db=db))
    produce(broker.bootstrap, topic, [{**event(i), "user_id": i} for i in range(500)])
    process = subprocess.Popen(
        [sys.executable, "-m", "clickstream.cli", "run", "-q", str(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        wait_for_total(db, "copied", 500, process, timeout=60)
        broker.restart()  # checkpoints and offset commits go on meanwhile
        produce(broker.bootstrap, topic, [{**event(i), "user_id": i} for i in range(500, 800)])
        wait_for_total(db, "copied", 800, process, timeout=90)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
    with sqlite3.connect(db) as conn:
        assert sorted(conn.execute("SELECT user_id FROM copied").fetchall()) == [(i,) for i in range(800)]
