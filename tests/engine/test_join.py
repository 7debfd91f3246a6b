"""Regular joins of changelog streams (seed 003: VIP actions, Clicks JOIN Users where the user's
level can change): the final result equals the join of all clicks with the latest users."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.errors import UnsupportedFeatureError
from tests.flink_oracle import materialize, run_flink

BASE = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp() * 1000)

DDL = """
CREATE TABLE users (user_id STRING, name STRING, level STRING, updated_at TIMESTAMP_LTZ(3),
    WATERMARK FOR updated_at AS updated_at - INTERVAL '5' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{users}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
CREATE TABLE clicks (user_id STRING, page INT, action STRING, event_time TIMESTAMP_LTZ(3),
    WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND)
 WITH ('connector' = 'filesystem', 'path' = '{clicks}', 'format' = 'json',
       'json.timestamp-format.standard' = 'ISO-8601');
CREATE VIEW current_users AS
SELECT user_id, name, level FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY updated_at DESC) AS rn FROM users)
WHERE rn = 1;
"""

VIP = """
SELECT current_users.user_id, current_users.name, clicks.page, clicks.action
FROM clicks INNER JOIN current_users ON clicks.user_id = current_users.user_id
WHERE current_users.level = 'PLATINUM'"""

LEFT = """
SELECT c.user_id, c.page, u.level
FROM clicks AS c LEFT JOIN current_users AS u ON c.user_id = u.user_id"""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    rng = random.Random(3)
    folder = tmp_path_factory.mktemp("join")
    ids = [f"{rng.randint(100, 999)}-{i:02d}" for i in range(40)]
    levels = ["SILVER", "GOLD", "PLATINUM"]
    users = [
        {
            "user_id": u,
            "name": f"user {u}",
            "level": rng.choice(levels),
            "updated_at": BASE + rng.randint(0, 3_600_000),
        }
        for u in ids
        for _ in range(3)
    ]
    users.sort(key=lambda r: r["updated_at"])
    clicks = [
        {
            "user_id": rng.choice(ids + ["000-99"]),
            "page": rng.randint(1, 500),
            "action": rng.choice(["selection", "checkout", "products"]),
            "event_time": BASE + i * 1_200,
        }
        for i in range(3_000)
    ]
    for name, rows, time_key in (("users", users, "updated_at"), ("clicks", clicks, "event_time")):
        with open(folder / f"{name}.jsonl", "wb") as out:
            for row in rows:
                out.write(orjson.dumps({**row, time_key: _iso(row[time_key])}) + b"\n")
    latest = {}
    for u in users:
        latest[u["user_id"]] = u  # sorted by time: the last one wins
    return folder, clicks, latest


def _engine(folder, batch: str) -> Engine:
    engine = Engine(Settings({"table.exec.mini-batch.size": batch}))
    engine.execute_script(DDL.format(users=folder / "users.jsonl", clicks=folder / "clicks.jsonl"))
    return engine


def test_vip_actions(streams):
    folder, clicks, latest = streams
    changes = _engine(folder, "20").collect(VIP)  # small batches: users change between clicks
    assert {kind for kind, _ in changes} >= {"+I", "-D"}  # level changes retract earlier rows
    expected = Counter(
        (c["user_id"], latest[c["user_id"]]["name"], c["page"], c["action"])
        for c in clicks
        if c["user_id"] in latest and latest[c["user_id"]]["level"] == "PLATINUM"
    )
    assert materialize(changes) == expected


def test_left_join_pads_then_fills(streams):
    folder, clicks, latest = streams
    got = materialize(_engine(folder, "333").collect(LEFT))
    expected = Counter(
        (c["user_id"], c["page"], latest[c["user_id"]]["level"] if c["user_id"] in latest else None)
        for c in clicks
    )
    assert got == expected


def test_batch_sizes_agree(streams):
    folder, _, _ = streams
    assert materialize(_engine(folder, "41").collect(VIP)) == materialize(_engine(folder, "-1").collect(VIP))


def test_join_without_equality_is_refused(streams):
    folder, _, _ = streams
    with pytest.raises(UnsupportedFeatureError, match="equality"):
        _engine(folder, "100").collect("SELECT * FROM clicks c JOIN users u ON c.page > 3")


@pytest.mark.flink
@pytest.mark.integration
def test_same_as_flink(streams):
    folder, _, _ = streams
    ddl = DDL.format(users=folder / "users.jsonl", clicks=folder / "clicks.jsonl")
    statements = [s.strip() for s in ddl.split(";") if s.strip()]
    flink = run_flink(statements, {"vip": VIP, "left": LEFT})
    engine = _engine(folder, "500")
    assert materialize(engine.collect(VIP)) == materialize(flink["vip"])
    assert materialize(engine.collect(LEFT)) == materialize(flink["left"])


def test_state_ttl_bounds_the_state(streams):
    folder, _, _ = streams
    engine = _engine(folder, "50")
    engine.execute_script("SET 'table.exec.state.ttl' = '1 ms';")
    sizes: list[int] = []
    engine.on_batch = lambda job: sizes.append(job.metrics()["collect"]["state_rows"])
    with_ttl = materialize(engine.collect(VIP))
    without = materialize(_engine(folder, "50").collect(VIP))
    # rows expire right after their batch: the state stays at about one batch, and matches
    # between a click and a user from different batches are lost, as Flink's TTL loses them
    assert max(sizes) <= 100
    assert sum(with_ttl.values()) < sum(without.values())
