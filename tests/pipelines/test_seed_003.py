"""Seed 003's catalogue file (`pipelines/seed_003.sql`) on the embedded log and on a Kafka broker,
checked against one batch pass over the same records.

The simulator's `users` topic is a changelog keyed by user (a snapshot, then level changes) and
`clicks` a stream keyed by user too, both in three partitions. Whatever the order the partitions are
read in, the join ends in one state: every click joined with its user's latest row, kept where that
row says PLATINUM. The result goes into PostgreSQL and, on Kafka, also into an `upsert-kafka` topic
(the seed's VipActions is a topic), read back by key.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from clickstream import pipelines
from clickstream.engine import Engine
from clickstream.simulate.base import Record
from clickstream.simulate.cli import make_generator
from clickstream.simulate.kafka_output import KafkaOutput
from clickstream.simulate.outputs import LogOutput
from tests.connectors.jdbc_db import Db
from tests.connectors.kafka_helpers import read_topic
from tests.kafka_broker import KafkaBroker

RECORDS = 25_000
PARTITIONS = 3
BOUNDED = {"scan.bounded.mode": "latest-offset", "properties.group.id": "seed-003"}

# The latest row of each user (the last record of its key), joined with every click.
ORACLE = """
WITH latest AS (
    SELECT * FROM users QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY seq DESC) = 1)
SELECT latest.user_id, latest.name, clicks.page, clicks.action, clicks.event_time
FROM clicks JOIN latest ON clicks.user_id = latest.user_id
WHERE latest.level = 'PLATINUM'"""

Row = tuple[str, str, int, str, datetime]


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return list(make_generator("users-clicks").records(RECORDS))


def vip_actions(records: list[Record]) -> set[Row]:
    """The seed's question in one batch pass (DuckDB), one row per VipActions key."""
    con = duckdb.connect()
    users = [{**r.value, "seq": i} for i, r in enumerate(records) if r.topic == "users"]
    con.register("users", pa.Table.from_pylist(users))
    clicks = pa.Table.from_pylist([r.value for r in records if r.topic == "clicks"])
    con.register("clicks_raw", clicks)
    as_time = "REPLACE (CAST(event_time AS TIMESTAMP) AS event_time)"
    con.execute(f"CREATE TABLE clicks AS SELECT * {as_time} FROM clicks_raw")
    rows = {(*row[:4], row[4].replace(tzinfo=UTC)) for row in con.execute(ORACLE).fetchall()}
    assert len({(row[0], row[4]) for row in rows}) == len(rows), "VipActions' key is not unique"
    return rows


def _keyed(records: list[Record]) -> list[Record]:
    """Clicks keyed by their user, as users are (and as the simulator's Kafka output keys them):
    one user's records stay in one partition."""
    return [r if r.key is not None else r._replace(key=r.value["user_id"]) for r in records]


def _run(topics: pipelines.Place, results: pipelines.Place) -> None:
    Engine(out=io.StringIO()).execute_script(pipelines.load("seed_003", topics=topics, results=results))


def _written(postgres_url: str, schema: str) -> set[Row]:
    db = Db("postgres", postgres_url)
    try:
        rows = db.execute(f"SELECT user_id, name, page, action, event_time FROM {schema}.vip_actions")
    finally:
        db.close()
    return {(*row[:4], _utc(row[4])) for row in rows}


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _postgres(postgres_url: str, schema: str) -> pipelines.Place:
    return pipelines.jdbc_tables(postgres_url.split("?")[0], schema, extra={"username": "postgres"})


@pytest.mark.integration
def test_seed_003_on_the_log_into_postgres(records, postgres_url, postgres_schema, tmp_path) -> None:
    output = LogOutput("s3_", ["users", "clicks"], str(tmp_path / "log"), partitions=PARTITIONS)
    for record in _keyed(records):
        output.write(record)
    output.close()

    _run(
        pipelines.log_topics(str(tmp_path / "log"), "s3_", BOUNDED), _postgres(postgres_url, postgres_schema)
    )

    expected = vip_actions(records)
    assert 1_000 < len(expected) < 10_000  # the latest rows only: every version would give ~10x
    assert _written(postgres_url, postgres_schema) == expected


@pytest.fixture(scope="module")
def kafka_prefix(records, kafka_broker: KafkaBroker) -> str:
    """The seed's topics on the broker, under a prefix of their own, written as `clickstream generate
    users-clicks -o kafka://...` writes them: keyed by user id (the file reads the key `raw`)."""
    prefix = f"s3-{uuid.uuid4().hex[:8]}-"
    for topic in ("users", "clicks"):
        kafka_broker.create_topic(prefix + topic, PARTITIONS)
    output = KafkaOutput(f"kafka://{kafka_broker.bootstrap}/{prefix}", ["users", "clicks"])
    for record in records:
        output.write(record)
    output.close()
    return prefix


@pytest.mark.integration
def test_seed_003_on_kafka_into_postgres(
    records, kafka_broker, kafka_prefix, postgres_url, postgres_schema
) -> None:
    topics = pipelines.kafka_topics(kafka_broker.bootstrap, kafka_prefix, BOUNDED)
    _run(topics, _postgres(postgres_url, postgres_schema))
    assert _written(postgres_url, postgres_schema) == vip_actions(records)


@pytest.mark.integration
def test_seed_003_on_kafka_into_an_upsert_topic(records, kafka_broker, kafka_prefix) -> None:
    topics = pipelines.kafka_topics(kafka_broker.bootstrap, kafka_prefix, BOUNDED)
    formats = {"key.format": "json", "value.format": "json"}
    results = pipelines.kafka_topics(kafka_broker.bootstrap, kafka_prefix, formats).upserts
    kafka_broker.create_topic(kafka_prefix + "vip_actions", PARTITIONS)  # the seed's operator makes it
    _run(topics, results)
    assert _read_upserts(kafka_broker.bootstrap, kafka_prefix + "vip_actions") == vip_actions(records)


def _read_upserts(bootstrap: str, topic: str) -> set[Row]:
    """The table an upsert topic holds: each key's last value, tombstoned keys left out."""
    latest: dict[bytes, bytes | None] = {}
    for message in read_topic(bootstrap, topic):
        latest[message.key()] = message.value()
    rows = (orjson.loads(value) for value in latest.values() if value is not None)
    return {(r["user_id"], r["name"], r["page"], r["action"], _parsed(r["event_time"])) for r in rows}


def _parsed(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def test_the_log_and_kafka_read_users_as_upserts(tmp_path: Path) -> None:
    """The same file declares Users as a keyed changelog on both: the log connector with its
    PRIMARY KEY, Kafka through `upsert-kafka`."""
    results = pipelines.jdbc_tables(f"jdbc:sqlite:{tmp_path / 'results.db'}")
    log = pipelines.load("seed_003", topics=pipelines.log_topics(str(tmp_path)), results=results)
    kafka = pipelines.load("seed_003", topics=pipelines.kafka_topics("k:9092"), results=results)
    assert "'connector' = 'log', 'path'" in log.split("CREATE TABLE Clicks")[0]
    assert "'connector' = 'upsert-kafka', 'topic' = 'users'" in kafka
    assert "'connector' = 'kafka', 'topic' = 'clicks'" in kafka
