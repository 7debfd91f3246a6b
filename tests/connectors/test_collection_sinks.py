"""ARRAY, MAP and ROW columns written by the print, filesystem (json) and jdbc sinks.

The expected print lines and JSON records are what PyFlink 2.3 wrote for the same rows and
statements (print connector; filesystem connector, json format). Flink's jdbc connector maps no
MAP or ROW column (and ARRAY for PostgreSQL only): such a table is refused, naming the column.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pytest

from clickstream.config import Settings
from clickstream.connectors.jdbc import JdbcLookupSource
from clickstream.engine import Engine
from clickstream.errors import ClickstreamError
from tests.connectors.jdbc_db import Db

ROWS = [
    {"id": 1, "a": [10, 20, 30], "m": {"k": 1}, "r": {"x": 1, "y": "b"}, "sa": ["p", None],
     "nested": [{"x": 5, "y": "n"}]},
    {"id": 2, "a": [], "m": {}, "r": {"x": None, "y": None}, "sa": [], "nested": [None]},
    {"id": 3, "a": None, "m": None, "r": None, "sa": None, "nested": None},
]  # fmt: skip
COLUMNS = (
    "id INT, a ARRAY<INT>, m MAP<STRING, INT>, r ROW<x INT, y STRING>, sa ARRAY<STRING>, "
    "nested ARRAY<ROW<x INT, y STRING>>"
)


def _engine(tmp_path) -> Engine:
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    engine = Engine(out=io.StringIO())
    engine.execute_script(
        f"CREATE TABLE src ({COLUMNS}) WITH ('connector' = 'filesystem', 'path' = '{source}', "
        "'format' = 'json');"
    )
    return engine


def test_print_writes_flink_text(tmp_path, capsys):
    engine = _engine(tmp_path)
    engine.execute_script(
        f"CREATE TABLE out_print ({COLUMNS}) WITH ('connector' = 'print');"
        "INSERT INTO out_print SELECT * FROM src;"
    )
    assert capsys.readouterr().out.splitlines() == [
        "+I[1, [10, 20, 30], {k=1}, +I[1, b], [p, null], [+I[5, n]]]",
        "+I[2, [], {}, +I[null, null], [], [null]]",
        "+I[3, null, null, null, null, null]",
    ]


def test_filesystem_json_writes_maps_as_objects(tmp_path):
    engine = _engine(tmp_path)
    target = tmp_path / "out"
    engine.execute_script(
        f"CREATE TABLE out_fs ({COLUMNS}) WITH ('connector' = 'filesystem', 'path' = '{target}', "
        "'format' = 'json');INSERT INTO out_fs SELECT * FROM src;"
    )
    written = [json.loads(line) for f in sorted(target.iterdir()) for line in f.read_text().splitlines()]
    assert written == ROWS


def test_jdbc_refuses_collection_columns(tmp_path):
    engine = _engine(tmp_path)
    engine.execute_script(
        f"CREATE TABLE out_db ({COLUMNS}) WITH ('connector' = 'jdbc', "
        f"'url' = 'jdbc:sqlite:{tmp_path / 'db.sqlite'}', 'table-name' = 'out_db');"
    )
    with pytest.raises(ClickstreamError, match="column 'a' of type ARRAY<INT> is not supported"):
        engine.execute_script("INSERT INTO out_db SELECT * FROM src;")


def test_log_round_trip(tmp_path):
    """The log sink writes a MAP as a JSON object, which its source reads back as a MAP."""
    engine = _engine(tmp_path)
    log = f"'connector' = 'log', 'path' = '{tmp_path / 'log'}', 'topic' = 'nested'"
    engine.execute_script(
        f"CREATE TABLE out_log ({COLUMNS}) WITH ({log});INSERT INTO out_log SELECT * FROM src;"
        f"CREATE TABLE in_log ({COLUMNS}) WITH ({log}, 'scan.bounded.mode' = 'latest-offset');"
    )
    got = [row for _, row in engine.collect("SELECT * FROM in_log")]
    want = [row for _, row in engine.collect("SELECT * FROM src")]
    assert got == want


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("'connector' = 'datagen', 'number-of-rows' = '3'", "datagen does not generate column 'a'"),
        (
            "'connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv'",
            "not supported by the csv format",
        ),
    ],
)
def test_sources_without_collections_refuse_them(tmp_path, options, message):
    path = tmp_path / "in.csv"
    path.write_text("1,2\n")
    engine = Engine(out=io.StringIO())
    engine.execute_script(f"CREATE TABLE t (id INT, a ARRAY<INT>) WITH ({options.format(path=path)});")
    with pytest.raises(ClickstreamError, match=message):
        engine.collect("SELECT * FROM t")


@pytest.mark.integration
def test_postgres_takes_arrays(tmp_path, postgres_url):
    """As Flink's jdbc connector: ARRAY columns are PostgreSQL arrays, written and looked up."""
    db = Db("postgres", postgres_url)
    try:
        table = db.new_table()
        engine = _engine(tmp_path)
        jdbc = f"'connector' = 'jdbc', 'url' = '{postgres_url}', 'table-name' = '{table}'"
        engine.execute_script(
            f"CREATE TABLE out_pg (id INT, a ARRAY<INT>, sa ARRAY<STRING>) WITH ({jdbc});"
            "INSERT INTO out_pg SELECT id, a, sa FROM src;"
        )
        assert sorted(db.execute(f"SELECT id, a, sa FROM {table}")) == [
            (1, [10, 20, 30], ["p", None]),
            (2, [], []),
            (3, None, None),
        ]
        assert db.column_types(table)["a"].upper() in ("ARRAY", "INTEGER[]", "_INT4")
        source = JdbcLookupSource(engine.catalog.table("out_pg"), Settings())
        found = source.lookup(["id"], pa.table({"id": pa.array([1, 2], pa.int32())}))
        assert sorted(found.select(["id", "a", "sa"]).to_pylist(), key=lambda r: r["id"]) == [
            {"id": 1, "a": [10, 20, 30], "sa": ["p", None]},
            {"id": 2, "a": [], "sa": []},
        ]
        source.close()
    finally:
        db.close()
