"""Exactly-once writes to Kafka: which checkpoint each writer committed last.

A compacted topic `__clickstream_commits` holds, keyed by writer (a job's sink), the last
checkpoint whose records that writer produced. The records and this marker go in one Kafka
transaction, so after a crash the marker, read with `isolation.level=read_committed`, says whether
a checkpoint's records are in (then a restored job must not produce them again) or not (then it
must). The same idea as `jdbc_commits`, with the marker topic standing in for the table.
"""

from __future__ import annotations

import time

import orjson
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic

from clickstream.connectors.kafka_client import admin, consumer, where
from clickstream.connectors.kafka_options import timeout_ms
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef

TOPIC = "__clickstream_commits"


def ensure_topic(table: TableDef) -> None:
    """Create the marker topic (compacted, one partition) unless it exists."""
    client, _ = admin(table)
    wanted = NewTopic(TOPIC, num_partitions=1, replication_factor=-1, config={"cleanup.policy": "compact"})
    future = client.create_topics([wanted], request_timeout=timeout_ms(table) / 1000)[TOPIC]
    try:
        future.result(timeout=timeout_ms(table) / 1000)
    except KafkaException as e:
        if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise ConnectorError(
                f"{where(table, TOPIC)}: cannot create the commit marker topic: {e.args[0].str()}"
            ) from None


def last_committed(table: TableDef, writer: str) -> int:
    """The last checkpoint `writer` committed (-1: none), from the committed markers."""
    reader, _ = consumer(
        table,
        {
            "group.id": "clickstream-commits",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        },
    )
    try:
        reader.assign([TopicPartition(TOPIC, 0, OFFSET_BEGINNING)])
        return _read_to_end(reader, table, writer.encode())
    finally:
        reader.close()


def _read_to_end(reader, table: TableDef, key: bytes) -> int:
    last = -1
    deadline = time.monotonic() + timeout_ms(table) / 1000
    while time.monotonic() < deadline:
        for message in reader.consume(1000, 0.2):
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                return last
            if error is None and message.key() == key:
                last = orjson.loads(message.value())["checkpoint"] if message.value() else -1
    raise ConnectorError(
        f"{where(table, TOPIC)}: cannot read the commit markers within {timeout_ms(table) / 1000:g} s"
    )


def marker(writer: str, checkpoint: int) -> tuple[bytes, bytes]:
    """The (key, value) saying that `writer` committed `checkpoint`."""
    return writer.encode(), orjson.dumps({"writer": writer, "checkpoint": checkpoint})
