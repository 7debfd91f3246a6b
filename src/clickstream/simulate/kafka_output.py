"""Generated records to Apache Kafka: `-o kafka://host:port/<topic>`.

A single-topic generator writes to `<topic>`; a multi-topic one to `<prefix><topic>` for each of its
topics, as `log:<prefix>` does. With nothing after the address (`kafka://host:port`), each topic
keeps its generator's name, the one the seeds' statements read. Topics missing on the broker are
created with its default partitions and replication. A query string passes client properties
(librdkafka's names, as Flink's `properties.*`): `kafka://host:9093/t?security.protocol=SASL_PLAINTEXT
&sasl.mechanism=PLAIN&sasl.username=u&sasl.password=p`.

Each record is keyed by its natural key: the generator's own (table rows: the row's key), else the
user (`user_id` / `userid`) or the product the event is about, so one user's events stay in one
partition, in order. Records go out in batches; a record the broker refuses (delivery report) stops
the run with the broker's reason, and `close` waits until every record is acknowledged.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from clickstream.errors import ClickstreamError
from clickstream.simulate.base import Record, to_line
from clickstream.simulate.outputs import KAFKA_PREFIX, BaseOutput

KEY_FIELDS = ("user_id", "userid", "product")  # the first a record has is its key
CONNECT_TIMEOUT_S = 15.0
FLUSH_TIMEOUT_S = 120.0
POLL_EVERY = 1_000  # records between two calls serving delivery reports
# Batches of up to 1 MiB or 20 ms, whichever fills first; idempotence keeps a retried batch from
# being written twice or out of order; only failures are reported back (the successes are counted
# as produced minus failed), since a Python callback per record would cost more than the send.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 20,
    "batch.size": 1 << 20,
    "compression.type": "lz4",
    "enable.idempotence": True,
    "acks": "all",
    "delivery.report.only.error": True,
    "log_level": 3,  # errors only: librdkafka's notices would interleave with the progress output
}


class KafkaOutputError(ClickstreamError):
    """The broker could not be reached, a topic not created, or records were not delivered."""


def parse_kafka_url(url: str) -> tuple[str, str, dict[str, str]]:
    """`kafka://host:port[,host:port]/name?k=v` -> (bootstrap servers, name or '', properties)."""
    parts = urlsplit(url)
    if parts.scheme != "kafka" or not parts.netloc:
        raise KafkaOutputError(f"a Kafka output reads kafka://host:port/<topic>, not {url!r}")
    return parts.netloc, unquote(parts.path.lstrip("/")), dict(parse_qsl(parts.query, keep_blank_values=True))


def natural_key(record: Record) -> bytes | None:
    if record.key is not None:
        return record.key.encode()
    if isinstance(record.value, dict):
        for name in KEY_FIELDS:
            value = record.value.get(name)
            if value is not None:
                return str(value).encode()
    return None  # a malformed (raw text) record: no field to key it by


def target_topics(name: str, topics: list[str]) -> dict[str, str]:
    """Where each of the generator's topics goes on the broker."""
    if len(topics) == 1 and name:
        return {topics[0]: name}
    return {topic: f"{name}{topic}" for topic in topics}


class KafkaOutput(BaseOutput):
    """Produces records to a Kafka broker; `targets` maps each topic to `kafka://<servers>/<topic>`."""

    def __init__(self, url: str, topics: list[str]) -> None:
        from confluent_kafka import Producer

        super().__init__()
        servers, name, properties = parse_kafka_url(url)
        self.servers = servers
        self.config: dict[str, Any] = {**PRODUCER_DEFAULTS, **properties, "bootstrap.servers": servers}
        self.topics = target_topics(name, topics)
        self.targets = {topic: f"{KAFKA_PREFIX}{servers}/{target}" for topic, target in self.topics.items()}
        self._ensure_topics()
        self.producer = Producer({**self.config, "on_delivery": self._on_delivery})
        self.produced = 0
        self.failed = 0
        self.first_failure: str | None = None

    @property
    def delivered(self) -> int:
        """Records the broker acknowledged (exact after `close`)."""
        return self.produced - self.failed - len(self.producer)

    def _ensure_topics(self) -> None:
        """Create the targets the broker lacks (it may not create topics on first use)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        errors: list[Any] = []
        # its connection errors come back through error_cb and into the message: not logged as well
        config: dict[str, Any] = {**self.config, "error_cb": errors.append, "log_level": 0}
        admin = AdminClient(config)
        existing = self._topics_on_broker(admin, errors)
        missing = sorted(set(self.topics.values()) - existing)
        if not missing:
            return
        # -1: the broker's own num.partitions and default.replication.factor
        futures = admin.create_topics([NewTopic(topic, -1, -1) for topic in missing])
        for topic, future in futures.items():
            try:
                future.result(timeout=CONNECT_TIMEOUT_S)
            except KafkaException as e:
                if e.args[0].code() != e.args[0].TOPIC_ALREADY_EXISTS:  # another writer was first
                    raise KafkaOutputError(f"cannot create Kafka topic {topic!r}: {e.args[0].str()}") from e

    def _topics_on_broker(self, admin: Any, errors: list[Any]) -> set[str]:
        """The broker's topics; a refused login fails at once, an unreachable broker after
        CONNECT_TIMEOUT_S, each with the client's own reason (`errors`, from its error_cb)."""
        from confluent_kafka import KafkaError, KafkaException

        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            try:
                return set(admin.list_topics(timeout=0.5).topics)
            except KafkaException as e:
                admin.poll(0)  # serves error_cb
                refused = [error for error in errors if error.code() == KafkaError._AUTHENTICATION]
                if refused or time.monotonic() > deadline:
                    reason = (refused or errors or e.args)[-1].str()
                    raise KafkaOutputError(f"cannot reach Kafka at {self.servers}: {reason}") from e

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self.failed += 1
            if self.first_failure is None:
                topic = message.topic()
                self.first_failure = f"a record to Kafka topic {topic!r} was not delivered: {error.str()}"

    def write(self, record: Record) -> None:
        topic = self.topics[record.topic]
        value, key = to_line(record.value), natural_key(record)
        while True:
            try:
                self.producer.produce(topic, value, key)
                break
            except BufferError:  # the client's queue is full: wait for the broker to take some
                self.producer.poll(0.1)
                self._raise_failure()
        self.produced += 1
        if self.produced % POLL_EVERY == 0:
            self.producer.poll(0)
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self.first_failure is not None:
            failed = f"{self.failed:,} of {self.produced:,} failed so far"
            raise KafkaOutputError(f"{self.first_failure} ({failed})")

    def close(self) -> None:
        """Wait until every record is acknowledged; raise if one was refused or is still waiting."""
        left = self.producer.flush(FLUSH_TIMEOUT_S)
        self._raise_failure()
        if left:
            raise KafkaOutputError(
                f"{left:,} of {self.produced:,} records were not delivered to Kafka at {self.servers} "
                f"within {FLUSH_TIMEOUT_S:.0f} s"
            )
