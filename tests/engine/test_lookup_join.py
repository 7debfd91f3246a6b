"""The lookup join (`FOR SYSTEM_TIME AS OF proctime`) against SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from clickstream.connectors.jdbc_dialects import dialect_for
from clickstream.schema import TableDef
from clickstream.simulate.tianchi import category_rows
from tests import oracle
from tests.engine.conftest import SOURCE_DDL, run_script, sqlite_rows, sqlite_sink


def _database(url: str, table: str):
    from clickstream.connectors.jdbc import JdbcDatabase

    return JdbcDatabase(TableDef(name=table, physical=[], options={"url": url, "table-name": table}))


def _fill_dimension(url: str, table: str, rows: list[tuple[int, str]]) -> None:
    """Create and fill the dimension table with the database's own driver."""
    database = _database(url, table)
    conn = database.connection()
    cursor = conn.cursor()
    cursor.execute(f"CREATE TABLE {table} (sub_category_id BIGINT, parent_category_name VARCHAR(64))")
    marker = dialect_for(url).placeholder
    cursor.executemany(f"INSERT INTO {table} VALUES ({marker}, {marker})", rows)
    conn.commit()
    database.close()


def _drop(url: str, table: str) -> None:
    database = _database(url, table)
    conn = database.connection()
    conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    conn.commit()
    database.close()


LOOKUP_QUERY = """
CREATE TABLE category_dim (
   sub_category_id BIGINT,
   parent_category_name STRING
) WITH ('connector' = 'jdbc', 'url' = '{url}', 'table-name' = '{table}',
        'lookup.cache.max-rows' = '5000', 'lookup.cache.ttl' = '10min');
CREATE TABLE top_category (category_name STRING PRIMARY KEY NOT ENFORCED, buy_cnt BIGINT)
    WITH ({sink});
CREATE TABLE enriched (user_id BIGINT, category_name STRING) WITH ({enriched_sink});
CREATE VIEW rich_user_behavior AS
SELECT U.user_id, U.item_id, U.behavior, C.parent_category_name as category_name
FROM user_behavior AS U {join} JOIN category_dim FOR SYSTEM_TIME AS OF U.proctime AS C
ON U.category_id = C.sub_category_id;
INSERT INTO top_category
SELECT category_name, COUNT(*) buy_cnt FROM rich_user_behavior WHERE behavior = 'buy'
GROUP BY category_name;
INSERT INTO enriched SELECT user_id, category_name FROM rich_user_behavior
WHERE behavior = 'fav';
"""


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def dimension_url(request, tmp_path, tianchi_config):
    if request.param == "sqlite":
        url = f"jdbc:sqlite:{tmp_path / 'dim.db'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
    table = f"category_{uuid.uuid4().hex[:8]}"
    _fill_dimension(url, table, category_rows(tianchi_config))
    yield url, table
    _drop(url, table)


@pytest.mark.integration
@pytest.mark.parametrize("join", ["LEFT", "INNER"])
def test_lookup_join_enriches_every_event(tmp_path, events_file, dimension_url, tianchi_config, join):
    url, table = dimension_url
    db = tmp_path / "out.db"
    run_script(
        SOURCE_DDL.format(path=events_file)
        + LOOKUP_QUERY.format(
            url=url,
            table=table,
            sink=sqlite_sink(db, "top_category"),
            join=join,
            enriched_sink=sqlite_sink(db, "enriched"),
        )
    )
    categories = dict(category_rows(tianchi_config))
    events = oracle.read_events(events_file)
    expected = oracle.top_category(events, categories)
    if join == "INNER":
        expected.pop(None, None)
    assert dict(sqlite_rows(db, "top_category")) == expected
    favs = [
        (e["user_id"], categories.get(e["category_id"]))
        for e in events
        if e["behavior"] == "fav" and (join == "LEFT" or e["category_id"] in categories)
    ]
    assert sorted(sqlite_rows(db, "enriched"), key=repr) == sorted(favs, key=repr)


@pytest.mark.integration
def test_results_into_postgres_and_mariadb(tmp_path, events_file, postgres_url, mariadb_url, tianchi_config):
    dim = tmp_path / "dim.db"
    with sqlite3.connect(dim) as conn:
        conn.execute("CREATE TABLE category (sub_category_id BIGINT, parent_category_name TEXT)")
        conn.executemany("INSERT INTO category VALUES (?, ?)", category_rows(tianchi_config))
    suffix = uuid.uuid4().hex[:8]
    for url in (postgres_url, mariadb_url):
        table = f"top_category_{suffix}"
        sink = f"'connector' = 'jdbc', 'url' = '{url}', 'table-name' = '{table}'"
        try:
            run_script(
                SOURCE_DDL.format(path=events_file)
                + LOOKUP_QUERY.format(
                    url=f"jdbc:sqlite:{dim}",
                    table="category",
                    sink=sink,
                    join="LEFT",
                    enriched_sink="'connector' = 'blackhole'",
                )
            )
            database = _database(url, table)
            cursor = database.connection().cursor()
            cursor.execute(f"SELECT category_name, buy_cnt FROM {table}")
            got = {name: int(count) for name, count in cursor.fetchall()}
            database.close()
        finally:
            _drop(url, table)
        expected = oracle.top_category(oracle.read_events(events_file), dict(category_rows(tianchi_config)))
        assert got == expected
