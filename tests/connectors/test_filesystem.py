"""The filesystem source: JSON Lines and CSV, a file or a directory, malformed records to the
dead letters with a reason."""

from __future__ import annotations

import io
from decimal import Decimal

import orjson

from clickstream.config import Settings
from clickstream.engine import Engine

DDL = """CREATE TABLE events (user_id BIGINT, behavior STRING, price DECIMAL(10, 2),
    ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = '{fmt}');
"""


def collect(path, fmt: str, query: str, tmp_path) -> tuple[list, Engine]:
    engine = Engine(Settings({"dead-letter.dir": str(tmp_path / "dlq")}), out=io.StringIO())
    engine.execute_script(DDL.format(path=path, fmt=fmt))
    return engine.collect(query), engine


def test_csv_directory_in_name_order(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "b.csv").write_text("3,buy,2.50,2024-01-01 10:00:02\n4,pv,,2024-01-01 10:00:03\n")
    (data / "a.csv").write_text("1,pv,1.00,2024-01-01 10:00:00\n2,cart,0.10,2024-01-01 10:00:01\n")
    rows, _ = collect(data, "csv", "SELECT user_id, behavior, price FROM events", tmp_path)
    assert [r for _, r in rows] == [
        (1, "pv", Decimal("1.00")),
        (2, "cart", Decimal("0.10")),
        (3, "buy", Decimal("2.50")),
        (4, "pv", None),
    ]


def test_malformed_records_go_to_dead_letters(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"user_id": "1", "behavior": "pv", "price": 1.5, "ts": "2024-01-01 10:00:00"}',
                '{"user_id": "x1", "behavior": "pv", "ts": "2024-01-01 10:00:00"}',
                '{"user_id": 2, "behavior": "buy"',
                "[1, 2]",
                '{"user_id": 3, "behavior": "buy", "ts": "2024-01-01T10:00:05"}',
            ]
        )
        + "\n"
    )
    rows, _ = collect(path, "json", "SELECT user_id, behavior FROM events", tmp_path)
    assert [r for _, r in rows] == [(1, "pv"), (3, "buy")]
    letters = [orjson.loads(line) for line in (tmp_path / "dlq" / "events.jsonl").read_bytes().splitlines()]
    assert len(letters) == 3
    assert "user_id: cannot read x1 as BIGINT" in letters[0]["reason"]
    assert letters[1]["reason"] == letters[2]["reason"] == "not a JSON object"
    assert letters[1]["record"] == '{"user_id": 2, "behavior": "buy"'


def test_csv_wrong_field_count_is_malformed(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("1,pv,1.00,2024-01-01 10:00:00\n1,pv\n")
    rows, engine = collect(path, "csv", "SELECT user_id FROM events", tmp_path)
    assert [r for _, r in rows] == [(1,)]
    assert "expected 4 fields" in (tmp_path / "dlq" / "events.jsonl").read_text()
