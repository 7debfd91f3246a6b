"""`generate` and `replay` to a real Kafka broker (`-o kafka://...`): every record arrives, keyed by
its natural key, multi-topic generators under a prefix, SASL through the URL, and a broker that
cannot be reached, refuses a login or refuses records says so."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from clickstream.cli import app
from clickstream.simulate import generate
from clickstream.simulate import kafka_output as kafka_output_module
from clickstream.simulate.base import Record
from clickstream.simulate.cli import replay
from clickstream.simulate.kafka_output import (
    KafkaOutput,
    KafkaOutputError,
    natural_key,
    parse_kafka_url,
    target_topics,
)
from clickstream.simulate.outputs import open_output
from tests.conftest import KafkaSasl
from tests.kafka_broker import SASL_PASSWORD, SASL_USER, KafkaBroker, consume, free_ports

SAMPLE = Path(__file__).parent.parent / "data" / "UserBehavior_sample.csv"


def read_topic(broker: KafkaBroker, topic: str, count: int) -> list[Any]:
    messages = consume(broker.client_config(), topic, count, timeout=60)
    assert len(messages) == count, f"{topic}: {len(messages)} of {count} records arrived"
    assert consume(broker.client_config(), topic, count + 1, timeout=2)[count:] == [], "more than written"
    return messages


def test_url_parts():
    assert parse_kafka_url("kafka://a:9092,b:9092/feed?acks=1") == ("a:9092,b:9092", "feed", {"acks": "1"})
    assert parse_kafka_url("kafka://a:9092") == ("a:9092", "", {})
    with pytest.raises(KafkaOutputError, match="kafka://host:port"):
        parse_kafka_url("kafka:///feed")


def test_topic_names():
    assert target_topics("feed", ["clickstream-feed"]) == {"clickstream-feed": "feed"}
    assert target_topics("s3_", ["users", "clicks"]) == {"users": "s3_users", "clicks": "s3_clicks"}
    assert target_topics("", ["users", "clicks"]) == {"users": "users", "clicks": "clicks"}


def test_natural_keys():
    assert natural_key(Record("users", {"user_id": "7", "level": "GOLD"}, key="7")) == b"7"
    assert natural_key(Record("clickstream", {"userid": 371, "status": 404})) == b"371"
    assert natural_key(Record("ecommerce_inventory", {"product": "router", "stock": 30})) == b"router"
    assert natural_key(Record("feed", "{not json")) is None


def test_single_topic_generator_writes_the_same_records_as_to_a_file(kafka_broker, tmp_path):
    topic = f"feed-{tmp_path.name}"
    summary = generate("tianchi", f"kafka://{kafka_broker.bootstrap}/{topic}", events=2_000, seed=3)
    assert summary.targets == {"clickstream-feed": f"kafka://{kafka_broker.bootstrap}/{topic}"}
    generate("tianchi", str(tmp_path / "feed.jsonl"), events=2_000, seed=3)
    messages = read_topic(kafka_broker, topic, 2_000)
    assert [m.value() for m in messages] == (tmp_path / "feed.jsonl").read_bytes().splitlines()
    assert all(m.key() == orjson.loads(m.value())["user_id"].encode() for m in messages)


def test_multi_topic_generator_writes_under_the_prefix_with_keys(kafka_broker, tmp_path):
    prefix = f"s3-{tmp_path.name}-"
    summary = generate("users-clicks", f"kafka://{kafka_broker.bootstrap}/{prefix}", events=1_000, seed=5)
    assert set(summary.targets) == {"users", "clicks"}
    for topic in ("users", "clicks"):
        assert summary.targets[topic] == f"kafka://{kafka_broker.bootstrap}/{prefix}{topic}"
        for message in read_topic(kafka_broker, prefix + topic, summary.counts[topic]):
            assert message.key() == str(orjson.loads(message.value())["user_id"]).encode()


def test_malformed_records_go_without_a_key(kafka_broker, tmp_path):
    topic = f"bad-{tmp_path.name}"
    generate("tianchi", f"kafka://{kafka_broker.bootstrap}/{topic}", events=500, malformed_ratio=0.2)
    messages = read_topic(kafka_broker, topic, 500)
    assert any(m.key() is None for m in messages), "no record cut short"
    assert all((m.key() is None) == (not parses(m.value())) for m in messages)


def parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def test_a_small_client_queue_only_slows_the_run(kafka_broker, tmp_path):
    topic = f"queue-{tmp_path.name}"
    url = f"kafka://{kafka_broker.bootstrap}/{topic}?queue.buffering.max.messages=1500"
    generate("tianchi", url, events=10_000, seed=4)
    generate("tianchi", str(tmp_path / "feed.jsonl"), events=10_000, seed=4)
    messages = read_topic(kafka_broker, topic, 10_000)
    assert [m.value() for m in messages] == (tmp_path / "feed.jsonl").read_bytes().splitlines()


def test_delivered_counts_the_acknowledged_records(kafka_broker, tmp_path):
    output = open_output(f"kafka://{kafka_broker.bootstrap}/count-{tmp_path.name}", ["feed"])
    assert isinstance(output, KafkaOutput)
    for n in range(2_500):
        output.write(Record("feed", {"user_id": n}))
    output.close()
    assert (output.produced, output.delivered, output.failures.count) == (2_500, 2_500, 0)


def test_replay_to_kafka(kafka_broker, tmp_path):
    topic = f"replay-{tmp_path.name}"
    url = f"kafka://{kafka_broker.bootstrap}/{topic}"
    summary = replay(SAMPLE, url, speedup=None, limit=300, progress=False)
    assert summary.total == 300
    times = [orjson.loads(m.value())["ts"] for m in read_topic(kafka_broker, topic, 300)]
    assert times == sorted(times)  # one partition: the replay's event-time order


def test_sasl_properties_in_the_url(kafka_broker, kafka_sasl: KafkaSasl, tmp_path):
    topic = f"sasl-{tmp_path.name}"
    login = f"security.protocol=SASL_PLAINTEXT&sasl.mechanism=PLAIN&sasl.username={SASL_USER}"
    url = f"kafka://{kafka_sasl.bootstrap}/{topic}?{login}&sasl.password={SASL_PASSWORD}"
    generate("tianchi", url, events=100)
    read_topic(kafka_broker, topic, 100)
    with pytest.raises(KafkaOutputError, match="Invalid username or password"):
        generate("tianchi", f"kafka://{kafka_sasl.bootstrap}/{topic}?{login}&sasl.password=wrong", events=1)


def test_unreachable_broker_is_named(monkeypatch):
    monkeypatch.setattr(kafka_output_module, "CONNECT_TIMEOUT_S", 2.0)
    (port,) = free_ports(1)
    with pytest.raises(KafkaOutputError, match=f"cannot reach Kafka at 127.0.0.1:{port}"):
        generate("tianchi", f"kafka://127.0.0.1:{port}/feed", events=1)


def test_refused_records_stop_the_run(kafka_broker):
    topic = kafka_broker.create_topic(f"tiny-{id(kafka_broker)}", 1, **{"max.message.bytes": "64"})
    with pytest.raises(KafkaOutputError, match=f"not delivered.*{topic}|{topic}.*not delivered"):
        generate("tianchi", f"kafka://{kafka_broker.bootstrap}/{topic}", events=100)


def test_cli_generate_to_kafka(kafka_broker, tmp_path):
    topic = f"cli-{tmp_path.name}"
    url = f"kafka://{kafka_broker.bootstrap}/{topic}"
    result = CliRunner().invoke(app, ["generate", "tianchi", "-n", "50", "-o", url])
    assert result.exit_code == 0, result.output
    assert f"clickstream-feed  50 -> {url}" in result.output
    read_topic(kafka_broker, topic, 50)


def test_cli_says_why_it_cannot_write(monkeypatch):
    monkeypatch.setattr(kafka_output_module, "CONNECT_TIMEOUT_S", 1.0)
    (port,) = free_ports(1)
    result = CliRunner().invoke(app, ["generate", "tianchi", "-n", "5", "-o", f"kafka://127.0.0.1:{port}/x"])
    assert result.exit_code == 1
    assert "cannot reach Kafka" in result.output


def test_a_broker_restart_mid_run_loses_and_repeats_nothing(fresh_kafka_broker, tmp_path):
    broker = fresh_kafka_broker
    topic = broker.new_topic(partitions=2)
    summaries = []
    run = threading.Thread(
        target=lambda: summaries.append(
            generate("tianchi", f"kafka://{broker.bootstrap}/{topic}", events=12_000, rate=3_000, seed=8)
        )
    )
    run.start()
    time.sleep(1.5)
    broker.restart()  # the producer keeps its records and sends them again once the broker is back
    run.join(120)
    assert summaries and summaries[0].total == 12_000
    generate("tianchi", str(tmp_path / "feed.jsonl"), events=12_000, seed=8)
    values = sorted(m.value() for m in read_topic(broker, topic, 12_000))
    assert values == sorted((tmp_path / "feed.jsonl").read_bytes().splitlines())
