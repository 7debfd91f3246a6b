"""The test broker itself (tests/kafka_broker.py): it carries records, checks SASL/PLAIN passwords,
and keeps topics and data across a restart and a crash."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from tests import conftest
from tests.conftest import KafkaSasl
from tests.kafka_broker import KafkaBroker, consume, produce

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def pairs(messages: list[Any]) -> list[tuple[bytes | None, bytes]]:
    return [(message.key(), message.value()) for message in messages]


def test_produce_and_consume_round_trip(kafka_broker: KafkaBroker) -> None:
    topic = kafka_broker.new_topic(partitions=1)
    records = [(b"k%d" % i, b"v%d" % i) for i in range(100)] + [(None, b"no key")]
    produce(kafka_broker.client_config(), topic, records)
    assert pairs(consume(kafka_broker.client_config(), topic, len(records))) == records


def test_topics_are_not_created_on_first_use(kafka_broker: KafkaBroker) -> None:
    # the producer gives up on a topic missing from the metadata after this long (30 s by default)
    config = kafka_broker.client_config(**{"topic.metadata.propagation.max.ms": 1000})
    with pytest.raises(KafkaException, match="UNKNOWN_TOPIC"):
        produce(config, "never-created", [(None, b"x")])
    assert "never-created" not in AdminClient(config).list_topics(timeout=10).topics


def test_sasl_plain_accepts_the_right_password(kafka_broker: KafkaBroker, kafka_sasl: KafkaSasl) -> None:
    topic = kafka_broker.new_topic()
    produce(kafka_sasl.client_config(), topic, [(b"user", b"logged in")])
    assert pairs(consume(kafka_sasl.client_config(), topic, 1)) == [(b"user", b"logged in")]


def test_sasl_plain_refuses_a_wrong_password(kafka_sasl: KafkaSasl) -> None:
    # the request fails as a transport error; the login failure itself goes to error_cb, on poll
    errors: list[KafkaError] = []
    producer = Producer(kafka_sasl.client_config(password="wrong", error_cb=errors.append))
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=2)
    producer.poll(1)
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors


def test_restart_keeps_topics_and_data(fresh_kafka_broker: KafkaBroker) -> None:
    broker = fresh_kafka_broker
    bootstrap = broker.bootstrap
    topic = broker.new_topic(partitions=3)
    produce(broker.client_config(), topic, [(b"before", b"restart")])
    broker.restart()
    assert broker.bootstrap == bootstrap
    produce(broker.client_config(), topic, [(b"after", b"restart")])
    found = pairs(consume(broker.client_config(), topic, 2))
    assert sorted(found) == [(b"after", b"restart"), (b"before", b"restart")]


def test_a_killed_broker_starts_again_with_its_data(fresh_kafka_broker: KafkaBroker) -> None:
    broker = fresh_kafka_broker
    topic = broker.new_topic()
    produce(broker.client_config(acks="all"), topic, [(None, b"acknowledged")])
    broker.kill()
    broker.start()
    assert pairs(consume(broker.client_config(), topic, 1)) == [(None, b"acknowledged")]


def test_the_command_line_broker_ends_its_jvm(tmp_path: Path) -> None:
    """`python -m tests.kafka_broker` (what `scripts/kafka.sh start` runs) prints where it listens,
    answers there, and leaves no JVM behind on SIGTERM."""
    options = ["--port", "0", "--dir", str(tmp_path), "--quick-start"]
    command = [sys.executable, "-m", "tests.kafka_broker", *options]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline() if process.stdout else ""
        assert first.startswith("Kafka on 127.0.0.1:"), first
        bootstrap = first.split()[-1]
        jvm = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
        assert AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).brokers
    finally:
        process.terminate()
        process.wait(60)
    assert process.returncode == 0
    assert not Path(f"/proc/{jvm}").exists(), "the JVM outlived its launcher"


def test_a_broker_that_cannot_start_fails_under_ci_and_skips_elsewhere(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(conftest, "fetch_libs", lambda: tmp_path)  # no jars: the format step fails
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)Kafka .*kafka-storage format failed.*kafka\.sh"):
        conftest._started_broker(tmp_path / "ci")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match=r"(?s)start it with: bash .*scripts/kafka\.sh"):
        conftest._started_broker(tmp_path / "dev")
