"""Seed 004's catalogue file (`pipelines/seed_004.sql`) as written, reading its topics from a real
Kafka broker: only the places differ (Kafka for the event tables, the seed's PostgreSQL tables
through jdbc for the users and the result), and the result equals one batch pass over the same
records."""

from __future__ import annotations

import io
import uuid

import pytest

from clickstream import pipelines
from clickstream.engine import Engine
from clickstream.simulate.cli import make_generator
from clickstream.simulate.kafka_output import KafkaOutput
from tests.connectors.seed_004 import BOUNDED, WRITTEN, batch_attribution, statements, users

pytestmark = pytest.mark.integration


def test_seed_004_attribution_reading_kafka(kafka_broker, commerce, postgres_url) -> None:
    db, schema = commerce
    records = list(make_generator("checkouts").records(8_000))
    db.insert(f"{schema}.users", users(records))
    prefix = f"s4-{uuid.uuid4().hex[:8]}-"
    for topic in ("clicks", "checkouts"):
        kafka_broker.create_topic(prefix + topic, 2)
    # keyed by user, as the simulator writes them: a user's events stay in order, as in Kafka setups
    output = KafkaOutput(f"kafka://{kafka_broker.bootstrap}/{prefix}", ["clicks", "checkouts"])
    for record in records:
        if record.topic != "users":
            output.write(record)
    output.close()

    topics = pipelines.kafka_topics(kafka_broker.bootstrap, prefix, BOUNDED)
    Engine(out=io.StringIO()).execute_script(statements(topics, postgres_url, schema))

    written = db.execute(f"SELECT {WRITTEN} FROM {schema}.attributed_checkouts")
    expected = batch_attribution(records)
    assert len(expected) > 0.3 * sum(r.topic == "checkouts" for r in records)
    assert set(written) == expected and len(written) == len(expected)
