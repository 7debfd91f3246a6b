"""Seed 000's catalogue file (`pipelines/seed_000.sql`, the demo's job) on a Kafka broker and on the
embedded log, its results in PostgreSQL, checked against the batch oracle of `tests/oracle.py`.

The events are the `tianchi` simulator's, keyed by user into three partitions, as a shop would
write them; the source reads them to the end offsets it saw at start (bounded). What a partitioned
source gives does not depend on how the partitions interleave, except for the intermediate points
of the cumulative UV (see `oracle.cumulative_uv_ceilings`):

- hourly buys: the simulator's disorder (3 s) stays within the watermark's 5 s in every partition,
  so no row is late however the partitions interleave (the oracle says so: none dropped), and at
  the end of bounded input every window fires, as in Flink;
- top categories: an unbounded count through the lookup, the same in any order;
- cumulative UV: the last point of each date is exact, every other point at most its ceiling.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import orjson
import pytest

from clickstream import pipelines
from clickstream.engine import Engine
from clickstream.simulate.base import Record
from clickstream.simulate.cli import make_generator
from clickstream.simulate.dimension import write_dimensions
from clickstream.simulate.kafka_output import KafkaOutput
from clickstream.simulate.outputs import LogOutput
from tests import oracle
from tests.connectors.jdbc_db import Db

pytestmark = pytest.mark.integration

EVENTS = 30_000
PARTITIONS = 3
TOPIC = "user_behavior"  # the table's name in the file, and its topic's
BOUNDED = {"scan.bounded.mode": "latest-offset", "properties.group.id": "seed-000"}


@pytest.fixture(scope="module")
def records() -> list[Record]:
    """The simulator's events, keyed by user (as its Kafka output keys them): one user's events stay
    in order in one partition."""
    return [r._replace(key=r.value["user_id"]) for r in make_generator("tianchi").records(EVENTS)]


@pytest.fixture(scope="module")
def categories(tmp_path_factory) -> Path:
    """The category dimension the job looks up, in SQLite."""
    path = tmp_path_factory.mktemp("seed000") / "dimensions.db"
    write_dimensions(f"sqlite:{path}", make_generator("tianchi").dimensions())
    return path


def _run(topics: pipelines.Place, categories: Path, postgres_url: str, schema: str) -> None:
    results = pipelines.jdbc_tables(postgres_url.split("?")[0], schema, extra={"username": "postgres"})
    dimensions = pipelines.jdbc_tables(f"jdbc:sqlite:{categories}")
    script = pipelines.load("seed_000", topics=topics, results=results, dimensions=dimensions)
    Engine(out=io.StringIO()).execute_script(script, "seed_000.sql")


@pytest.fixture(scope="module")
def events(records, tmp_path_factory) -> list[dict]:
    """The events as the oracle reads them, in the simulator's order."""
    path = tmp_path_factory.mktemp("seed000") / "user_behavior.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r.value) + b"\n" for r in records))
    return oracle.read_events(str(path))


def _check(events: list[dict], categories: Path, postgres_url: str, schema: str) -> None:
    db = Db("postgres", postgres_url)
    try:
        hourly, uv, top = (
            db.execute(f"SELECT * FROM {schema}.{table}")
            for table in ("buy_cnt_per_hour", "cumulative_uv", "top_category")
        )
        dimension = dict(Db("sqlite", f"jdbc:sqlite:{categories}").execute("SELECT * FROM category"))
    finally:
        db.close()
    windows, late = oracle.window_counts(events, where=lambda e: e["behavior"] == "buy")
    assert late == 0
    expected = ((oracle.hour_of(start), n, oracle.date_of(start)) for (start, _), n in windows.items())
    assert sorted(hourly) == sorted(expected)
    assert len(hourly) == 24
    assert dict(top) == oracle.top_category(events, dimension)
    _check_cumulative_uv({(date, time): n for date, time, n in uv}, events)


def _check_cumulative_uv(points: dict[tuple[str, str], int], events: list[dict]) -> None:
    ceilings = oracle.cumulative_uv_ceilings(events)
    last = {date: max(t for d, t in ceilings if d == date) for date, _ in ceilings}
    assert set(points) <= set(ceilings)
    assert all(n <= ceilings[point] for point, n in points.items())
    assert {date: points.get((date, time)) for date, time in last.items()} == {
        date: ceilings[(date, time)] for date, time in last.items()
    }
    for date in last:  # a running distinct count only grows
        values = [n for (d, _), n in sorted(points.items()) if d == date]
        assert values == sorted(values)


def test_one_stream_meets_the_partitioned_check(events) -> None:
    """The exact oracle of a single stream passes the check the partitioned runs must pass."""
    exact = oracle.cumulative_uv(events)
    _check_cumulative_uv(exact, events)
    assert len(exact) == 144  # a point per 10 minutes of the day


def test_seed_000_on_kafka_into_postgres(
    records, events, categories, kafka_broker, postgres_url, postgres_schema
) -> None:
    prefix = f"s0-{uuid.uuid4().hex[:8]}-"
    topic = kafka_broker.create_topic(prefix + TOPIC, PARTITIONS)
    output = KafkaOutput(f"kafka://{kafka_broker.bootstrap}/{topic}", [records[0].topic])
    for record in records:  # as `clickstream generate tianchi -o kafka://...` writes them
        output.write(record)
    output.close()

    _run(
        pipelines.kafka_topics(kafka_broker.bootstrap, prefix, BOUNDED),
        categories,
        postgres_url,
        postgres_schema,
    )

    _check(events, categories, postgres_url, postgres_schema)


def test_seed_000_on_the_log_into_postgres(
    records, events, categories, postgres_url, postgres_schema, tmp_path
) -> None:
    log = tmp_path / "log"
    output = LogOutput(TOPIC, [records[0].topic], str(log), partitions=PARTITIONS)
    for record in records:
        output.write(record)
    output.close()

    _run(pipelines.log_topics(str(log), extra=BOUNDED), categories, postgres_url, postgres_schema)

    _check(events, categories, postgres_url, postgres_schema)
