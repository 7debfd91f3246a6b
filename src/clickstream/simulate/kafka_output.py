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
HANDOFF = 1_000  # records per produce_batch call: one call per record costs more than the send
# Batches of up to 1 MiB or 20 ms, whichever fills first, uncompressed (add compression.type=lz4 to
# the URL for a distant broker); idempotence keeps a retried batch from being written twice or out
# of order; only failures are reported back (the successes are counted as produced minus failed),
# since a Python callback per record would cost more than the send.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 20,
    "batch.size": 1 << 20,
    "queue.buffering.max.messages": 100_000,
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
        ensure_topics(self.config, list(self.topics.values()))
        self.failures = _Failures()
        self.producer = Producer({**self.config, "on_delivery": self.failures})
        self.queue_limit = int(self.config["queue.buffering.max.messages"])
        self.pending: dict[str, list[dict[str, bytes | None]]] = {topic: [] for topic in self.topics}
        self.produced = 0

    @property
    def delivered(self) -> int:
        """Records the broker acknowledged (exact after `close`)."""
        return self.produced - self.failures.count - len(self.producer)

    def write(self, record: Record) -> None:
        batch = self.pending[record.topic]
        batch.append({"value": to_line(record.value), "key": natural_key(record)})
        if len(batch) >= HANDOFF:
            self._hand_off(record.topic)

    def _hand_off(self, topic: str) -> None:
        """The topic's pending records to the client, in order."""
        messages, self.pending[topic] = self.pending[topic], []
        # Room first: a full queue would refuse the batch's tail, and retrying it could reorder.
        while len(self.producer) > self.queue_limit - len(messages):
            self.producer.poll(0.05)  # serves delivery reports while the broker takes records
            self.failures.raise_first(self.produced)
        while messages:
            queued = self.producer.produce_batch(self.topics[topic], messages)
            self.produced += queued
            messages = _refused(messages) if queued < len(messages) else []
            self.producer.poll(0.05 if messages else 0)
            self.failures.raise_first(self.produced)

    def close(self) -> None:
        """Wait until every record is acknowledged; raise if one was refused or is still waiting.
        After a refusal, what is still queued is dropped: the run has failed, and waiting for a
        broker that is gone could take minutes."""
        if self.failures.first is not None:
            self.producer.purge()
            self.failures.raise_first(self.produced)
        for topic in self.pending:
            self._hand_off(topic)
        left = self.producer.flush(FLUSH_TIMEOUT_S)
        self.failures.raise_first(self.produced)
        if left:
            raise KafkaOutputError(
                f"{left:,} of {self.produced:,} records were not delivered to Kafka at {self.servers} "
                f"within {FLUSH_TIMEOUT_S:.0f} s"
            )


def ensure_topics(config: dict[str, Any], topics: list[str]) -> None:
    """Create the topics the broker lacks (it may not create topics on first use), with its default
    partitions and replication."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin, errors = admin_client(config)
    missing = sorted(set(topics) - topics_on_broker(admin, errors, config["bootstrap.servers"]))
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


def admin_client(config: dict[str, Any]) -> tuple[Any, list[Any]]:
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    # its connection errors come back through error_cb and into the message: not logged as well
    settings: dict[str, Any] = {**config, "error_cb": errors.append, "log_level": 0}
    return AdminClient(settings), errors


def topics_on_broker(admin: Any, errors: list[Any], servers: str) -> set[str]:
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
                raise KafkaOutputError(f"cannot reach Kafka at {servers}: {reason}") from e


def _refused(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages the client did not queue because its queue was full, to try again; any other
    reason (too large, an unknown topic) ends the run."""
    from confluent_kafka import KafkaError

    again = []
    for message in messages:
        error = message.pop("_error", None)
        if error is None:
            continue
        if error.code() != KafkaError._QUEUE_FULL:
            raise KafkaOutputError(f"a record was refused by the Kafka client: {error.str()}")
        again.append(message)
    return again


class _Failures:
    """The producer's delivery report callback: counts refused records and keeps the first reason.
    An object of its own, so that the producer does not refer back to the output that holds it (a
    cycle would keep the client and its threads alive after the run, until a garbage collection)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None:
            self.count += 1
            if self.first is None:
                self.first = f"a record to Kafka topic {message.topic()!r} was not delivered: {error.str()}"

    def raise_first(self, produced: int) -> None:
        if self.first is not None:
            raise KafkaOutputError(f"{self.first} ({self.count:,} of {produced:,} failed so far)")
