"""Where a demo scenario's simulator writes its events and its job reads them: the embedded log in
the scenario's directory (the default, nothing to install) or a user's Kafka broker (`clickstream
demo --kafka`).

Both answer the same questions: how many events are there already (the demo resumes its simulation
from there), where the simulator writes, which `WITH (...)` options the job's sources get, and how
to start over (`--fresh`). The topics are those of the scenario's simulator, under the names the
seed's statements read (`user_behavior`, `clicks`, ...).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Protocol

from clickstream.errors import ClickstreamError
from clickstream.log import TopicLog
from clickstream.pipelines import Place, kafka_topics, log_topics
from clickstream.scenarios import Scenario

# On a user's broker the demo owns its topics, named so that they cannot be taken for theirs:
# `clickstream-demo.<scenario>.<topic>`; --fresh deletes them.
KAFKA_TOPIC_PREFIX = "clickstream-demo."
DELETE_TIMEOUT_S = 30.0
LEADER_WAIT_S = 30.0


class DemoBusError(ClickstreamError):
    """The demo's broker does not answer as it must."""


def group_id(scenario: Scenario) -> str:
    """The scenario's job's consumer group: Kafka's tools show its lag."""
    return f"clickstream-demo-{scenario.name}"


def simulator_topics(scenario: Scenario) -> list[str]:
    """The topics the scenario's simulator writes, by the names its statements read."""
    from clickstream.simulate.cli import make_generator

    return [scenario.topic] if scenario.topic else list(make_generator(scenario.simulator).topics())


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
    """The embedded log under the scenario's directory, each topic kept to about `retention_bytes`."""

    def __init__(self, log_dir: Path, scenario: Scenario, retention_bytes: int) -> None:
        self.log_dir = log_dir
        self.scenario = scenario
        self.names = simulator_topics(scenario)
        self.retention_bytes = retention_bytes

    def logged(self) -> int:
        with TopicLog(self.log_dir) as log:
            existing = set(log.topics())
            return sum(sum(log.end_offsets(topic).values()) for topic in self.names if topic in existing)

    def output(self) -> dict[str, Any]:
        # one topic: its name; several: an empty prefix, so each keeps its own
        target = self.names[0] if len(self.names) == 1 else ""
        log_dir, retention = str(self.log_dir), self.retention_bytes
        return {"out": f"log:{target}", "log_dir": log_dir, "log_retention_bytes": retention}

    def topics(self) -> Place:
        return log_topics(str(self.log_dir), extra={"properties.group.id": group_id(self.scenario)})

    def wipe(self) -> None:
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def describe(self) -> str:
        return f"the embedded log in {self.log_dir}"


class KafkaBus:
    """Topics `clickstream-demo.<scenario>.<topic>` on a Kafka broker, created with the broker's
    default partitions and replication if missing; their retention is the broker's."""

    def __init__(self, servers: str, scenario: Scenario) -> None:
        self.servers = servers
        self.scenario = scenario
        self.prefix = f"{KAFKA_TOPIC_PREFIX}{scenario.name}."
        self.names = [self.prefix + topic for topic in simulator_topics(scenario)]
        self.config: dict[str, Any] = {"bootstrap.servers": servers}

    def logged(self) -> int:
        from confluent_kafka import Consumer, TopicPartition

        from clickstream.simulate.kafka_output import ensure_topics

        ensure_topics(self.config, self.names)
        consumer = Consumer({**self.config, "group.id": group_id(self.scenario), "log_level": 0})
        try:
            total = 0
            for topic in self.names:
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                total += sum(self._end_offset(consumer, TopicPartition(topic, p)) for p in partitions)
            return total
        finally:
            consumer.close()

    def _end_offset(self, consumer: Any, partition: Any) -> int:
        """The partition's end offset. A topic just created has no leader for a moment: the
        broker's "not leader" and "unknown partition" answers are waited out (LEADER_WAIT_S)."""
        from confluent_kafka import KafkaError, KafkaException

        waiting = {
            KafkaError.NOT_LEADER_FOR_PARTITION,
            KafkaError.LEADER_NOT_AVAILABLE,
            KafkaError.UNKNOWN_TOPIC_OR_PART,
        }
        deadline = time.monotonic() + LEADER_WAIT_S
        while True:
            try:
                return int(consumer.get_watermark_offsets(partition, timeout=10)[1])
            except KafkaException as e:
                if e.args[0].code() not in waiting or time.monotonic() > deadline:
                    raise DemoBusError(
                        f"cannot read the end of Kafka topic {partition.topic} at {self.servers}: "
                        f"{e.args[0].str()}"
                    ) from None
                time.sleep(0.2)

    def output(self) -> dict[str, Any]:
        # one topic: its whole name; several: the prefix of their names
        target = self.names[0] if len(self.names) == 1 else self.prefix
        return {"out": f"kafka://{self.servers}/{target}"}

    def topics(self) -> Place:
        return kafka_topics(self.servers, self.prefix, extra={"properties.group.id": group_id(self.scenario)})

    def wipe(self) -> None:
        """Delete the scenario's topics and wait until the broker has (a topic being deleted
        cannot be created again)."""
        from confluent_kafka import KafkaError, KafkaException

        from clickstream.simulate.kafka_output import admin_client, topics_on_broker

        admin, errors = admin_client(self.config)
        present = [t for t in self.names if t in topics_on_broker(admin, errors, self.servers)]
        if not present:
            return
        for future in admin.delete_topics(present).values():
            try:
                future.result(timeout=DELETE_TIMEOUT_S)
            except KafkaException as e:
                if e.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
        deadline = time.monotonic() + DELETE_TIMEOUT_S
        while set(present) & topics_on_broker(admin, errors, self.servers) and time.monotonic() < deadline:
            time.sleep(0.2)

    def describe(self) -> str:
        return f"Kafka topics {self.prefix}* at {self.servers}"
