"""`clickstream demo --kafka host:port`: the simulator writes to a real Kafka broker, the job reads it
there, and the charts end as those of the demo on the embedded log. Stopped and started again it
resumes from its checkpoint; the consumer group's offsets follow the job, so Kafka's tools see no
lag at the end; `--fresh` deletes the demo's topic and starts over."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicPartition

from clickstream.demo_bus import group_id
from clickstream.scenarios import SCENARIOS
from tests.demo_process import EVENTS, run_demo, tables, written

pytestmark = pytest.mark.integration


def _group_lag(bootstrap: str) -> tuple[int, int]:
    """(records in the demo's topic, records the demo's consumer group has not committed)."""
    topic = "clickstream-demo.000.user_behavior"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id(SCENARIOS["000"])})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions}
    finally:
        consumer.close()
    return sum(ends.values()), sum(ends[tp.partition] - max(tp.offset, 0) for tp in committed)


def test_the_demo_on_kafka_matches_the_demo_on_the_log_and_resumes(kafka_broker, tmp_path):
    on_log, on_kafka = tmp_path / "log", tmp_path / "kafka"
    run_demo(on_log)
    expected = tables(on_log)
    assert all(expected.values())

    kafka = ("--kafka", kafka_broker.bootstrap)
    run_demo(on_kafka, *kafka, stop_after_s=3)
    assert 0 < written(on_kafka) < EVENTS  # stopped part-way
    run_demo(on_kafka, *kafka)
    assert written(on_kafka) == EVENTS
    assert tables(on_kafka) == expected
    assert _group_lag(kafka_broker.bootstrap) == (EVENTS, 0)
    assert not (on_kafka / "000" / "log").exists()  # the events went to Kafka only

    run_demo(on_kafka, *kafka, stop_after_s=2, fresh=True)
    assert 0 < written(on_kafka) < EVENTS
    assert _group_lag(kafka_broker.bootstrap)[0] == written(on_kafka)  # the old topic's events are gone
