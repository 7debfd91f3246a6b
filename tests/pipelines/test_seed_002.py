"""Seed 002's catalogue (`pipelines/seed_002.sql`: the ksqlDB clickstream demo in Flink SQL) run on
the embedded log and on a real Kafka broker, written to PostgreSQL, each result table equal to one
DuckDB batch pass over the same records.

The simulator writes the clicks keyed by user (per-user order, at most 3 s out of order: the 5 s
watermark delay drops nothing) and the codes and users tables first, keyed by their key. Both
inputs are bounded, so every window fires at the end, as in Flink. The temporal join gives a click
the user row valid at its time: the oracle's ASOF join.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from clickstream import pipelines
from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.simulate.base import Record
from clickstream.simulate.cli import make_generator
from clickstream.simulate.kafka_output import KafkaOutput
from clickstream.simulate.ksql_clickstream import CLICKS, CODES, USERS
from clickstream.simulate.outputs import LogOutput
from tests.conformance.harness import load_group
from tests.connectors.jdbc_db import Db
from tests.flink_oracle import run_flink_json
from tests.pipelines import seed_002_conformance

pytestmark = pytest.mark.integration

EVENTS = 6_000
DAYS = 0.02  # about 29 minutes of clicks: five-minute sessions open and close
TOPICS = [CLICKS, CODES, USERS]
BOUNDED = {"scan.bounded.mode": "latest-offset", "properties.group.id": "seed-002"}
_runs = itertools.count()

# Every result table, with the batch question it answers. `uc` is the clicks with the user valid
# at each click (the temporal join); window starts are epoch ms.
USER_CLICKSTREAM = """
CREATE TABLE uc AS SELECT c.*, u.username, u.city
FROM clicks c ASOF LEFT JOIN users u ON c.userid = u.user_id AND c._time >= u.registered_at"""


def _hop(size_ms: int, slide_ms: int) -> tuple[str, str]:
    """A row per HOP window that holds a click, and its start s (s <= _time < s + size)."""
    return f"CROSS JOIN range({size_ms // slide_ms}) r(i)", f"(_time // {slide_ms} - i) * {slide_ms}"


def _oracle_queries() -> dict[str, str]:
    hop5, start5 = _hop(60_000, 5_000)
    hop20, start20 = _hop(60_000, 20_000)
    return {
        "events_per_min": "SELECT userid, _time // 60000 * 60000, count(*) FROM clicks GROUP BY ALL",
        "pages_per_min": f"SELECT userid, {start5}, count(*) FROM clicks {hop5} "
        "WHERE request LIKE '%html%' GROUP BY ALL",
        "errors_per_min_alert": f"SELECT status, {start20}, count(*) FROM clicks {hop20} "
        "WHERE status > 400 GROUP BY ALL HAVING count(*) > 5",
        "errors_per_min": f"SELECT status, {start5}, count(*) FROM clicks {hop5} "
        "WHERE status > 400 GROUP BY ALL",
        "enriched_error_codes_count": """
            SELECT k.code, k.definition, s.t, s.n FROM (
                SELECT status, _time // 30000 * 30000 AS t, count(*) AS n FROM clicks
                GROUP BY ALL HAVING count(*) > 1) s
            JOIN codes k ON s.status = k.code""",
        "bytes_per_min": 'SELECT userid, _time // 60000 * 60000, sum("bytes") FROM uc GROUP BY ALL',
        "user_ip_activity": """
            SELECT username, ip, city, _time // 60000 * 60000, count(*) FROM uc
            WHERE username IS NOT NULL AND ip IS NOT NULL AND city IS NOT NULL
            GROUP BY ALL HAVING count(*) > 1""",
        # a click more than the gap after the previous one of its user starts a session
        "click_user_sessions": """
            SELECT username, min(_time), max(_time), count(*), sum("bytes") // 1024 FROM (
                SELECT *, sum(CASE WHEN _time - previous <= 300000 THEN 0 ELSE 1 END)
                    OVER (PARTITION BY username ORDER BY _time ROWS UNBOUNDED PRECEDING) AS session
                FROM (SELECT *, lag(_time) OVER (PARTITION BY username ORDER BY _time) AS previous
                      FROM uc WHERE username IS NOT NULL))
            GROUP BY username, session""",
        "city_activity": """
            SELECT city, _time // 60000 * 60000, count(*), count(DISTINCT userid),
                sum("bytes") // 1024 FROM uc WHERE city IS NOT NULL GROUP BY ALL""",
    }


# The columns read back from PostgreSQL, in the oracle's order.
COLUMNS = {
    "events_per_min": "userid, event_ts, events",
    "pages_per_min": "userid, event_ts, pages",
    "errors_per_min_alert": "status, event_ts, errors",
    "errors_per_min": "status, event_ts, errors",
    "enriched_error_codes_count": 'code, definition, event_ts, "count"',
    "bytes_per_min": 'userid, event_ts, "bytes"',
    "user_ip_activity": 'username, ip, city, event_ts, "count"',
    "click_user_sessions": "username, session_start, event_ts, events, kbytes",
    "city_activity": "city, event_ts, hits, users, kbytes",
}


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return list(make_generator("ksql-clickstream", seed=7, days=DAYS).records(EVENTS))


@pytest.fixture(scope="module")
def expected(records: list[Record]) -> dict[str, Counter[tuple]]:
    con = duckdb.connect()
    for name, topic in (("clicks", CLICKS), ("codes", CODES), ("users", USERS)):
        con.register(f"{name}_raw", pa.Table.from_pylist([r.value for r in records if r.topic == topic]))
    con.execute("CREATE TABLE clicks AS SELECT * FROM clicks_raw")
    # a table topic's last record per key is its row (each key has one here)
    con.execute(
        "CREATE TABLE codes AS SELECT * FROM codes_raw QUALIFY row_number() OVER (PARTITION BY code) = 1"
    )
    con.execute("CREATE TABLE users AS SELECT * FROM users_raw")
    con.execute(USER_CLICKSTREAM)
    return {table: Counter(con.execute(query).fetchall()) for table, query in _oracle_queries().items()}


def _write(records: list[Record], output: Any) -> None:
    for record in records:
        output.write(record)
    output.close()


def _on_log(records: list[Record], root: str) -> dict[str, pipelines.Place]:
    _write(records, LogOutput("s2_", TOPICS, root, partitions=2))
    return {"topics": pipelines.log_topics(root, "s2_", extra=BOUNDED)}


def _on_kafka(records: list[Record], broker: Any) -> dict[str, pipelines.Place]:
    prefix = f"s2-{os.getpid()}-{next(_runs)}-"
    for topic in TOPICS:  # several partitions: per-partition watermarks, keys spread over them
        broker.create_topic(prefix + topic, 3 if topic == CLICKS else 2)
    _write(records, KafkaOutput(f"kafka://{broker.bootstrap}/{prefix}", TOPICS))
    return {"topics": pipelines.kafka_topics(broker.bootstrap, prefix, extra=BOUNDED)}


def _epoch_ms(value: Any) -> Any:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


def _read(db: Db, table: str, columns: str) -> Counter[tuple]:
    """Every row (a key written twice would count twice), times as epoch ms."""
    return Counter(tuple(_epoch_ms(v) for v in row) for row in db.execute(f"SELECT {columns} FROM {table}"))


# the log twice: results must not depend on how the input is cut into micro-batches
RUNS = {"log": "100000", "log-batches-of-97": "97", "kafka": "100000"}


@pytest.fixture(scope="module", params=list(RUNS))
def written(
    request: pytest.FixtureRequest,
    records: list[Record],
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Counter[tuple]]]:
    """The catalogue run once on the bus, its result tables as read back from PostgreSQL."""
    if request.param.startswith("log"):
        places = _on_log(records, str(tmp_path_factory.mktemp("log")))
    else:
        places = _on_kafka(records, request.getfixturevalue("kafka_broker"))
    db = Db("postgres", postgres_url)
    schema = f"seed002_{uuid.uuid4().hex[:10]}"
    db.execute(f"CREATE SCHEMA {schema}")
    login = {"username": "postgres", "password": "postgres"}
    results = pipelines.jdbc_tables(postgres_url.split("?")[0], schema, extra=login)
    try:
        settings = Settings({"table.exec.mini-batch.size": RUNS[request.param]})
        Engine(settings, out=io.StringIO()).execute_script(
            pipelines.load("seed_002", results=results, **places), "seed_002.sql"
        )
        yield {table: _read(db, f"{schema}.{table}", columns) for table, columns in COLUMNS.items()}
    finally:
        db.execute(f"DROP SCHEMA {schema} CASCADE")
        db.close()


@pytest.mark.parametrize("table", list(COLUMNS))
def test_analysis_equals_batch(
    written: dict[str, Counter[tuple]], expected: dict[str, Counter[tuple]], table: str
) -> None:
    assert len(expected[table]) >= 10  # the question has answers on this input
    assert written[table] == expected[table]


def test_sessions_vary_in_length(
    written: dict[str, Counter[tuple]], expected: dict[str, Counter[tuple]]
) -> None:
    """The simulator's sessions, as the SESSION window finds them (and the batch oracle alike):
    from a single click to many dozens, seconds to many minutes long, several per user."""
    sessions = list(written["click_user_sessions"].elements())
    assert written["click_user_sessions"] == expected["click_user_sessions"]
    hits = sorted(row[3] for row in sessions)
    minutes = sorted((row[2] - row[1]) / 60_000 for row in sessions)
    kbytes = sorted(row[4] for row in sessions)
    median = len(sessions) // 2
    assert len(sessions) >= 200
    assert hits[0] == 1 and hits[median] <= 10 and hits[-1] >= 50
    assert hits[len(hits) * 9 // 10] >= 3 * hits[median]  # a heavy tail
    assert minutes[median] < 3 and minutes[-1] > 15
    assert kbytes[-1] > 20 * max(kbytes[median], 1)
    per_user = Counter(row[0] for row in sessions)
    assert sum(n >= 2 for n in per_user.values()) >= 20
    # a user's next session starts well after the 5-minute gap (6 minutes less the stamps'
    # disorder), not just past it: each session is found whole, whatever the rate
    breaks = [
        b[1] - a[2]
        for a, b in itertools.pairwise(sorted(sessions))
        if a[0] == b[0]  # the same user, sessions in order of start
    ]
    assert len(breaks) >= 20 and min(breaks) >= 6 * 60_000 - 3_000


def test_the_joins_matter(expected: dict[str, Counter[tuple]], records: list[Record]) -> None:
    """Unknown users' clicks count per user id but have no name or city; every status has a code."""
    users_seen = {row[0] for row in expected["events_per_min"]}
    named = {r.value["user_id"] for r in records if r.topic == USERS}
    assert users_seen - named and users_seen & named
    statuses = {row[0] for row in expected["enriched_error_codes_count"]}
    assert {200, 404} <= statuses


def test_flink_conformance_cases_are_the_catalogue() -> None:
    """tests/conformance/cases/seed002.json holds Flink's results for the file's queries as they are
    now (`python -m tests.pipelines.seed_002_conformance`, then record the group)."""
    recorded = {case.name: (case.query, case.views) for case in load_group(seed_002_conformance.GROUP)}
    current = {
        case["name"]: (case["query"], case.get("views", [])) for case in seed_002_conformance.group()["cases"]
    }
    assert recorded == current
    assert set(current) == set(COLUMNS)


@pytest.mark.flink
def test_flink_plans_every_statement(tmp_path: Path) -> None:
    """The file as Flink 2.3 reads it: sources as files (without the Kafka-only options), result
    tables as blackholes, each INSERT planned with EXPLAIN, sink types checked, nothing run."""
    files = {
        "clickstream": "clickstream",
        "clickstream_codes": "clickstream_codes",
        "clickstream_users": "web_users",
    }
    for table in seed_002_conformance.group()["tables"]:
        (tmp_path / f"{table['name']}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in table["rows"]))
    sources = pipelines.Place(
        lambda topic: {"connector": "filesystem", "path": str(tmp_path / f"{files[topic]}.jsonl")}
    )
    text = pipelines.load(
        "seed_002", topics=sources, results=pipelines.Place(lambda _: {"connector": "blackhole"})
    )
    text = (
        text.replace("'scan.startup.mode' = 'earliest-offset',", "")
        .replace("'key.format' = 'raw',", "")
        .replace("'value.format'", "'format'")
    )
    statements = seed_002_conformance.statements(text)
    run_flink_json([f"EXPLAIN {s}" if s.startswith("INSERT") else s for s in statements], {})
