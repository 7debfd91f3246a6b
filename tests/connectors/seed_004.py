"""Seed 004 (`pipelines/seed_004.sql`, ashm8206/kafka_flink's checkout attribution) in the tests
that run it into a real database: its statements with their places filled in, its input written
to the embedded log, its PostgreSQL tables (the seed's `postgres/init.sql`) and the batch pass its
result must equal.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from clickstream import pipelines
from clickstream.simulate.base import Record
from clickstream.simulate.outputs import LogOutput
from tests.connectors.jdbc_db import Db

BOUNDED = {"scan.bounded.mode": "latest-offset", "properties.group.id": "attribution"}

# The same question in one batch pass. Among checkouts that reach the same first click (equal
# rowtimes) the earlier checkout arrives first and is kept. A checkout with no click in the hour
# has a NULL rowtime to order by: Flink's deduplication drops it as late once a watermark has
# reached it (the README's known differences), and so do we.
ORACLE = """
SELECT checkout_id, user_name, click_id, product_id, total_amount, checkout_time, click_time FROM (
    SELECT co.checkout_id, u.username AS user_name, cl.click_id, co.product_id, co.total_amount,
        co.datetime_occured AS checkout_time, cl.datetime_occured AS click_time,
        row_number() OVER (PARTITION BY cl.user_id, cl.product_id
                           ORDER BY cl.datetime_occured, co.datetime_occured) AS rn
    FROM checkouts co JOIN users u ON co.user_id = u.id
    LEFT JOIN clicks cl ON co.user_id = cl.user_id AND co.product_id = cl.product_id
        AND co.datetime_occured BETWEEN cl.datetime_occured AND cl.datetime_occured + INTERVAL 1 HOUR)
WHERE rn = 1 AND click_id IS NOT NULL"""

# What the tests read back of `attributed_checkouts`: the columns the oracle answers.
WRITTEN = "checkout_id, user_name, click_id, product_id, total_amount, checkout_time, click_time"


def statements(topics: pipelines.Place, postgres_url: str, schema: str) -> str:
    """The seed's statements reading `topics`, with the users and the result in PostgreSQL's
    `schema` (as the seed's `commerce`), connecting as the seed does."""
    login = {"username": "postgres", "password": "postgres", "driver": "org.postgresql.Driver"}
    commerce = pipelines.jdbc_tables(postgres_url.split("?")[0], schema, extra=login)
    return pipelines.load("seed_004", topics=topics, results=commerce, dimensions=commerce)


def create_commerce(db: Db, schema: str) -> None:
    """The seed's `commerce` schema (its postgres/init.sql), under the name `schema`."""
    db.execute(f"CREATE SCHEMA {schema}")
    db.execute(
        f"CREATE TABLE {schema}.users (id int PRIMARY KEY, username VARCHAR(255) NOT NULL, "
        "PASSWORD VARCHAR(255) NOT NULL)"
    )
    db.execute(
        f"CREATE TABLE {schema}.attributed_checkouts (checkout_id VARCHAR PRIMARY KEY, "
        "user_name VARCHAR, click_id VARCHAR, product_id VARCHAR, payment_method VARCHAR, "
        "total_amount DECIMAL(5, 2), shipping_address VARCHAR, billing_address VARCHAR, "
        "user_agent VARCHAR, ip_address VARCHAR, checkout_time TIMESTAMP, click_time TIMESTAMP)"
    )


def users(records: list[Record]) -> list[tuple]:
    """The rows of the users table: the simulator's users, each with a password."""
    return [(r.value["id"], r.value["username"], "secret") for r in records if r.topic == "users"]


def write_events(records: list[Record], root: Path, prefix: str) -> None:
    """The clicks and checkouts of `records` into topics `<prefix>clicks` and `<prefix>checkouts`
    (two partitions each) of the log at `root`; the users go to the lookup table, not here."""
    output = LogOutput(prefix, ["clicks", "checkouts"], str(root), partitions=2)
    for record in records:
        if record.topic != "users":
            output.write(record)
    output.close()


def batch_attribution(records: list[Record]) -> set[tuple]:
    """The rows of `attributed_checkouts` (the WRITTEN columns) one batch pass gives."""
    con = duckdb.connect()
    for topic in ("clicks", "checkouts", "users"):
        table = pa.Table.from_pylist([r.value for r in records if r.topic == topic])
        as_time = " REPLACE (CAST(datetime_occured AS TIMESTAMP) AS datetime_occured)"
        cast = "" if topic == "users" else as_time
        con.register(f"{topic}_raw", table)
        con.execute(f"CREATE TABLE {topic} AS SELECT *{cast} FROM {topic}_raw")
    rows = con.execute(ORACLE).fetchall()
    return {(*row[:4], Decimal(str(row[4])).quantize(Decimal("0.01")), *row[5:]) for row in rows}
