"""Fixtures for engine tests: generated Tianchi-style data and a way to run a script."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from clickstream.config import Settings
from clickstream.engine import Engine
from clickstream.simulate.tianchi import TianchiConfig, category_rows, write_jsonl
from tests.flink_oracle import materialize

SOURCE_DDL = """
CREATE TABLE user_behavior (
    user_id BIGINT,
    item_id BIGINT,
    category_id BIGINT,
    behavior STRING,
    ts TIMESTAMP_LTZ(3),
    proctime AS PROCTIME(),
    WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH (
    'connector' = 'filesystem',
    'path' = '{path}',
    'format' = 'json',
    'json.timestamp-format.standard' = 'ISO-8601'
);
"""


@pytest.fixture(scope="session")
def tianchi_config() -> TianchiConfig:
    return TianchiConfig(events=30_000, users=3_000, days=1.5, late_ratio=0.01, malformed_ratio=0.001)


@pytest.fixture(scope="session")
def events_file(tmp_path_factory, tianchi_config) -> Path:
    path = tmp_path_factory.mktemp("data") / "user_behavior.jsonl"
    write_jsonl(str(path), tianchi_config)
    return path


@pytest.fixture(scope="session")
def category_db(tmp_path_factory, tianchi_config) -> Path:
    path = tmp_path_factory.mktemp("dim") / "dim.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE category (sub_category_id BIGINT, parent_category_name TEXT)")
        conn.executemany("INSERT INTO category VALUES (?, ?)", category_rows(tianchi_config))
    return path


def run_script(script: str, **settings: str) -> Engine:
    engine = Engine(Settings(dict(settings)))
    engine.execute_script(script)
    return engine


def sqlite_rows(db: Path, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()


def sqlite_sink(db: Path, table: str) -> str:
    return f"'connector' = 'jdbc', 'url' = 'jdbc:sqlite:{db}', 'table-name' = '{table}'"


def final_rows(engine: Engine, query: str, text: bool = False) -> Counter:
    """The table a query's changelog ends in; with `text`, each value as `str` (as the rows
    recorded from PyFlink are written in these tests)."""
    rows = materialize(engine.collect(query))
    if not text:
        return rows
    texts: Counter = Counter()
    for row, count in rows.items():
        texts[tuple(str(v) for v in row)] += count
    return texts
