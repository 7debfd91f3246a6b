"""Where the demo's simulator writes its events and its job reads them: the embedded log in the data
directory (the default, nothing to install) or a user's Kafka broker (`clickstream demo --kafka`).

Both answer the same questions: how many events are there already (the demo resumes its simulation
from there), where the simulator writes, which `WITH (...)` options the job's source gets, and how
to start over (`--fresh`).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Protocol

from clickstream.log import TopicLog
from clickstream.pipelines import Place, kafka_topics, log_topics

TOPIC = "user_behavior"  # the seed's name for the events
GROUP = "clickstream-demo"  # the job's consumer group: Kafka's tools show its lag
# On a user's broker the demo owns one topic, named so that it cannot be taken for theirs: --fresh
# deletes it.
KAFKA_TOPIC_PREFIX = "clickstream-demo."
DELETE_TIMEOUT_S = 30.0


class EventBus(Protocol):
    def logged(self) -> int:
        """Events written so far (the simulation resumes after them)."""

    def output(self) -> dict[str, Any]:
        """`simulate.cli.generate`'s options that make the simulator write here."""

    def topics(self) -> Place:
        """The job's source options."""

    def wipe(self) -> None:
        """Delete the events (`--fresh`)."""

    def describe(self) -> str: ...


class LogBus:
    """The embedded log under the demo's data directory, kept to about `retention_bytes`."""

    def __init__(self, log_dir: Path, retention_bytes: int) -> None:
        self.log_dir = log_dir
        self.retention_bytes = retention_bytes

    def logged(self) -> int:
        with TopicLog(self.log_dir) as log:
            return sum(log.end_offsets(TOPIC).values())

    def output(self) -> dict[str, Any]:
        log_dir, retention = str(self.log_dir), self.retention_bytes
        return {"out": f"log:{TOPIC}", "log_dir": log_dir, "log_retention_bytes": retention}

    def topics(self) -> Place:
        return log_topics(str(self.log_dir), extra={"properties.group.id": GROUP})

    def wipe(self) -> None:
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def describe(self) -> str:
        return f"the embedded log in {self.log_dir}"


class KafkaBus:
    """Topic `clickstream-demo.user_behavior` on a Kafka broker, created with the broker's default
    partitions and replication if missing; its retention is the broker's."""

    def __init__(self, servers: str) -> None:
        self.servers = servers
        self.topic = KAFKA_TOPIC_PREFIX + TOPIC
        self.config: dict[str, Any] = {"bootstrap.servers": servers}

    def logged(self) -> int:
        from confluent_kafka import Consumer, TopicPartition

        from clickstream.simulate.kafka_output import ensure_topics

        ensure_topics(self.config, [self.topic])
        consumer = Consumer({**self.config, "group.id": GROUP, "log_level": 0})
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            ends = [
                consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10) for p in partitions
            ]
            return sum(high for _, high in ends)
        finally:
            consumer.close()

    def output(self) -> dict[str, Any]:
        return {"out": f"kafka://{self.servers}/{self.topic}"}

    def topics(self) -> Place:
        return kafka_topics(self.servers, KAFKA_TOPIC_PREFIX, extra={"properties.group.id": GROUP})

    def wipe(self) -> None:
        """Delete the demo's topic and wait until the broker has (a topic being deleted cannot be
        created again)."""
        from confluent_kafka import KafkaError, KafkaException

        from clickstream.simulate.kafka_output import admin_client, topics_on_broker

        admin, errors = admin_client(self.config)
        if self.topic not in topics_on_broker(admin, errors, self.servers):
            return
        try:
            admin.delete_topics([self.topic])[self.topic].result(timeout=DELETE_TIMEOUT_S)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
        deadline = time.monotonic() + DELETE_TIMEOUT_S
        while self.topic in topics_on_broker(admin, errors, self.servers) and time.monotonic() < deadline:
            time.sleep(0.2)

    def describe(self) -> str:
        return f"Kafka topic {self.topic} at {self.servers}"
