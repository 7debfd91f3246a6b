"""Shared by the Kafka connector tests: producing records, tables over a topic, draining sources
and reading topics back."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from clickstream.config import Settings
from clickstream.connectors.base import BaseSource
from clickstream.engine import Engine
from clickstream.schema import TableDef

COLUMNS = "user_id BIGINT, behavior STRING, ts TIMESTAMP_LTZ(3)"


def event(i: int) -> dict:
    return {"user_id": i % 7, "behavior": ("pv", "buy", "cart")[i % 3], "ts": f"2024-01-01T{clock(i)}Z"}


def clock(second: int) -> str:
    return f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | dict | None],
    keys: Iterable[bytes | dict | None] | None = None,
    partition: int | None = None,
    **extra: Any,
) -> None:
    # idempotence: a batch the broker refused at first (a topic just created has no leader yet)
    # is retried in its place, not after the batches sent meanwhile
    config = {"partitioner": "murmur2_random", "enable.idempotence": True, "log_level": 0}
    producer = Producer({"bootstrap.servers": bootstrap, **config})
    values = list(values)
    for value, key in zip(values, keys if keys is not None else [None] * len(values), strict=True):
        options = {**extra, **({"partition": partition} if partition is not None else {})}
        producer.produce(topic, value=_bytes(value), key=_bytes(key), **options)
    assert producer.flush(30) == 0


def _bytes(value: bytes | dict | None) -> bytes | None:
    return orjson.dumps(value) if isinstance(value, dict) else value


def ddl(name: str, bootstrap: str, topic: str, columns: str = COLUMNS, **options: str) -> str:
    opts = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": bootstrap,
        "format": "json",
        "scan.startup.mode": "earliest-offset",
        **options,
    }
    with_ = ", ".join(f"'{k}' = '{v}'" for k, v in opts.items())
    return f"CREATE TABLE {name} ({columns}) WITH ({with_});"


def engine(tmp_path: Path, **settings: str) -> Engine:
    return Engine(Settings({"dead-letter.dir": str(tmp_path / "dead"), **settings}), out=io.StringIO())


def table(tmp_path: Path, statement: str) -> TableDef:
    e = engine(tmp_path)
    e.execute_script(statement)
    return e.catalog.table(statement.split()[2])


def settings(tmp_path: Path) -> Settings:
    return Settings({"dead-letter.dir": str(tmp_path / "dead")})


def drain(source: BaseSource, timeout_s: float = 30) -> pa.Table:
    """Every batch of a bounded source."""
    batches = []
    deadline = time.monotonic() + timeout_s
    while not source.exhausted():
        assert time.monotonic() < deadline, "the bounded source did not finish"
        batch = source.poll(500)
        if batch is not None:
            batches.append(batch)
    return pa.concat_tables(batches) if batches else pa.table({})


def poll_until(source: BaseSource, rows: int, timeout_s: float = 30) -> pa.Table:
    """Batches of an unbounded source until `rows` rows came."""
    batches: list[pa.Table] = []
    deadline = time.monotonic() + timeout_s
    while sum(b.num_rows for b in batches) < rows:
        assert time.monotonic() < deadline, f"only {sum(b.num_rows for b in batches)} of {rows} rows came"
        batch = source.poll(500)
        if batch is not None:
            batches.append(batch)
    return pa.concat_tables(batches)


def read_topic(bootstrap: str, topic: str, committed_only: bool = True, **config: Any) -> list:
    """Every record of `topic` (all partitions), as messages."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "test-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
            "log_level": 0,
            **config,
        }
    )
    meta = consumer.list_topics(topic, timeout=30)
    partitions = list(meta.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages, ended = [], set()
    deadline = time.monotonic() + 30
    while len(ended) < len(partitions) and time.monotonic() < deadline:
        for m in consumer.consume(1000, 0.5):
            if m.error() is None:
                messages.append(m)
            elif m.error().code() == KafkaError._PARTITION_EOF:
                ended.add(m.partition())
    consumer.close()
    return messages


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    consumer.close()
    return {tp.partition: tp.offset for tp in offsets}
