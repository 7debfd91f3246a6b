"""Seed 003 (streaming-runtimes clickstream): Clicks joined with the latest Users.

The simulator writes `users` as keyed upserts (a snapshot, then level changes) to the embedded
log. Declared with `PRIMARY KEY (user_id) NOT ENFORCED`, the log table is an upsert stream, so the
seed's join, as written, sees each user's current row only: its final result is every click
joined with its user's latest row, not with every version of it (about ten times as many rows).
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from clickstream.engine import Engine
from clickstream.simulate.cli import make_generator
from clickstream.simulate.outputs import LogOutput

RECORDS = 25_000

SEED_QUERY = """
SELECT Users.user_id, Users.name, Clicks.page, Clicks.action, Clicks.event_time
FROM Clicks INNER JOIN Users ON Clicks.user_id = Users.user_id
WHERE Users.level = 'PLATINUM'"""


def _ddl(root: Path, key: str) -> str:
    options = f"'connector' = 'log', 'path' = '{root}', 'scan.bounded.mode' = 'latest-offset'"
    return (
        f"CREATE TABLE Users (user_id STRING, name STRING, level STRING, updated_at TIMESTAMP_LTZ(3){key}) "
        f"WITH ({options}, 'topic' = 's3_users');"
        "CREATE TABLE Clicks (user_id STRING, page INT, action STRING, device STRING, agent STRING, "
        f"event_time TIMESTAMP_LTZ(3)) WITH ({options}, 'topic' = 's3_clicks');"
    )


@pytest.fixture(scope="module")
def seed(tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("seed003") / "log"
    records = list(make_generator("users-clicks").records(RECORDS))
    output = LogOutput("s3_", ["users", "clicks"], str(root), partitions=2)
    for record in records:
        output.write(record)
    output.close()
    return root, records


def _final(changes: list) -> Counter:
    final: Counter = Counter()
    for kind, row in changes:
        final[row] += 1 if kind in ("+I", "+U") else -1
    assert all(n >= 0 for n in final.values())
    return +final


def test_clicks_join_the_latest_user_row(seed) -> None:
    root, records = seed
    latest = {r.key: r.value for r in records if r.topic == "users"}
    clicks = [r.value for r in records if r.topic == "clicks"]
    engine = Engine(out=io.StringIO())
    engine.execute_script(_ddl(root, ", PRIMARY KEY (user_id) NOT ENFORCED"))
    joined = _final(engine.collect(SEED_QUERY.split("WHERE")[0]))
    assert sum(joined.values()) == sum(c["user_id"] in latest for c in clicks)
    assert 23_000 < sum(joined.values()) < 25_000
    vip = _final(engine.collect(SEED_QUERY))
    expected = Counter(
        (c["user_id"], latest[c["user_id"]]["name"], c["page"], c["action"])
        for c in clicks
        if c["user_id"] in latest and latest[c["user_id"]]["level"] == "PLATINUM"
    )
    assert Counter(row[:4] for row in vip.elements()) == expected


def test_without_a_key_every_version_joins(seed) -> None:
    root, records = seed
    versions = Counter(r.key for r in records if r.topic == "users")
    clicks = [r.value for r in records if r.topic == "clicks"]
    engine = Engine(out=io.StringIO())
    engine.execute_script(_ddl(root, ""))
    joined = engine.collect(SEED_QUERY.split("WHERE")[0])
    assert len(joined) == sum(versions[c["user_id"]] for c in clicks)
