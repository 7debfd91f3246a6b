"""IN / NOT IN / EXISTS / NOT EXISTS subqueries (semi and anti joins) and INTERSECT / EXCEPT [ALL]
against a batch oracle: DuckDB runs the same SQL once over the whole input (the orders, and the
final state of a changelog table whose rows come and go), at several mini-batch sizes. Keys are
NULL on either side at times, orders arrive late and out of order."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import duckdb
import orjson
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests.flink_oracle import materialize

BASE = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp() * 1000)
CUSTOMERS = ["ann", "bob", "cy", "dee", "eve", "fay", "gus", None]

DDL = """
CREATE TABLE orders (id INT, cust STRING, amount INT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{folder}/orders.jsonl', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
CREATE TABLE vip (cust STRING, tier INT)
 WITH ('connector' = 'filesystem', 'path' = '{folder}/vip.jsonl', 'format' = 'json');
CREATE TABLE vip_cdc (cust STRING, tier INT, PRIMARY KEY (cust) NOT ENFORCED)
 WITH ('connector' = 'filesystem', 'path' = '{folder}/vip_cdc.jsonl', 'format' = 'debezium-json');
"""

QUERIES = {
    "in": "SELECT id, cust, amount FROM orders WHERE cust IN (SELECT cust FROM vip)",
    "not_in": "SELECT id, cust FROM orders WHERE cust NOT IN (SELECT cust FROM vip WHERE tier > 2)",
    "not_in_changelog": "SELECT id, amount FROM orders WHERE amount NOT IN (SELECT tier * 10 FROM vip_cdc)",
    "exists": (
        "SELECT id FROM orders o WHERE amount > 20 AND "
        "EXISTS (SELECT 1 FROM vip_cdc v WHERE v.cust = o.cust AND v.tier * 10 < o.amount)"
    ),
    "not_exists": (
        "SELECT id, cust FROM orders o WHERE NOT EXISTS (SELECT 1 FROM vip_cdc v WHERE v.cust = o.cust)"
    ),
    "in_then_group_by": (
        "SELECT cust, COUNT(*) AS n, SUM(amount) AS total FROM orders "
        "WHERE cust IN (SELECT cust FROM vip_cdc WHERE tier >= 2) GROUP BY cust"
    ),
    "scalar": "SELECT id FROM orders WHERE amount > (SELECT MAX(tier) FROM vip_cdc) * 5",
    "marks": (
        "SELECT id, cust IN (SELECT cust FROM vip_cdc) AS known, "
        "EXISTS (SELECT 1 FROM vip v WHERE v.cust = o.cust AND v.tier < 3) AS low FROM orders o"
    ),
    "not_in_under_or": (
        "SELECT id FROM orders WHERE amount < 20 OR amount NOT IN (SELECT tier * 10 FROM vip_cdc)"
    ),
    "correlated_scalar": (
        "SELECT id FROM orders o WHERE amount > (SELECT MAX(tier) * 10 FROM vip_cdc v WHERE v.cust = o.cust)"
    ),
    "intersect_all": "SELECT cust FROM orders INTERSECT ALL SELECT cust FROM vip",
    "except_all": "SELECT cust FROM orders EXCEPT ALL SELECT cust FROM vip_cdc",
    "except": "SELECT cust, amount FROM orders EXCEPT SELECT cust, tier * 10 FROM vip",
}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6]


def _write(path, rows) -> None:
    with open(path, "wb") as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = random.Random(11)
    folder = tmp_path_factory.mktemp("subqueries")
    orders = []
    for i in range(240):
        late = rng.random() < 0.1  # some arrive late, out of order
        ts = BASE + i * 700 - (rng.randint(3_000, 20_000) if late else rng.randint(0, 900))
        amount = rng.choice([None, *range(0, 90, 10)])
        orders.append({"id": i % 200, "cust": rng.choice(CUSTOMERS), "amount": amount, "ts": _iso(ts)})
    vip = [{"cust": rng.choice(CUSTOMERS), "tier": rng.randint(1, 5)} for _ in range(6)]
    changes, current = [], {}
    for _ in range(60):  # inserts, updates and deletes, by key
        cust = rng.choice([c for c in CUSTOMERS if c is not None])
        before = current.get(cust)
        after = (
            None if before is not None and rng.random() < 0.4 else {"cust": cust, "tier": rng.randint(1, 8)}
        )
        op = "d" if after is None else ("u" if before is not None else "c")
        changes.append({"before": before, "after": after, "op": op})
        if after is None:
            del current[cust]
        else:
            current[cust] = after
    _write(folder / "orders.jsonl", orders)
    _write(folder / "vip.jsonl", vip)
    _write(folder / "vip_cdc.jsonl", changes)
    return folder, orders, vip, list(current.values())


def _oracle(data, query: str) -> Counter:
    """The query answered once by DuckDB over the whole input and the changelog's final rows."""
    _, orders, vip, vip_cdc = data
    con = duckdb.connect()
    con.execute("CREATE TABLE orders (id INT, cust VARCHAR, amount INT, ts TIMESTAMP)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [list(o.values()) for o in orders])
    for name, rows in (("vip", vip), ("vip_cdc", vip_cdc)):
        con.execute(f"CREATE TABLE {name} (cust VARCHAR, tier INT)")
        con.executemany(f"INSERT INTO {name} VALUES (?, ?)", [[r["cust"], r["tier"]] for r in rows])
    return Counter(tuple(row) for row in con.execute(query).fetchall())


def _run(data, query: str, batch: str) -> Counter:
    folder = data[0]
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(DDL.format(folder=folder))
    return materialize(engine.collect(query))


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_same_as_batch_oracle(data, name):
    expected = _oracle(data, QUERIES[name])
    assert expected, "the oracle's result is empty: the data does not exercise the query"
    for batch in ("-1", "7"):
        assert _run(data, QUERIES[name], batch) == expected, f"mini-batch size {batch}"


@pytest.mark.parametrize("name", ["not_in_changelog", "exists", "except_all", "marks"])
def test_batch_size_one(data, name):
    assert _run(data, QUERIES[name], "1") == _oracle(data, QUERIES[name])


def test_anti_join_retracts_when_a_match_arrives(data):
    folder = data[0]
    engine = Engine(Settings({"table.exec.mini-batch.size": "5"}))
    engine.execute_script(DDL.format(folder=folder))
    changes = engine.collect(QUERIES["not_exists"])
    assert {kind for kind, _ in changes} == {"+I", "-D"}


def test_state_ttl_bounds_the_state(data):
    folder = data[0]
    engine = Engine(Settings({"table.exec.mini-batch.size": "20", "table.exec.state.ttl": "1 ms"}))
    engine.execute_script(DDL.format(folder=folder))
    sizes: list[int] = []
    engine.on_batch = lambda job: sizes.append(job.metrics()["collect"]["state_rows"])
    engine.collect(QUERIES["in"])
    # rows expire right after their batch, as Flink's TTL expires them: the state stays small
    assert sizes and max(sizes) <= 40
