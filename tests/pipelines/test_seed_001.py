"""Seed 001's catalogue as written, on the embedded log and on a real Kafka broker (topics of three
partitions, events keyed by user and stock changes by product), its results in PostgreSQL: each
analysis's table equals one batch pass of DuckDB over the same records (`seed_001.ORACLE`)."""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from clickstream import pipelines
from clickstream.engine import Engine
from clickstream.simulate.base import Record
from clickstream.simulate.cli import make_generator
from clickstream.simulate.outputs import LogOutput
from tests.connectors.jdbc_db import Db
from tests.connectors.kafka_helpers import produce
from tests.pipelines.seed_001 import ANALYSES, TOPICS, batch_answers

pytestmark = pytest.mark.integration

EVENTS = 20_000  # six busy hours: about 300 minutes with sales, 1,000 purchases
PARTITIONS = 3
BOUNDED = {"scan.bounded.mode": "latest-offset"}  # the job ends at the end of what was written


def _keyed(record: Record) -> Record:
    """A user's events in one partition, in order, as a Kafka producer keyed by user writes them;
    a product's stock changes likewise."""
    value = record.value
    assert isinstance(value, dict)
    return record._replace(key=value["user_id"] if record.topic == TOPICS[0] else value["product"])


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return [_keyed(r) for r in make_generator("ecommerce", seed=1, days=0.25).records(EVENTS)]


@pytest.fixture(scope="module")
def expected(records: list[Record]) -> dict[str, Counter[tuple[Any, ...]]]:
    answers = batch_answers(records)
    assert all(answers.values()), {name: len(rows) for name, rows in answers.items()}
    return answers


def _on_log(records: list[Record], root: str) -> pipelines.Place:
    output = LogOutput("", list(TOPICS), root, partitions=PARTITIONS)
    for record in records:
        output.write(record)
    output.close()
    return pipelines.log_topics(root, extra=BOUNDED)


def _on_kafka(records: list[Record], broker: Any) -> pipelines.Place:
    prefix = f"s001-{uuid.uuid4().hex[:8]}-"
    for topic in TOPICS:
        broker.create_topic(prefix + topic, PARTITIONS)
        chosen = [r for r in records if r.topic == topic]
        produce(broker.bootstrap, prefix + topic, [r.value for r in chosen], [r.key.encode() for r in chosen])
    return pipelines.kafka_topics(broker.bootstrap, prefix, extra=BOUNDED)


@pytest.fixture(scope="module", params=["log", "kafka"])
def written(request, records, postgres_url, tmp_path_factory) -> Iterator[dict[str, Counter[Any]]]:
    """Every result table of one run of the catalogue, read from PostgreSQL."""
    if request.param == "log":
        topics = _on_log(records, str(tmp_path_factory.mktemp("log")))
    else:
        topics = _on_kafka(records, request.getfixturevalue("kafka_broker"))
    db = Db("postgres", postgres_url)
    schema = f"seed001_{request.param}_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE SCHEMA {schema}")
    try:
        results = pipelines.jdbc_tables(postgres_url.split("?")[0], schema, extra={"username": "postgres"})
        Engine(out=io.StringIO()).execute_script(pipelines.load("seed_001", topics=topics, results=results))
        yield {name: Counter(db.execute(f"SELECT * FROM {schema}.{name}")) for name in ANALYSES}
    finally:
        db.execute(f"DROP SCHEMA {schema} CASCADE")
        db.close()


@pytest.mark.parametrize("analysis", ANALYSES)
def test_seed_001_analysis_equals_batch_oracle(analysis: str, written, expected) -> None:
    got, want = written[analysis], expected[analysis]
    missing, extra = want - got, got - want
    assert got == want, (
        f"{len(got)} rows, {len(want)} expected; missing {list(missing)[:3]}, extra {list(extra)[:3]}"
    )
