"""Seed 001's catalogue as written, on the embedded log and on a real Kafka broker (topics of three
partitions, events keyed by user and stock changes by product), its results in PostgreSQL: each
analysis's table equals one batch pass of DuckDB over the same records (`seed_001.ORACLE`), also
when the log is read in micro-batches of 1,000 records (watermarks advancing between them)."""

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
from clickstream.simulate.kafka_output import KafkaOutput
from clickstream.simulate.outputs import LogOutput
from tests.connectors.jdbc_db import Db
from tests.pipelines.seed_001 import ANALYSES, TOPICS, batch_answers

pytestmark = pytest.mark.integration

EVENTS = 20_000  # six hours: 514 purchases in 316 minutes, 521 stock changes
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
    """The simulator's Kafka output: idempotent, so a retried batch cannot land after a later one
    (which would make its records late, in Flink as here)."""
    prefix = f"s001-{uuid.uuid4().hex[:8]}-"
    for topic in TOPICS:
        broker.create_topic(prefix + topic, PARTITIONS)
    output = KafkaOutput(f"kafka://{broker.bootstrap}/{prefix}", list(TOPICS))
    for record in records:
        output.write(record)
    output.close()
    return pipelines.kafka_topics(broker.bootstrap, prefix, extra=BOUNDED)


# where the records are, and the micro-batch size (the whole input in one batch by default)
RUNS = {"log": None, "log-batches-of-1000": 1000, "kafka": None}


@pytest.fixture(scope="module", params=list(RUNS))
def written(request, records, postgres_url, tmp_path_factory) -> Iterator[dict[str, Counter[Any]]]:
    """Every result table of one run of the catalogue, read from PostgreSQL."""
    if request.param.startswith("log"):
        topics = _on_log(records, str(tmp_path_factory.mktemp("log")))
    else:
        topics = _on_kafka(records, request.getfixturevalue("kafka_broker"))
    db = Db("postgres", postgres_url)
    schema = f"seed001_{request.param.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE SCHEMA {schema}")
    batch = RUNS[request.param]
    try:
        results = pipelines.jdbc_tables(postgres_url.split("?")[0], schema, extra={"username": "postgres"})
        script = pipelines.load("seed_001", topics=topics, results=results)
        setting = f"SET 'table.exec.mini-batch.size' = '{batch}';\n" if batch else ""
        Engine(out=io.StringIO()).execute_script(setting + script)
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
