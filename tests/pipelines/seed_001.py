"""Seed 001's catalogue (`pipelines/seed_001.sql`) and the batch oracle of each of its analyses.

`ORACLE` answers each analysis's question in one DuckDB pass over the simulator's records, with
the columns of its result table in order. No record of the simulator is late: its disorder (up to
3 s) is within the watermark's 5 s, and a partition's watermark only follows that partition's own
records; so Flink's answer at the end of bounded input (every window fired by the final watermark)
is the batch answer, and a late record would show as a difference.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import duckdb
import pyarrow as pa

from clickstream.simulate.base import Record

TOPICS = ("ecommerce_events", "ecommerce_inventory")

# table -> its rows in one batch pass; column order as the result table declares it
ORACLE = {
    "page_views_per_user": """
        SELECT user_id, page, COUNT(page) FROM events WHERE event_type = 'user_action'
        GROUP BY user_id, page""",
    "revenue_per_minute": """
        SELECT time_bucket(INTERVAL 1 MINUTE, timestamp_sec) AS window_start,
            window_start + INTERVAL 1 MINUTE, COUNT(*), SUM(quantity)::INTEGER, SUM(amount)
        FROM events WHERE event_type = 'purchase' GROUP BY window_start""",
    "top_selling_products": """
        SELECT row_number() OVER (ORDER BY units_sold DESC, product) AS rn, product, units_sold, revenue
        FROM (SELECT product, SUM(quantity)::INTEGER AS units_sold, SUM(amount) AS revenue
              FROM events WHERE event_type = 'purchase' GROUP BY product)
        QUALIFY rn <= 5""",
    "low_inventory_alerts": """
        SELECT product, stock, timestamp_sec FROM inventory
        WHERE event_type = 'inventory_update' AND stock < 10""",
    "most_viewed_products": """
        SELECT window_start, window_start + INTERVAL 1 HOUR,
            row_number() OVER (PARTITION BY window_start ORDER BY view_count DESC, product) AS rn,
            product, view_count
        FROM (SELECT time_bucket(INTERVAL 1 HOUR, timestamp_sec) AS window_start, product,
                  COUNT(*) AS view_count
              FROM events WHERE action = 'page_view' GROUP BY window_start, product)
        QUALIFY rn <= 3""",
    "conversion_rates": """
        SELECT product, viewers, carted, buyers,
            carted::DOUBLE / NULLIF(viewers, 0), buyers::DOUBLE / NULLIF(carted, 0),
            buyers::DOUBLE / NULLIF(viewers, 0)
        FROM (SELECT product,
                  COUNT(DISTINCT CASE WHEN action = 'page_view' THEN user_id END) AS viewers,
                  COUNT(DISTINCT CASE WHEN action = 'add_to_cart' THEN user_id END) AS carted,
                  COUNT(DISTINCT CASE WHEN event_type = 'purchase' THEN user_id END) AS buyers
              FROM events GROUP BY product)""",
    "recommendations": """
        SELECT product, row_number() OVER (PARTITION BY product ORDER BY co_views DESC, also_viewed) AS rn,
            also_viewed, co_views
        FROM (SELECT v.product, o.product AS also_viewed, COUNT(*) AS co_views
              FROM events v JOIN events o ON v.user_id = o.user_id AND v.product <> o.product
                  AND o.timestamp_sec BETWEEN v.timestamp_sec - INTERVAL 30 MINUTE
                                          AND v.timestamp_sec + INTERVAL 30 MINUTE
              WHERE v.action = 'page_view' AND o.action = 'page_view'
              GROUP BY v.product, o.product)
        QUALIFY rn <= 3""",
    "also_bought": """
        SELECT product, row_number() OVER (PARTITION BY product ORDER BY times_bought DESC, bought) AS rn,
            bought, times_bought
        FROM (SELECT v.product, p.product AS bought, COUNT(*) AS times_bought
              FROM events v JOIN events p ON v.user_id = p.user_id AND v.product <> p.product
                  AND p.timestamp_sec BETWEEN v.timestamp_sec AND v.timestamp_sec + INTERVAL 1 HOUR
              WHERE v.action = 'page_view' AND p.event_type = 'purchase'
              GROUP BY v.product, p.product)
        QUALIFY rn <= 3""",
}
ANALYSES = tuple(ORACLE)

# what each topic's table reads, typed as the catalogue declares it
_COLUMNS = {
    "ecommerce_events": (
        "events",
        "event_type VARCHAR, user_id VARCHAR, action VARCHAR, page VARCHAR, product VARCHAR, "
        "quantity INTEGER, amount DECIMAL(10, 2), timestamp_sec TIMESTAMP",
    ),
    "ecommerce_inventory": (
        "inventory",
        "event_type VARCHAR, product VARCHAR, stock INTEGER, timestamp_sec TIMESTAMP",
    ),
}


def batch_answers(records: list[Record]) -> dict[str, Counter[tuple[Any, ...]]]:
    """Each analysis's rows (a multiset) over all `records`."""
    con = duckdb.connect()
    for topic, (table, columns) in _COLUMNS.items():
        names = [column.split()[0] for column in re.split(r",\s*(?=[a-z_]+ )", columns)]
        values = [r.value for r in records if r.topic == topic]
        con.register(f"{table}_raw", pa.table({name: [v.get(name) for v in values] for name in names}))
        con.execute(f"CREATE TABLE {table} ({columns})")
        con.execute(f"INSERT INTO {table} SELECT {', '.join(names)} FROM {table}_raw")
    return {name: Counter(con.execute(query).fetchall()) for name, query in ORACLE.items()}


def flink_statements(text: str) -> tuple[list[str], dict[str, str]]:
    """The catalogue for PyFlink: the setup statements (tables, views) and each INSERT's query by
    its table, with the `properties.*` options the filesystem connector refuses taken out."""
    text = re.sub(r"'properties\.[a-z.]+' = '[^']*',\s*", "", text)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    setup, queries = [], {}
    for statement in (s.strip() for s in text.split(";")):
        insert = re.match(r"INSERT INTO (\w+)\s+(.*)", statement, re.S)
        if insert:
            queries[insert.group(1)] = insert.group(2)
        elif statement:
            setup.append(statement)
    return setup, queries
