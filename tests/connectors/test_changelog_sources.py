"""Changelog sources end to end: the `log` connector's upsert tables (a PRIMARY KEY) and the CDC
formats (debezium-json, canal-json, maxwell-json), into real sinks, and their malformed records.

Expected rows follow Flink's semantics: an upsert replaces the row of its key and a tombstone
deletes it (upsert-kafka with ChangelogNormalize); a CDC event's -U/+U/-D apply to the row it
names. The conformance group `changelog_sources` compares the formats with PyFlink itself.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from clickstream.engine import Engine
from clickstream.errors import UnsupportedFeatureError
from clickstream.log import TopicLog
from tests.connectors.jdbc_db import Db

USERS = [
    {"user_id": "u1", "level": "GOLD"},
    {"user_id": "u2", "level": "SILVER"},
    {"user_id": "u1", "level": "PLATINUM"},  # an upsert: replaces u1
    {"user_id": "u3", "level": "GOLD"},
    {"user_id": "u2", "__deleted": True},  # a tombstone: deletes u2
    {"user_id": "u9", "__deleted": True},  # a tombstone of a key never seen: nothing
]


def _write_topic(root: Path, topic: str, records: list[dict], partitions: int = 2) -> None:
    log = TopicLog(root)
    log.create_topic(topic, partitions)
    for record in records:
        key = json.dumps({"user_id": record.get("user_id")}).encode()
        log.append(topic, [json.dumps(record).encode()], [key])
    log.close()


def _users_ddl(root: Path) -> str:
    return (
        "CREATE TABLE users (user_id STRING, level STRING, PRIMARY KEY (user_id) NOT ENFORCED) "
        f"WITH ('connector' = 'log', 'path' = '{root}', 'topic' = 'users', "
        "'scan.bounded.mode' = 'latest-offset');"
    )


def _jdbc(db: Db, name: str, columns: str) -> str:
    options = f"'connector' = 'jdbc', 'url' = '{db.url}', 'table-name' = '{name}'"
    return f"CREATE TABLE {name} ({columns}) WITH ({options});"


@pytest.mark.parametrize("batch", ["1", "1000"])
def test_log_upsert_source_into_jdbc(db: Db, tmp_path: Path, batch: str) -> None:
    _write_topic(tmp_path / "log", "users", USERS)
    clicks = tmp_path / "clicks.json"
    clicks.write_text(
        "".join(json.dumps({"user_id": u, "page": p}) + "\n" for u, p in [("u1", 1), ("u2", 2), ("u3", 3)])
    )
    latest, vip = db.new_table(), db.new_table()
    Engine(out=io.StringIO()).execute_script(
        f"SET 'table.exec.mini-batch.size' = '{batch}';"
        + _users_ddl(tmp_path / "log")
        + "CREATE TABLE clicks (user_id STRING, page INT) WITH ('connector' = 'filesystem', "
        f"'path' = '{clicks}', 'format' = 'json');"
        + _jdbc(db, latest, "user_id VARCHAR(10), level VARCHAR(10), PRIMARY KEY (user_id) NOT ENFORCED")
        + _jdbc(
            db,
            vip,
            "user_id VARCHAR(10), page INT, level VARCHAR(10), PRIMARY KEY (user_id, page) NOT ENFORCED",
        )
        + f"INSERT INTO {latest} SELECT user_id, level FROM users;"
        + f"INSERT INTO {vip} SELECT c.user_id, c.page, u.level FROM clicks c "
        "JOIN users u ON c.user_id = u.user_id;"
    )
    assert db.rows(latest) == [("u1", "PLATINUM"), ("u3", "GOLD")]
    # each click joins the user's current row only: u2 is gone, u1 is PLATINUM
    assert db.rows(vip) == [("u1", 1, "PLATINUM"), ("u3", 3, "GOLD")]


def test_log_sink_writes_tombstones_that_the_source_reads_back(tmp_path: Path) -> None:
    _write_topic(tmp_path / "log", "users", USERS)
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        _users_ddl(tmp_path / "log")
        + "CREATE TABLE copy (user_id STRING, level STRING, PRIMARY KEY (user_id) NOT ENFORCED) "
        f"WITH ('connector' = 'log', 'path' = '{tmp_path / 'log'}', 'topic' = 'copy', "
        "'scan.bounded.mode' = 'latest-offset');"
        "INSERT INTO copy SELECT * FROM users;"
    )
    changes = engine.collect("SELECT * FROM copy")
    final: dict = {}
    for kind, row in changes:
        if kind in ("+I", "+U"):
            final[row[0]] = row
        else:
            final.pop(row[0], None)
    assert sorted(final.values()) == [("u1", "PLATINUM"), ("u3", "GOLD")]


DEBEZIUM = [
    '{"before": null, "after": {"id": 1, "stock": 5}, "op": "c"}',
    "not json at all",
    '{"before": {"id": 1, "stock": 5}, "after": {"id": 1, "stock": 4}, "op": "u"}',
    '{"before": null, "after": {"id": 2, "stock": 7}, "op": "u"}',  # update without before
    '{"before": null, "after": {"id": 3, "stock": "many"}, "op": "c"}',  # stock not an INT
    '{"op": "t"}',
]


def test_malformed_cdc_records_go_to_dead_letters(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text("\n".join(DEBEZIUM) + "\n")
    dead = tmp_path / "dead.jsonl"
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"CREATE TABLE inventory (id INT, stock INT) WITH ('connector' = 'filesystem', 'path' = '{path}', "
        f"'format' = 'debezium-json', 'dead-letter.path' = '{dead}');"
    )
    assert engine.collect("SELECT * FROM inventory") == [("+I", (1, 5)), ("-U", (1, 5)), ("+U", (1, 4))]
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [(r["record"], r["reason"]) for r in letters] == [
        ("not json at all", "not a JSON object"),
        (
            DEBEZIUM[3],
            'the "before" field of an update or delete is null '
            "(a Postgres table needs REPLICA IDENTITY FULL)",
        ),
        (DEBEZIUM[4], "stock: cannot read many as INT"),
        (DEBEZIUM[5], 'unknown "op" value "t"'),
    ]


def test_malformed_upsert_records_go_to_dead_letters(tmp_path: Path) -> None:
    _write_topic(tmp_path / "log", "users", [{"level": "GOLD"}, {"user_id": "u1", "level": "GOLD"}], 1)
    dead = tmp_path / "dead.jsonl"
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        _users_ddl(tmp_path / "log").replace("'scan.bounded", f"'dead-letter.path' = '{dead}', 'scan.bounded")
    )
    assert engine.collect("SELECT * FROM users") == [("+I", ("u1", "GOLD"))]
    assert json.loads(dead.read_text())["reason"] == 'the key field "user_id" is missing or null'


def test_a_window_over_a_changelog_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(DEBEZIUM[0] + "\n")
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        "CREATE TABLE inventory (id INT, stock INT, ts AS TIMESTAMP '2020-01-01 00:00:00', "
        "WATERMARK FOR ts AS ts) "
        f"WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'debezium-json');"
    )
    with pytest.raises(UnsupportedFeatureError, match="updating input"):
        engine.collect(
            "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE inventory, DESCRIPTOR(ts), "
            "INTERVAL '1' MINUTE)) GROUP BY window_start, window_end"
        )


RATES = [  # versions of a currency's rate, in time order; a tombstone ends EUR at 00:00:08
    {"currency": "EUR", "rate": 114, "ts": "2024-01-01 00:00:00"},
    {"currency": "GBP", "rate": 130, "ts": "2024-01-01 00:00:00"},
    {"currency": "EUR", "rate": 116, "ts": "2024-01-01 00:00:04"},
    {"currency": "EUR", "ts": "2024-01-01 00:00:08", "__deleted": True},
    {"currency": "EUR", "rate": 119, "ts": "2024-01-01 00:00:12"},
    {"currency": "GBP", "rate": 128, "ts": "2024-01-01 00:00:20"},
]


@pytest.mark.parametrize("batch", ["1", "1000"])
def test_temporal_join_against_a_log_upsert_table(tmp_path: Path, batch: str) -> None:
    log = TopicLog(tmp_path / "log")
    log.create_topic("rates", 1)
    log.append("rates", [json.dumps(r).encode() for r in RATES])
    log.close()
    payments = tmp_path / "payments.json"
    times = [("EUR", 2), ("EUR", 5), ("EUR", 9), ("GBP", 9), ("EUR", 13), ("USD", 14)]
    payments.write_text(
        "".join(
            json.dumps({"id": i, "currency": c, "ts": f"2024-01-01 00:00:{s:02d}"}) + "\n"
            for i, (c, s) in enumerate(times)
        )
    )
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"SET 'table.exec.mini-batch.size' = '{batch}';"
        "CREATE TABLE rates (currency STRING, rate INT, ts TIMESTAMP(3), PRIMARY KEY (currency) NOT "
        f"ENFORCED, WATERMARK FOR ts AS ts) WITH ('connector' = 'log', 'path' = '{tmp_path / 'log'}', "
        "'topic' = 'rates', 'scan.bounded.mode' = 'latest-offset');"
        "CREATE TABLE payments (id INT, currency STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) "
        f"WITH ('connector' = 'filesystem', 'path' = '{payments}', 'format' = 'json');"
    )
    rows = engine.collect(
        "SELECT p.id, r.rate FROM payments p LEFT JOIN rates FOR SYSTEM_TIME AS OF p.ts AS r "
        "ON p.currency = r.currency"
    )
    # EUR at 9 s falls in the deletion's validity: no rate
    assert sorted(row for _, row in rows) == [(0, 114), (1, 116), (2, None), (3, 130), (4, 119), (5, None)]
