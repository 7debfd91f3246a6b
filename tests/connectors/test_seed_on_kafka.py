"""Seed 004's statements as written, reading its topics from a real Kafka broker: only the
`WITH (...)` options differ (Kafka for the event tables, SQLite through jdbc for the users and
the sink), and the result equals one batch pass over the same records."""

from __future__ import annotations

import io
import sqlite3
from decimal import Decimal

import pytest

from clickstream.engine import Engine
from clickstream.simulate.cli import make_generator
from tests.connectors.kafka_helpers import produce
from tests.connectors.test_seeds_into_postgres import (
    ATTRIBUTE_CHECKOUTS,
    CHECKOUTS_DDL,
    CLICKS_DDL,
    SINK_DDL,
    USERS_DDL,
    _batch_attribution,
)

pytestmark = pytest.mark.integration


def _kafka_options(bootstrap: str, topic: str) -> str:
    return (
        f"'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', "
        "'properties.group.id' = 'attribution', 'scan.startup.mode' = 'earliest-offset', "
        "'scan.bounded.mode' = 'latest-offset', 'format' = 'json'"
    )


def _sqlite_options(db: object, table: str) -> str:
    return f"'connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = '{table}'"


def test_seed_004_attribution_reading_kafka(kafka_broker, tmp_path) -> None:
    records = list(make_generator("checkouts").records(8_000))
    db = tmp_path / "commerce.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, PASSWORD TEXT)")
        conn.executemany(
            "INSERT INTO users VALUES (?, ?, 'secret')",
            [(r.value["id"], r.value["username"]) for r in records if r.topic == "users"],
        )
    topics = {name: kafka_broker.new_topic(2, prefix=f"s4-{name}") for name in ("clicks", "checkouts")}
    for name, topic in topics.items():  # keyed by user: a user's events stay in order, as in Kafka setups
        chosen = [r.value for r in records if r.topic == name]
        produce(kafka_broker.bootstrap, topic, chosen, [str(v["user_id"]).encode() for v in chosen])

    engine = Engine(out=io.StringIO())
    engine.execute_script(
        CHECKOUTS_DDL.format(checkouts=_kafka_options(kafka_broker.bootstrap, topics["checkouts"]))
        + CLICKS_DDL.format(clicks=_kafka_options(kafka_broker.bootstrap, topics["clicks"]))
        + USERS_DDL.format(users=_sqlite_options(db, "users"))
        + SINK_DDL.format(sink=_sqlite_options(db, "attributed_checkouts"))
        + ATTRIBUTE_CHECKOUTS
    )

    with sqlite3.connect(db) as conn:
        written = conn.execute(
            "SELECT checkout_id, user_name, click_id, product_id, total_amount, checkout_time, click_time "
            "FROM attributed_checkouts"
        ).fetchall()
    expected = {(*row[:4], str(row[4]), *(str(t) for t in row[5:])) for row in _batch_attribution(records)}
    got = {(*row[:4], str(Decimal(str(row[4])).quantize(Decimal("0.01"))), *row[5:]) for row in written}
    assert len(expected) > 0.3 * sum(r.topic == "checkouts" for r in records)
    assert {row[:5] for row in got} == {row[:5] for row in expected}
    assert len(written) == len(expected)
