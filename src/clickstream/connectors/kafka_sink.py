"""The Kafka sink (`kafka` and `upsert-kafka`): rows as JSON records, with a key when the table
has one (`key.fields`, or upsert-kafka's PRIMARY KEY), produced by confluent-kafka.

- `at-least-once` (Flink's default) and `none`: each batch is produced, then flushed; a record
  the brokers did not take (its delivery report says why) fails the job.
- `exactly-once`: with checkpoints, each checkpoint's records go in one Kafka transaction
  (`transactional.id` from `sink.transactional-id-prefix`) with a marker in
  `__clickstream_commits`, so a restored job does not produce them twice (see `kafka_commits`).
  Readers see them with `isolation.level=read_committed`.

upsert-kafka writes +I/+U as records keyed by the primary key, -D as tombstones (no value); -U is
dropped, the +U after it carries the row.
"""

from __future__ import annotations

import contextlib
import itertools

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import KafkaException

from clickstream.config import Settings
from clickstream.connectors.base import DELETE, INSERT, OP_COLUMN, UPDATE_AFTER, BaseSink
from clickstream.connectors.json_rows import dumps, rows_of
from clickstream.connectors.kafka_client import ask, metadata, partitions_of, producer, where
from clickstream.connectors.kafka_commits import TOPIC as COMMITS
from clickstream.connectors.kafka_commits import ensure_topic, last_committed, marker
from clickstream.connectors.kafka_options import Topics, choice, timeout_ms, topics
from clickstream.connectors.kafka_records import WRITABLE_METADATA, key_fields
from clickstream.errors import ConnectorError
from clickstream.schema import TableDef

# (key, value, partition or None, timestamp ms or None, headers or None)
Record = tuple[bytes | None, bytes | None, int | None, int | None, list | None]


class KafkaSink(BaseSink):
    upsert = False

    def __init__(self, table: TableDef, settings: Settings) -> None:
        super().__init__(table, settings)
        self.topic = self._topic()
        self.keys = key_fields(table, self.upsert)
        self.key_prefix = table.options.get("key.fields-prefix", "")
        self._check_formats()
        self.value_names = self._value_names()
        self.written_metadata = {
            m.key: name for name, m in table.metadata.items() if not m.virtual and self._writable(name, m.key)
        }
        self.partitioner = choice(table, "sink.partitioner", "default")
        self.guarantee = choice(table, "sink.delivery-guarantee", "at-least-once")
        # Kafka's (Java) key hashing, a short linger to batch records; properties.* may say otherwise
        defaults = {"partitioner": "murmur2_random", "linger.ms": 5}
        self.producer, self.errors = producer(table, self._config(), defaults)
        meta = metadata(self.producer, self.errors, table, self.topic)
        self.partition_count = partitions_of(meta, table, Topics(names=(self.topic,)))[self.topic]
        self._round_robin = itertools.count()
        self._failures: list[str] = []
        self._committed: dict[str, int] = {}  # writer -> last checkpoint it committed
        if self.exactly_once:
            ensure_topic(table)
            self._transactions()

    def _topic(self) -> str:
        found = topics(self.table)
        if found.pattern is not None or len(found.names) != 1:
            raise ConnectorError(
                f"Table '{self.table.name}': a Kafka sink writes one 'topic', not a list or a pattern"
            )
        return found.names[0]

    def _check_formats(self) -> None:
        options = self.table.options
        value = options.get("value.format", options.get("format", "json")).lower()
        if value != "json":
            raise ConnectorError(
                f"Table '{self.table.name}': the Kafka sink writes values in format 'json' only, "
                f"not '{value}'"
            )
        key = options.get("key.format", "").lower()
        if self.keys and key != "json":
            raise ConnectorError(
                f"Table '{self.table.name}': the Kafka sink writes keys in format 'json' only, "
                f"not '{key or 'none'}'"
            )

    def _value_names(self) -> list[str]:
        include = self.table.options.get("value.fields-include", "ALL").upper()
        return [
            c.name
            for c in self.table.physical
            if c.name not in self.table.metadata and (include == "ALL" or c.name not in self.keys)
        ]

    def _writable(self, name: str, key: str) -> bool:
        if key not in WRITABLE_METADATA:
            raise ConnectorError(
                f"Table '{self.table.name}': metadata column '{name}' ('{key}') is read-only; "
                "declare it VIRTUAL"
            )
        return True

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == "exactly-once"

    def _config(self) -> dict:
        config: dict = {}
        if self.exactly_once:
            prefix = self.table.options.get("sink.transactional-id-prefix")
            if not prefix:
                raise ConnectorError(
                    f"Table '{self.table.name}': 'sink.delivery-guarantee' = 'exactly-once' needs "
                    "'sink.transactional-id-prefix' (unique per job, as in Flink)"
                )
            config["transactional.id"] = f"{prefix}-{self.table.name}-0"
        return config

    def _transactions(self) -> None:
        """Start transactional producing; aborts what a crashed run of this sink left open."""
        ask(self.table, self.topic, "start transactions", self.producer.init_transactions)

    # --- records --------------------------------------------------------------------------------

    def _records(self, batch: pa.Table) -> list[Record]:
        """+I/+U rows as records; -D as tombstones of their key (upsert-kafka); -U dropped."""
        deletes: list[bool] | None = None
        if OP_COLUMN in batch.column_names:
            ops = batch.column(OP_COLUMN)
            batch = batch.filter(pc.is_in(ops, pa.array([INSERT, UPDATE_AFTER, DELETE], ops.type)))
            deletes = pc.equal(batch.column(OP_COLUMN), DELETE).to_pylist()
            batch = batch.drop_columns([OP_COLUMN])
        rows = rows_of(batch)
        deletes = deletes or [False] * len(rows)
        return [self._record(row, deleted) for row, deleted in zip(rows, deletes, strict=True)]

    def _record(self, row: dict, deleted: bool) -> Record:
        # the key's fields without `key.fields-prefix`, as Flink writes them
        key = dumps({k.removeprefix(self.key_prefix): row[k] for k in self.keys}) if self.keys else None
        value = None if deleted else dumps({n: row[n] for n in self.value_names})
        stamp = row.get(self.written_metadata["timestamp"]) if "timestamp" in self.written_metadata else None
        headers = row.get(self.written_metadata["headers"]) if "headers" in self.written_metadata else None
        millis = int(stamp.timestamp() * 1000) if stamp is not None else None
        return key, value, self._partition(), millis, list(headers.items()) if headers else None

    def _partition(self) -> int | None:
        if self.partitioner == "fixed":
            return 0  # Flink's FlinkFixedPartitioner: the sink's one subtask writes partition 0
        if self.partitioner == "round-robin":
            return next(self._round_robin) % self.partition_count
        return None  # the client's partitioner: murmur2 of the key, as Kafka's default

    def _produce(self, topic: str, records: list[Record]) -> None:
        for key, value, partition, millis, headers in records:
            extra: dict = {"partition": partition} if partition is not None else {}
            if millis is not None:
                extra["timestamp"] = millis
            if headers:
                extra["headers"] = headers
            while True:
                try:
                    self.producer.produce(topic, value=value, key=key, on_delivery=self._delivered, **extra)
                    break
                except BufferError:  # the client's queue is full: let it send
                    self.producer.poll(0.1)

    def _delivered(self, error, message) -> None:
        if error is not None:
            self._failures.append(f"partition {message.partition()}: {error.str()}")

    def _flush(self) -> None:
        """Wait until every record is delivered (the client retries through a broker restart);
        a record the brokers refused fails the job."""
        while self.producer.flush(1.0) > 0:
            pass
        if self._failures:
            failures, self._failures = self._failures, []
            raise ConnectorError(
                f"{where(self.table, self.topic)}: {len(failures)} record(s) not delivered: {failures[0]}"
            )

    # --- writing --------------------------------------------------------------------------------

    def write(self, batch: pa.Table) -> None:
        records = self._records(batch)
        if not records:
            return
        if self.exactly_once:  # a transactional producer only writes in transactions
            self._in_transaction(records, None)
        else:
            self._produce(self.topic, records)
            self._flush()

    @property
    def transactional(self) -> bool:
        return self.exactly_once

    def commit(self, writer: str, checkpoint: int, batches: list[pa.Table]) -> None:
        """Produce the checkpoint's records and its marker in one transaction; nothing if the
        marker of `writer` says it committed `checkpoint` already (a restored job)."""
        if writer not in self._committed:
            self._committed[writer] = last_committed(self.table, writer)
        if self._committed[writer] >= checkpoint:
            return
        records = [r for batch in batches for r in self._records(batch)]
        self._in_transaction(records, marker(writer, checkpoint))
        self._committed[writer] = checkpoint

    def _in_transaction(self, records: list[Record], note: tuple[bytes, bytes] | None) -> None:
        try:
            self.producer.begin_transaction()
            self._produce(self.topic, records)
            if note is not None:
                self._produce(COMMITS, [(note[0], note[1], None, None, None)])
            # a retriable failure (a coordinator moving) may be committed again, as librdkafka says
            ask(self.table, self.topic, "commit the transaction", self.producer.commit_transaction)
        except (KafkaException, ConnectorError) as e:
            self._abort()
            detail = e.args[0].str() if isinstance(e, KafkaException) else str(e)
            raise ConnectorError(
                f"{where(self.table, self.topic)}: the transaction failed: {detail}"
            ) from None
        if self._failures:
            failures, self._failures = self._failures, []
            raise ConnectorError(
                f"{where(self.table, self.topic)}: {len(failures)} record(s) not delivered: {failures[0]}"
            )

    def _abort(self) -> None:
        with contextlib.suppress(KafkaException):  # else the next run's init_transactions aborts it
            self.producer.abort_transaction(timeout_ms(self.table) / 1000)

    def flush(self) -> None:
        if not self.exactly_once:
            self._flush()

    def close(self) -> None:
        self.producer.flush(timeout_ms(self.table) / 1000)
