"""Event-time temporal join (seed 004's slowly changing user table): each checkout with the user
row as it was when the checkout happened."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from tests.flink_oracle import materialize, run_flink

BASE = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)

DDL = """
CREATE TABLE users (user_id BIGINT, level STRING, ts TIMESTAMP_LTZ(3),
    PRIMARY KEY (user_id) NOT ENFORCED, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{users}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
CREATE TABLE checkouts (checkout_id BIGINT, user_id BIGINT, amount DOUBLE, ts TIMESTAMP_LTZ(3),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{checkouts}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
"""

QUERY = """
SELECT c.checkout_id, c.user_id, u.level, c.amount
FROM checkouts AS c {join} JOIN users FOR SYSTEM_TIME AS OF c.ts AS u
ON c.user_id = u.user_id"""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    rng = random.Random(8)
    folder = tmp_path_factory.mktemp("tj")
    levels = ["SILVER", "GOLD", "PLATINUM"]
    # users change level now and then; versions arrive roughly in time order
    users = [
        {"user_id": u, "level": rng.choice(levels), "ts": BASE + rng.randint(0, 600_000)}
        for u in range(1, 31)
        for _ in range(4)
    ]
    users.sort(key=lambda r: r["ts"])
    checkouts = [
        {
            "checkout_id": i,
            "user_id": rng.randint(1, 35),
            "amount": rng.randint(100, 9_999) / 100,
            "ts": BASE + 30_000 + i * 1_500 - rng.randint(0, 2_000),
        }
        for i in range(400)
    ]
    for name, rows in (("users", users), ("checkouts", checkouts)):
        with open(folder / f"{name}.jsonl", "wb") as out:
            for row in rows:
                out.write(orjson.dumps({**row, "ts": _iso(row["ts"])}) + b"\n")
    return folder, users, checkouts


def _engine(folder, batch: str) -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(DDL.format(users=folder / "users.jsonl", checkouts=folder / "checkouts.jsonl"))
    return engine


@pytest.mark.parametrize("join", ["", "LEFT"])
def test_version_at_checkout_time(streams, join):
    folder, users, checkouts = streams
    got = materialize(_engine(folder, "97").collect(QUERY.format(join=join)))
    expected = Counter()
    for c in checkouts:
        versions = [u for u in users if u["user_id"] == c["user_id"] and u["ts"] <= c["ts"]]
        if versions:
            level = max(versions, key=lambda u: u["ts"])["level"]
        elif join == "LEFT":
            level = None
        else:
            continue
        expected[(c["checkout_id"], c["user_id"], level, c["amount"])] += 1
    assert got == expected


def test_batch_sizes_agree(streams):
    folder, _, _ = streams
    query = QUERY.format(join="LEFT")
    assert materialize(_engine(folder, "13").collect(query)) == materialize(
        _engine(folder, "-1").collect(query)
    )


@pytest.mark.flink
@pytest.mark.integration
def test_same_as_flink(streams):
    folder, _, _ = streams
    ddl = DDL.format(users=folder / "users.jsonl", checkouts=folder / "checkouts.jsonl")
    statements = [s.strip() for s in ddl.split(";") if s.strip()]
    queries = {"inner": QUERY.format(join=""), "left": QUERY.format(join="LEFT")}
    flink = run_flink(statements, queries)
    engine = _engine(folder, "50")
    for name, query in queries.items():
        assert materialize(engine.collect(query)) == materialize(flink[name]), name
