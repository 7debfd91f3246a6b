"""Seed 004's statements (ashm8206/kafka_flink: `code/source/*.sql`,
`code/process/attribute_checkouts.sql`, `code/sink/attributed_checkouts.sql`), with `{...}` where
each table's `WITH (...)` options go, and its input written to the embedded log: shared by the
tests that run the seed into a real database.
"""

from __future__ import annotations

from pathlib import Path

from clickstream.simulate.base import Record
from clickstream.simulate.outputs import LogOutput

CHECKOUTS_DDL = """
CREATE TABLE checkouts (
    checkout_id STRING,
    user_id INT,
    product_id STRING,
    payment_method STRING,
    total_amount DECIMAL(5, 2),
    shipping_address STRING,
    billing_address STRING,
    user_agent STRING,
    ip_address STRING,
    datetime_occured TIMESTAMP(3),
    processing_time AS PROCTIME(),
    WATERMARK FOR datetime_occured AS datetime_occured - INTERVAL '15' SECOND
) WITH ({checkouts});"""

CLICKS_DDL = """
CREATE TABLE clicks (
    click_id STRING,
    user_id INT,
    product_id STRING,
    product STRING,
    price DOUBLE,
    url STRING,
    user_agent STRING,
    ip_address STRING,
    datetime_occured TIMESTAMP(3),
    processing_time AS PROCTIME(),
    WATERMARK FOR datetime_occured AS datetime_occured - INTERVAL '15' SECOND
) WITH ({clicks});"""

USERS_DDL = """
CREATE TEMPORARY TABLE users (
    id INT,
    username STRING,
    PASSWORD STRING,
    PRIMARY KEY (id) NOT ENFORCED
) WITH ({users});"""

SINK_DDL = """
CREATE TABLE attributed_checkouts (
    checkout_id STRING,
    user_name STRING,
    click_id STRING,
    product_id STRING,
    payment_method STRING,
    total_amount DECIMAL(5, 2),
    shipping_address STRING,
    billing_address STRING,
    user_agent STRING,
    ip_address STRING,
    checkout_time TIMESTAMP(3),
    click_time TIMESTAMP,
    PRIMARY KEY (checkout_id) NOT ENFORCED
) WITH ({sink});"""

ATTRIBUTE_CHECKOUTS = """
INSERT INTO
    attributed_checkouts
SELECT
    checkout_id,
    user_name,
    click_id,
    product_id,
    payment_method,
    total_amount,
    shipping_address,
    billing_address,
    user_agent,
    ip_address,
    checkout_time,
    click_time
FROM
    (
        SELECT
            co.checkout_id,
            u.username AS user_name,
            cl.click_id,
            co.product_id,
            co.payment_method,
            co.total_amount,
            co.shipping_address,
            co.billing_address,
            co.user_agent,
            co.ip_address,
            co.datetime_occured AS checkout_time,
            cl.datetime_occured AS click_time,
            ROW_NUMBER() OVER (
                PARTITION BY cl.user_id,
                cl.product_id
                ORDER BY
                    cl.datetime_occured
            ) AS rn
        FROM
            checkouts AS co
            JOIN users FOR SYSTEM_TIME AS OF co.processing_time AS u ON co.user_id = u.id
            LEFT JOIN clicks AS cl ON co.user_id = cl.user_id
            AND co.product_id = cl.product_id
            AND co.datetime_occured BETWEEN cl.datetime_occured
            AND cl.datetime_occured + INTERVAL '1' HOUR
    )
WHERE
    rn = 1;"""


def write_events(records: list[Record], root: Path, prefix: str) -> None:
    """The clicks and checkouts of `records` into topics `<prefix>clicks` and `<prefix>checkouts`
    (two partitions each) of the log at `root`; the users go to the lookup table, not here."""
    output = LogOutput(prefix, ["clicks", "checkouts"], str(root), partitions=2)
    for record in records:
        if record.topic != "users":
            output.write(record)
    output.close()
