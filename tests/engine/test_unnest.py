"""CROSS JOIN UNNEST (Flink's Correlate) against a batch oracle, at several batch sizes.

Generated orders carry an ARRAY<STRING> of items (empty, NULL, with NULL elements), a MAP of
quantities and an ARRAY<ROW<sku, n>>; event times arrive out of order and some late. The oracle
answers each question in one plain-Python pass: an UNNEST then an unbounded GROUP BY counts every
element; an UNNEST then a TUMBLE window drops the rows of late orders (the window ended at or
before the watermark just before them); a LEFT JOIN UNNEST WITH ORDINALITY keeps the orders
without items.
"""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from datetime import datetime, timedelta

import pytest

from clickstream.engine import Engine

DELAY_MS = 2_000
WINDOW_MS = 10_000
START = datetime(2024, 1, 1)


def _orders(count: int = 300, seed: int = 11) -> list[dict]:
    rnd = random.Random(seed)
    orders, clock = [], 0
    for i in range(count):
        clock += rnd.randint(0, 700)
        lateness = rnd.choice([0, 0, 0, 1_500, 6_000, 25_000])  # out of order; some late
        ts = max(clock - lateness, 0)
        items = (
            None
            if rnd.random() < 0.1
            else [rnd.choice("abcde") if rnd.random() > 0.1 else None for _ in range(rnd.randint(0, 4))]
        )
        lines = [{"sku": rnd.choice("xyz"), "n": rnd.randint(1, 5)} for _ in range(rnd.randint(0, 3))]
        orders.append(
            {
                "id": i,
                "items": items,
                "qty": {s: rnd.randint(1, 9) for s in rnd.sample("xyz", rnd.randint(0, 3))},
                "lines": lines,
                "ts": (START + timedelta(milliseconds=ts)).isoformat(timespec="milliseconds"),
            }
        )
    return orders


ORDERS = _orders()


def _ms(order: dict) -> int:
    return int((datetime.fromisoformat(order["ts"]) - START).total_seconds() * 1000)


@pytest.fixture(params=["1", "7", "1000", "-1"], ids=lambda size: f"batch{size}")
def engine(tmp_path, request) -> Engine:
    path = tmp_path / "orders.json"
    path.write_text("".join(json.dumps(o) + "\n" for o in ORDERS))
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"SET 'table.exec.mini-batch.size' = '{request.param}';"
        "CREATE TABLE orders (id INT, items ARRAY<STRING>, qty MAP<STRING, INT>, "
        "lines ARRAY<ROW<sku STRING, n INT>>, ts TIMESTAMP(3), "
        f"WATERMARK FOR ts AS ts - INTERVAL '{DELAY_MS // 1000}' SECOND) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json', "
        "'json.timestamp-format.standard' = 'ISO-8601');"
        "CREATE VIEW items AS SELECT o.id, o.ts, t.x FROM orders AS o CROSS JOIN UNNEST(o.items) AS t(x);"
    )
    return engine


def _final(engine: Engine, query: str) -> Counter:
    table: Counter = Counter()
    for kind, row in engine.collect(query):
        table[tuple(row)] += 1 if kind in ("+I", "+U") else -1
    return +table


def test_unnest_then_group_by(engine):
    want = Counter(x for o in ORDERS for x in o["items"] or [])
    got = _final(engine, "SELECT x, COUNT(*) AS c FROM items GROUP BY x")
    assert got == Counter({(x, n): 1 for x, n in want.items()})


def test_unnest_then_tumble_drops_late_orders(engine):
    want: Counter = Counter()
    watermark = -(2**63)
    for order in ORDERS:
        ts = _ms(order)
        start = ts - ts % WINDOW_MS
        if start + WINDOW_MS - 1 > watermark:
            for x in order["items"] or []:
                want[(START + timedelta(milliseconds=start), x)] += 1
        watermark = max(watermark, ts - DELAY_MS)
    got = _final(
        engine,
        "SELECT window_start, x, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE items, DESCRIPTOR(ts), "
        "INTERVAL '10' SECOND)) GROUP BY window_start, window_end, x",
    )
    assert got == Counter({(start, x, n): 1 for (start, x), n in want.items()})


def test_left_join_unnest_with_ordinality(engine):
    want: Counter = Counter()
    for order in ORDERS:
        items = order["items"] or []
        for pos, x in enumerate(items, start=1):
            want[(order["id"], x, pos)] += 1
        if not items:
            want[(order["id"], None, None)] += 1
    got = _final(
        engine,
        "SELECT id, x, pos FROM orders LEFT JOIN UNNEST(items) WITH ORDINALITY AS t(x, pos) ON TRUE",
    )
    assert got == want


def test_unnest_map_and_rows(engine):
    want_map = Counter((o["id"], k, v) for o in ORDERS for k, v in o["qty"].items())
    assert _final(engine, "SELECT id, k, v FROM orders CROSS JOIN UNNEST(qty) AS t(k, v)") == want_map
    want_rows = Counter((line["sku"], line["n"]) for o in ORDERS for line in o["lines"])
    assert _final(engine, "SELECT sku, n FROM orders, UNNEST(lines) AS l(sku, n)") == want_rows


def test_unnest_of_an_updating_input(engine):
    """Each change of the last order per id % 5 is unnested: the final table holds the elements
    of the last order (in event time) of each key."""
    last: dict[int, dict] = {}
    for order in ORDERS:
        key = order["id"] % 5
        if key not in last or _ms(order) >= _ms(last[key]):
            last[key] = order
    want = Counter((key, x) for key, o in last.items() for x in o["items"] or [])
    got = _final(
        engine,
        "SELECT d.k, t.x FROM (SELECT k, items FROM (SELECT id % 5 AS k, items, ROW_NUMBER() OVER "
        "(PARTITION BY id % 5 ORDER BY ts DESC) AS rn FROM orders) WHERE rn = 1) AS d "
        "CROSS JOIN UNNEST(d.items) AS t(x)",
    )
    assert got == want
